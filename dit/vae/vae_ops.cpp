// Convolution without im2col: per band of output rows, each input frame is copied once into a zero-padded
// band buffer, and every kernel tap is one GEMM (K = Ci) whose B operand is that buffer shifted by the
// tap's offset; outputs are computed on the padded width and the pad columns dropped. Channel RMS norm
// over pixel blocks. The references are deliberately naive.
#include "dit/vae/vae_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "dit/core/parallel.h"
#include "dit/ops/gemm.h"

namespace vdit::vae {
namespace {

// Output rows per band: about kTargetCols GEMM columns (on the padded width). The accumulator band
// [Co, cols] then stays in L2 across the taps, which narrow convs need. Measured per tap-GEMM on one
// core (GFLOP/s): 16 ch at 256² 88 with 2064 columns, 60 with 8256; 16 ch at 512² 86 with 1028, 43 with
// 4112; 96 ch at 416² 89-93 for 836..3344 columns; one K = 27·Ci GEMM on an im2col buffer: 45 / 81.
constexpr int64_t kTargetCols = 2048;

int64_t band_rows(int64_t Wp, int64_t Ho) { return std::clamp<int64_t>(kTargetCols / Wp, 1, Ho); }

// e^x to about 2 ulp over the float range (Cephes expf: x = n·ln2 + r, degree-6 polynomial in r), written
// with selects and bit casts only so the SiLU loop vectorizes; libm's expf is a scalar call per element.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // Adding 1.5·2^23 rounds x·log2(e) to an integer n held in the low mantissa bits of t.
  const float shifter = 12582912.0f;
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  int32_t t_bits;
  std::memcpy(&t_bits, &t, sizeof t_bits);
  const int32_t ni = t_bits - 0x4B400000;  // bits of the shifter
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (ni + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return e * two_n;
}

// Band buffer of one input frame: dst[ci][r][x] = input(y0 - ph + r, x - pw) on the (upsampled) grid,
// zero outside, for r in [0, rows) and x in [0, Wp); channel planes are rows_p >= rows rows apart.
void fill_padded(float* dst, const float* src, int64_t Ci, int64_t H, int64_t W, int up, int64_t y0, int64_t rows,
                 int64_t rows_p, int64_t Wp, int64_t ph, int64_t pw) {
  const int64_t Ho = H << up, Wo = W << up;
  parallel_work(Ci, rows * Wp, [&](int64_t ci) {
    const float* plane = src + ci * H * W;
    for (int64_t r = 0; r < rows; ++r) {
      float* d = dst + (ci * rows_p + r) * Wp;
      const int64_t sy = y0 - ph + r;
      if (sy < 0 || sy >= Ho) {
        std::memset(d, 0, static_cast<size_t>(Wp) * sizeof(float));
        continue;
      }
      const float* s = plane + (sy >> up) * W;
      std::memset(d, 0, static_cast<size_t>(pw) * sizeof(float));
      if (up == 0) {
        std::memcpy(d + pw, s, static_cast<size_t>(Wo) * sizeof(float));
      } else {
        for (int64_t x = 0; x < Wo; ++x) d[pw + x] = s[x >> 1];
      }
      std::memset(d + pw + Wo, 0, static_cast<size_t>(Wp - pw - Wo) * sizeof(float));
    }
  });
}

}  // namespace

Result<ConvWeights> make_conv_weights(const Tensor& weight, const Tensor& bias, const std::string& what) {
  ConvWeights c;
  const Shape& s = weight.shape();
  if (weight.rank() == 5) {
    c.co = s[0], c.ci = s[1], c.kt = s[2], c.kh = s[3], c.kw = s[4];
  } else if (weight.rank() == 4) {
    c.co = s[0], c.ci = s[1], c.kt = 1, c.kh = s[2], c.kw = s[3];
  } else {
    return format_error(what + ": a conv weight must be [Co, Ci, kt, kh, kw] or [Co, Ci, kh, kw], got " + shape_str(s));
  }
  if (c.kh % 2 == 0 || c.kw % 2 == 0 || c.kt < 1 || c.kt > 3) {
    return unsupported(what + ": kernel " + shape_str(s) + " not supported (odd spatial size, 1..3 frames)");
  }
  if (bias.rank() != 1 || bias.dim(0) != c.co) {
    return format_error(what + ": bias " + shape_str(bias.shape()) + " does not match weight " + shape_str(s));
  }
  if (!dtype_is_float(weight.dtype()) || !dtype_is_float(bias.dtype())) {
    return format_error(what + ": weights must be a float type, got " + dtype_name(weight.dtype()));
  }
  VDIT_ASSIGN(Tensor src, weight.to(DType::f32));
  VDIT_ASSIGN(c.b, bias.to(DType::f32));
  if (c.b.raw() == bias.raw()) { VDIT_ASSIGN(c.b, bias.clone()); }  // own the data (files may be unmapped)
  VDIT_ASSIGN(c.w, Tensor::create(DType::f32, {c.kt * c.kh * c.kw, c.co, c.ci}));
  const int64_t khw = c.kh * c.kw;
  const float* ws = src.f32();
  float* wd = c.w.f32();
  for (int64_t co = 0; co < c.co; ++co) {
    for (int64_t ci = 0; ci < c.ci; ++ci) {
      for (int64_t tap = 0; tap < c.kt * khw; ++tap) {
        wd[(tap * c.co + co) * c.ci + ci] = ws[(co * c.ci + ci) * c.kt * khw + tap];
      }
    }
  }
  return c;
}

void FrameHistory::push(const Tensor& frame) {
  if (count < 2) {
    frames[count++] = frame;
  } else {
    frames[0] = std::move(frames[1]);
    frames[1] = frame;
  }
}

void FrameHistory::clear() {
  frames[0] = Tensor();
  frames[1] = Tensor();
  count = 0;
}

Status conv_frame(float* out, const ConvWeights& w, const float* const* frames, int64_t H, int64_t W, int up) {
  const int64_t Ho = H << up, Wo = W << up, HWo = Ho * Wo, khw = w.kh * w.kw, tap_size = w.co * w.ci;
  int64_t t0 = 0;
  while (t0 < w.kt && !frames[t0]) ++t0;
  for (int64_t t = t0; t < w.kt; ++t) VDIT_ASSERT(frames[t] != nullptr);  // only a prefix may be missing

  const float* bias = w.b.f32();
  const float* wt = w.w.f32();  // [kt·kh·kw, Co, Ci]
  if (w.kh == 1 && w.kw == 1 && up == 0) {
    // Pointwise in space: each frame is already the GEMM's B operand [Ci, H·W].
    parallel_work(w.co, HWo, [&](int64_t c) { std::fill(out + c * HWo, out + (c + 1) * HWo, bias[c]); });
    for (int64_t t = t0; t < w.kt; ++t) {
      ops::sgemm(false, false, w.co, HWo, w.ci, 1.f, wt + t * tap_size, w.ci, frames[t], HWo, 1.f, out, HWo);
    }
    return Status::ok();
  }

  const int64_t ph = (w.kh - 1) / 2, pw = (w.kw - 1) / 2, Wp = Wo + 2 * pw;
  const int64_t rows = band_rows(Wp, Ho), bands = (Ho + rows - 1) / rows;
  // The last tap reads up to (rows + 2·ph)·Wp + 2·pw elements into a frame's band: one spare row.
  const int64_t rows_p = rows + 2 * ph + 1, frames_used = w.kt - t0, frame_stride = w.ci * rows_p * Wp;

  // Threads: OpenBLAS threads each GEMM it finds big enough. Bands are not split across OpenMP threads,
  // because concurrent calls into the pthreads OpenBLAS spin-wait on its single worker pool.
  VDIT_ASSIGN(Tensor pad_t, Tensor::create(DType::f32, {frames_used, w.ci, rows_p, Wp}));  // padded inputs
  VDIT_ASSIGN(Tensor acc_t, Tensor::create(DType::f32, {w.co, rows * Wp}));                // band sums
  float* pad = pad_t.f32();
  float* acc = acc_t.f32();
  for (int64_t b = 0; b < bands; ++b) {
    const int64_t y0 = b * rows, nr = std::min(rows, Ho - y0), ncols = nr * Wp;
    for (int64_t f = 0; f < frames_used; ++f) {
      fill_padded(pad + f * frame_stride, frames[t0 + f], w.ci, H, W, up, y0, nr + 2 * ph + 1, rows_p, Wp, ph, pw);
    }
    for (int64_t c = 0; c < w.co; ++c) std::fill(acc + c * ncols, acc + (c + 1) * ncols, bias[c]);
    // acc[Co, ncols] += W_tap[Co, Ci] · band(frame t)[Ci, ncols] shifted by (dy, dx), for every tap.
    for (int64_t f = 0; f < frames_used; ++f) {
      for (int64_t k = 0; k < khw; ++k) {
        const int64_t dy = k / w.kw, dx = k % w.kw;
        ops::sgemm(false, false, w.co, ncols, w.ci, 1.f, wt + ((t0 + f) * khw + k) * tap_size, w.ci,
                   pad + f * frame_stride + dy * Wp + dx, rows_p * Wp, 1.f, acc, ncols);
      }
    }
    // Drop the 2·pw pad columns of every row.
    parallel_work(w.co, ncols, [&](int64_t c) {
      for (int64_t r = 0; r < nr; ++r) {
        std::memcpy(out + c * HWo + (y0 + r) * Wo, acc + c * ncols + r * Wp, static_cast<size_t>(Wo) * sizeof(float));
      }
    });
  }
  return Status::ok();
}

void rms_norm_channels(float* y, const float* x, const float* gamma, int64_t C, int64_t N, bool silu) {
  constexpr int64_t kBlock = 256;  // pixels per job: the C-strided reads stay in L1/L2 per block
  const float scale = std::sqrt(static_cast<float>(C));
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  parallel_work(blocks, kBlock * C, [&](int64_t b) {
    const int64_t p0 = b * kBlock, n = std::min(kBlock, N - p0);
    double ss[kBlock] = {};
    for (int64_t c = 0; c < C; ++c) {
      const float* xc = x + c * N + p0;
#pragma omp simd
      for (int64_t p = 0; p < n; ++p) ss[p] += static_cast<double>(xc[p]) * xc[p];
    }
    // One division per pixel, then products only (PyTorch: x / max(‖x‖, eps) · √C · γ; same to an ulp).
    float inv[kBlock];
    for (int64_t p = 0; p < n; ++p) inv[p] = scale / std::max(static_cast<float>(std::sqrt(ss[p])), 1e-12f);
    for (int64_t c = 0; c < C; ++c) {
      const float* xc = x + c * N + p0;
      float* yc = y + c * N + p0;
      const float g = gamma[c];
      if (silu) {
#pragma omp simd
        for (int64_t p = 0; p < n; ++p) {
          const float v = xc[p] * inv[p] * g;
          yc[p] = v / (1.f + exp_approx(-v));
        }
      } else {
#pragma omp simd
        for (int64_t p = 0; p < n; ++p) yc[p] = xc[p] * inv[p] * g;
      }
    }
  });
}

void conv_frame_reference(float* out, const float* weight, const float* bias, int64_t Co, int64_t Ci, int64_t kt,
                          int64_t kh, int64_t kw, const float* const* frames, int64_t H, int64_t W, int up) {
  const int64_t Ho = H << up, Wo = W << up, ph = (kh - 1) / 2, pw = (kw - 1) / 2;
  parallel_for(Co, [&](int64_t co) {
    for (int64_t y = 0; y < Ho; ++y) {
      for (int64_t x = 0; x < Wo; ++x) {
        double acc = bias[co];
        for (int64_t t = 0; t < kt; ++t) {
          if (!frames[t]) continue;
          for (int64_t ci = 0; ci < Ci; ++ci) {
            for (int64_t dy = 0; dy < kh; ++dy) {
              for (int64_t dx = 0; dx < kw; ++dx) {
                const int64_t sy = y + dy - ph, sx = x + dx - pw;
                if (sy < 0 || sy >= Ho || sx < 0 || sx >= Wo) continue;
                const double wv = weight[(((co * Ci + ci) * kt + t) * kh + dy) * kw + dx];
                acc += wv * frames[t][(ci * H + (sy >> up)) * W + (sx >> up)];
              }
            }
          }
        }
        out[(co * Ho + y) * Wo + x] = static_cast<float>(acc);
      }
    }
  });
}

void rms_norm_channels_reference(float* y, const float* x, const float* gamma, int64_t C, int64_t N, bool silu) {
  for (int64_t p = 0; p < N; ++p) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(x[c * N + p]) * x[c * N + p];
    const double denom = std::max(std::sqrt(ss), 1e-12);
    for (int64_t c = 0; c < C; ++c) {
      double v = x[c * N + p] / denom * std::sqrt(static_cast<double>(C)) * gamma[c];
      y[c * N + p] = static_cast<float>(silu ? v / (1.0 + std::exp(-v)) : v);
    }
  }
}

}  // namespace vdit::vae
