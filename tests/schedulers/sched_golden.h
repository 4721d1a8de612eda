// Shared helpers of the scheduler tests: the official scheduler/pipeline golden (a copy of
// wan_tiny_golden/sched_pipe_golden.safetensors) and max-error summaries with the worst index.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

namespace vdit::test {

inline const TensorFile& sched_golden() {
  static std::unique_ptr<TensorFile> file = [] {
    auto f = open_tensor_file(data_path("sched/sched_pipe_golden.safetensors"));
    EXPECT_TRUE(f) << f.status().to_string();
    return f ? std::move(f).value() : nullptr;
  }();
  if (!file) throw std::runtime_error("sched golden missing");
  return *file;
}

inline Tensor golden_tensor(const std::string& name) {
  auto t = sched_golden().tensor(name);
  if (!t) throw std::runtime_error(t.status().to_string());
  return *t;
}

// Largest |a − ref| over n elements, with where it happened.
struct MaxErr {
  double abs = 0;
  double ref_max = 0;
  int64_t worst = -1;
  void add(const float* a, const float* ref, int64_t n, int64_t offset = 0) {
    for (int64_t i = 0; i < n; ++i) {
      const double e = std::fabs(static_cast<double>(a[i]) - ref[i]);
      if (!(e <= abs)) {
        abs = std::isnan(e) ? INFINITY : e;
        worst = offset + i;
      }
      ref_max = std::max(ref_max, std::fabs(static_cast<double>(ref[i])));
    }
  }
  double rel() const { return ref_max > 0 ? abs / ref_max : abs; }
};

}  // namespace vdit::test
