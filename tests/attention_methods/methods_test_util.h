// Helpers of the attention-method tests: golden files, exact comparison of index/mask tensors (first
// mismatch printed), row slices and layout changes of golden tensors, and running the `vdit` CLI.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

namespace vdit::test {

inline std::unique_ptr<TensorFile> open_file(const std::string& path) {
  auto f = open_tensor_file(path);
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  return f.is_ok() ? std::move(f).value() : nullptr;
}

// tests/data/attention_methods/<name>
inline std::unique_ptr<TensorFile> open_method_data(const std::string& name) {
  return open_file(data_path("attention_methods/" + name));
}

inline Tensor get_f32(const TensorFile& f, const std::string& name) {
  auto t = f.tensor_f32(name);
  EXPECT_TRUE(t.is_ok()) << name << ": " << t.status().to_string();
  return t.is_ok() ? std::move(t).value() : Tensor();
}

inline Tensor get_raw(const TensorFile& f, const std::string& name) {
  auto t = f.tensor(name);
  EXPECT_TRUE(t.is_ok()) << name << ": " << t.status().to_string();
  return t.is_ok() ? std::move(t).value() : Tensor();
}

// Integer / mask values of any integer dtype as int64.
inline std::vector<int64_t> int_values(const Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype()) {
      case DType::i32: v[i] = t.data<int32_t>()[i]; break;
      case DType::i64: v[i] = t.data<int64_t>()[i]; break;
      case DType::u8:
      case DType::boolean: v[i] = t.data<uint8_t>()[i]; break;
      default: ADD_FAILURE() << "not an integer tensor: " << dtype_name(t.dtype()); return v;
    }
  }
  return v;
}

inline void expect_same_ints(const std::vector<int64_t>& got, const std::vector<int64_t>& want,
                             const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what << ": sizes differ";
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      int64_t diff = 0;
      for (size_t j = 0; j < got.size(); ++j) diff += got[j] != want[j] ? 1 : 0;
      ADD_FAILURE() << what << ": " << diff << " of " << got.size() << " entries differ; first at flat index " << i
                    << " (got " << got[i] << ", want " << want[i] << ")";
      return;
    }
  }
}

inline void expect_same_ints(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(shape_str(got.shape()), shape_str(want.shape())) << what;
  expect_same_ints(int_values(got), int_values(want), what);
}

// Rows 0, step, 2·step, ... of axis `axis` (0 or 1) of a contiguous f32 tensor.
inline Tensor every_nth(const Tensor& t, int axis, int64_t step) {
  Shape s = t.shape();
  const int64_t outer = axis == 0 ? 1 : s[0], n = s[static_cast<size_t>(axis)];
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) inner *= s[d];
  const int64_t kept = (n + step - 1) / step;
  s[static_cast<size_t>(axis)] = kept;
  Tensor out = Tensor::create(DType::f32, s).value();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t r = 0; r < kept; ++r)
      std::copy_n(t.f32() + (o * n + r * step) * inner, inner, out.f32() + (o * kept + r) * inner);
  return out;
}

// [A, B, C] -> [B, A, C] (the goldens' HND layout to the CLI's [L, NH, HD]), any 2- or 4-byte dtype.
inline Tensor swap01(const Tensor& t) {
  const int64_t A = t.dim(0), B = t.dim(1), C = t.dim(2);
  const size_t es = dtype_size(t.dtype());
  Tensor out = Tensor::create(t.dtype(), {B, A, C}).value();
  const uint8_t* src = static_cast<const uint8_t*>(t.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b) std::memcpy(dst + (b * A + a) * C * es, src + (a * B + b) * C * es, C * es);
  return out;
}

inline std::string tmp_path(const std::string& name) {
  return std::string(VDIT_BINARY_DIR) + "/test_tmp_attention_methods_" + name;
}

struct CliRun {
  int code = -1;
  std::string output;  // stdout + stderr
};

