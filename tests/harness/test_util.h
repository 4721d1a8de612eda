// Test helpers: data paths, golden loading and comparison by max|a-b|/max|ref| with the worst index.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "dit/core/tensor.h"

namespace vdit::test {

inline std::string data_path(const std::string& name) { return std::string(VDIT_TEST_DATA_DIR) + "/" + name; }

struct Diff {
  double max_abs = 0;     // max |a - b|
  double max_ref = 0;     // max |ref|
  int64_t worst = -1;     // index of max |a - b|
  bool finite = true;     // no NaN/Inf in `a`
  double rel() const { return max_ref > 0 ? max_abs / max_ref : max_abs; }
};

inline Diff compare(const float* a, const float* ref, int64_t n) {
  Diff d;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) d.finite = false;
    double e = std::fabs(static_cast<double>(a[i]) - ref[i]);
    if (!(e <= d.max_abs)) {
      d.max_abs = std::isnan(e) ? INFINITY : e;
      d.worst = i;
    }
    d.max_ref = std::max(d.max_ref, std::fabs(static_cast<double>(ref[i])));
  }
  return d;
}

// EXPECT that `a` matches `ref` (same shape, f32) with max|Δ|/max|ref| <= tol; prints the worst element.
inline void expect_close(const Tensor& a, const Tensor& ref, double tol, const std::string& what) {
  ASSERT_EQ(shape_str(a.shape()), shape_str(ref.shape())) << what;
  ASSERT_EQ(a.dtype(), DType::f32) << what;
  ASSERT_EQ(ref.dtype(), DType::f32) << what;
  Diff d = compare(a.f32(), ref.f32(), a.numel());
  EXPECT_TRUE(d.finite) << what << ": NaN/Inf in output";
  EXPECT_LE(d.rel(), tol) << what << ": max|d|=" << d.max_abs << " max|ref|=" << d.max_ref << " rel=" << d.rel()
                          << " worst index " << d.worst << " (got " << (d.worst >= 0 ? a.f32()[d.worst] : 0.f)
                          << ", want " << (d.worst >= 0 ? ref.f32()[d.worst] : 0.f) << ")";
}

}  // namespace vdit::test