// Runs `vdit ARGS` (the build's binary); `tag` names the log file.
inline CliRun run_vdit(const std::string& args, const std::string& tag) {
  const std::string log = tmp_path(tag + ".log");
  const std::string cmd = std::string(VDIT_BINARY_DIR) + "/bin/vdit " + args + " >" + log + " 2>&1";
  CliRun r;
  const int rc = std::system(cmd.c_str());
  r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

// Writes q, k, v (any dtype) as the CLI's --inputs file.
inline std::string write_qkv(const std::string& name, const Tensor& q, const Tensor& k, const Tensor& v) {
  const std::string path = tmp_path(name);
  Status s = save_safetensors(path, {{"q", q}, {"k", k}, {"v", v}});
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return path;
}

// Dense masked attention in double, original token order: out [L, NH, HD], lse [NH, L]; `keep(h, i, j)`
// says whether query i attends key j. The independent formulation the methods' kernels are checked against.
template <class Keep>
void masked_attention_reference(std::vector<float>* out, std::vector<float>* lse, const float* q, const float* k,
                                const float* v, int64_t L, int NH, int HD, const Keep& keep) {
  out->assign(static_cast<size_t>(L * NH * HD), 0.f);
  lse->assign(static_cast<size_t>(NH * L), -INFINITY);
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const double scale = 1.0 / std::sqrt(static_cast<double>(HD));
  std::vector<double> p(static_cast<size_t>(L));
  for (int h = 0; h < NH; ++h) {
    for (int64_t i = 0; i < L; ++i) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < L; ++j) {
        p[j] = -INFINITY;
        if (!keep(h, i, j)) continue;
        double dot = 0;
        for (int d = 0; d < HD; ++d) dot += static_cast<double>(q[i * ld + h * HD + d]) * k[j * ld + h * HD + d];
        p[j] = dot * scale;
        mx = std::max(mx, p[j]);
      }
      if (mx == -INFINITY) continue;
      double sum = 0;
      for (int64_t j = 0; j < L; ++j) sum += (p[j] = p[j] == -INFINITY ? 0.0 : std::exp(p[j] - mx));
      for (int d = 0; d < HD; ++d) {
        double a = 0;
        for (int64_t j = 0; j < L; ++j) a += p[j] * v[j * ld + h * HD + d];
        (*out)[static_cast<size_t>(i * ld + h * HD + d)] = static_cast<float>(a / sum);
      }
      (*lse)[static_cast<size_t>(h * L + i)] = static_cast<float>(mx + std::log(sum));
    }
  }
}

inline std::vector<float> randn(size_t n, uint32_t seed, float sd = 1.f) {
  std::vector<float> x(n);
  uint64_t s = seed * 2654435761ull + 1;
  for (size_t i = 0; i < n; i += 2) {  // Box-Muller on a 64-bit LCG: reproducible across platforms
    auto u = [&] {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      return (static_cast<double>(s >> 11) + 0.5) / 9007199254740992.0;
    };
    const double r = std::sqrt(-2.0 * std::log(u())), th = 6.283185307179586 * u();
    x[i] = static_cast<float>(sd * r * std::cos(th));
    if (i + 1 < n) x[i + 1] = static_cast<float>(sd * r * std::sin(th));
  }
  return x;
}

// q = k = 8·u(id) per token, u a random unit vector per id, so each head's attention stays within tokens
// of equal id. mode[h]: 0 = same (y, x) in every frame, 1 = same (f, y) row, 2 = same (f, x) column.
inline std::vector<float> clustered_qk(const attn::VideoGrid& g, int NH, int HD, const std::vector<int>& mode,
                                       uint32_t seed) {
  std::vector<float> x(static_cast<size_t>(g.tokens() * NH * HD));
  for (int h = 0; h < NH; ++h) {
    const int64_t ids = g.f * g.h * g.w;
    const auto u = randn(static_cast<size_t>(ids * HD), seed + h);
    for (int64_t f = 0; f < g.f; ++f)
      for (int64_t y = 0; y < g.h; ++y)
        for (int64_t xx = 0; xx < g.w; ++xx) {
          const int64_t id = mode[h] == 0 ? y * g.w + xx : mode[h] == 1 ? f * g.h + y : f * g.w + xx;
          double n = 0;
          for (int d = 0; d < HD; ++d) n += u[id * HD + d] * u[id * HD + d];
          const int64_t t = (f * g.h + y) * g.w + xx;
          for (int d = 0; d < HD; ++d)
            x[static_cast<size_t>((t * NH + h) * HD + d)] = static_cast<float>(8.0 * u[id * HD + d] / std::sqrt(n));
        }
  }
  return x;
}

// A JSON config as one shell argument.
inline std::string quoted(const std::string& json) { return "'" + json + "'"; }

}  // namespace vdit::test
