// Layer steps of the Wan VAE decoder. Causal convs see [history..., x] with missing history as zero
// frames, which equals the official chunked decode with its feat_cache (wan.md §4). The attention block
// uses the dense CPU attention kernel with one head of width C over the frame's H·W tokens.
#include "dit/vae/vae_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention/dense_cpu.h"
#include "dit/core/parallel.h"
#include "dit/ops/gemm.h"

namespace vdit::vae {
namespace {

Result<Tensor> new_frame(int64_t C, int64_t H, int64_t W) { return Tensor::create(DType::f32, {C, H, W}); }

// y = conv over [history..., x] for a causal conv with up to 3 frames; `x` is not pushed.
Status causal_conv(Tensor* y, const ConvWeights& w, const FrameHistory& h, const Tensor& x, int up) {
  const int64_t H = x.dim(1), W = x.dim(2);
  const float* frames[3] = {nullptr, nullptr, nullptr};
  if (w.kt == 1) {
    frames[0] = x.f32();
  } else {
    VDIT_ASSERT(w.kt == 3);
    frames[2] = x.f32();
    if (h.count >= 1) frames[1] = h.frames[h.count - 1].f32();
    if (h.count >= 2) frames[0] = h.frames[0].f32();
  }
  VDIT_ASSIGN(*y, new_frame(w.co, H << up, W << up));
  return conv_frame(y->f32(), w, frames, H, W, up);
}

Result<Tensor> norm(const Tensor& x, const Tensor& gamma, bool silu) {
  VDIT_ASSIGN(Tensor y, new_frame(x.dim(0), x.dim(1), x.dim(2)));
  rms_norm_channels(y.f32(), x.f32(), gamma.f32(), x.dim(0), x.dim(1) * x.dim(2), silu);
  return y;
}

// W ResidualBlock: conv2(SiLU(RMS2(conv1(SiLU(RMS1(x)))))) + shortcut(x).
Status residual(std::vector<Tensor>* out, const VaeLayer& l, LayerState* s, const Tensor& x) {
  VDIT_ASSIGN(Tensor a, norm(x, l.gamma1, true));  // [Cin, H, W]
  Tensor h;
  VDIT_TRY(causal_conv(&h, l.conv, s->hist1, a, 0));  // [Cout, H, W]
  s->hist1.push(a);
  VDIT_ASSIGN(Tensor b, norm(h, l.gamma2, true));  // [Cout, H, W]
  Tensor y;
  VDIT_TRY(causal_conv(&y, l.conv2, s->hist2, b, 0));  // [Cout, H, W]
  s->hist2.push(b);
  // y += shortcut(x) (1x1x1 conv when the width changes, else x), one channel plane per job.
  Tensor sc = x;
  if (l.shortcut.co > 0) {
    FrameHistory none;
    VDIT_TRY(causal_conv(&sc, l.shortcut, none, x, 0));  // [Cout, H, W]
  }
  const int64_t plane = y.dim(1) * y.dim(2);
  float* yd = y.f32();
  const float* sd = sc.f32();
  parallel_work(y.dim(0), plane, [&](int64_t c) {
    for (int64_t i = c * plane; i < (c + 1) * plane; ++i) yd[i] += sd[i];
  });
  out->push_back(std::move(y));
  return Status::ok();
}

// W AttentionBlock on one frame: x + proj(SDPA(q, k, v)), q/k/v = thirds of to_qkv(RMS(x)), one head.
Status attention(std::vector<Tensor>* out, const VaeLayer& l, const Tensor& x) {
  const int64_t C = x.dim(0), N = x.dim(1) * x.dim(2);
  VDIT_ASSIGN(Tensor h, norm(x, l.gamma1, false));  // [C, N]
  VDIT_ASSIGN(Tensor qkv, Tensor::create(DType::f32, {3, N, C}));  // q, k, v token-major [N, C] each
  const float* wq = l.qkv_w.f32();
  const float* bq = l.qkv_b.f32();
  for (int64_t j = 0; j < 3; ++j) {
    float* dst = qkv.f32() + j * N * C;
    parallel_work(N, C, [&](int64_t t) { std::memcpy(dst + t * C, bq + j * C, static_cast<size_t>(C) * sizeof(float)); });
    // dst[N, C] += h[C, N]ᵀ · W_j[C, C]ᵀ
    ops::sgemm(true, true, N, C, C, 1.f, h.f32(), N, wq + j * C * C, C, 1.f, dst, C);
  }
  VDIT_ASSIGN(Tensor o, Tensor::create(DType::f32, {N, C}));  // [N, NH=1, HD=C]
  const float* q = qkv.f32();
  attn::dense_attention_cpu(o.f32(), nullptr, q, q + N * C, q + 2 * N * C, N, N, 1, static_cast<int>(C),
                            1.0f / std::sqrt(static_cast<float>(C)));
  VDIT_ASSIGN(Tensor y, x.clone());  // [C, H, W]
  float* yd = y.f32();
  const float* bp = l.proj_b.f32();
  parallel_work(C, N, [&](int64_t c) {
    for (int64_t i = 0; i < N; ++i) yd[c * N + i] += bp[c];
  });
  // y[C, N] += Wp[C, C] · o[N, C]ᵀ
  ops::sgemm(false, true, C, N, C, 1.f, l.proj_w.f32(), C, o.f32(), C, 1.f, yd, N);
  out->push_back(std::move(y));
  return Status::ok();
}

// W Resample (upsample2d / upsample3d). In upsample3d the first frame skips the time step; every later
// frame becomes two through time_conv (channels [0:C] first, then [C:2C]) with zero history at frame 1.
Status resample(std::vector<Tensor>* out, const VaeLayer& l, LayerState* s, const Tensor& x) {
  std::vector<Tensor> frames;
  if (l.spec.kind == LayerKind::upsample3d && s->seen_first) {
    Tensor t;
    VDIT_TRY(causal_conv(&t, l.time_conv, s->hist1, x, 0));  // [2C, H, W]
    s->hist1.push(x);
    const int64_t C = x.dim(0), plane = C * x.dim(1) * x.dim(2);
    for (int k = 0; k < 2; ++k) {
      VDIT_ASSIGN(Tensor f, new_frame(C, x.dim(1), x.dim(2)));
      std::memcpy(f.f32(), t.f32() + k * plane, static_cast<size_t>(plane) * sizeof(float));
      frames.push_back(std::move(f));
    }
  } else {
    s->seen_first = true;
    frames.push_back(x);
  }
  FrameHistory none;
  for (const Tensor& f : frames) {
    Tensor y;
    VDIT_TRY(causal_conv(&y, l.conv, none, f, 1));  // [C/2, 2H, 2W]
    out->push_back(std::move(y));
  }
  return Status::ok();
}

Status check_input(const VaeLayer& l, const Tensor& x) {
  if (x.dtype() != DType::f32 || x.rank() != 3 || x.dim(0) != l.spec.in_channels) {
    return internal_error(strfmt("VAE layer %s got a %s %s frame, expects [%lld, H, W] f32", l.spec.name.c_str(),
                                 dtype_name(x.dtype()), shape_str(x.shape()).c_str(),
                                 static_cast<long long>(l.spec.in_channels)));
  }
  return Status::ok();
}

}  // namespace

Status layer_forward(std::vector<Tensor>* out, const VaeLayer& l, LayerState* s, const Tensor& x) {
  VDIT_TRY(check_input(l, x));
  switch (l.spec.kind) {
    case LayerKind::conv_1x1:
    case LayerKind::causal_conv: {
      Tensor y;
      VDIT_TRY(causal_conv(&y, l.conv, s->hist1, x, 0));
      if (l.conv.kt > 1) s->hist1.push(x);
      out->push_back(std::move(y));
      return Status::ok();
    }
    case LayerKind::residual: return residual(out, l, s, x);
    case LayerKind::attention: return attention(out, l, x);
    case LayerKind::upsample2d:
    case LayerKind::upsample3d: return resample(out, l, s, x);
    case LayerKind::head: {
      VDIT_ASSIGN(Tensor a, norm(x, l.gamma1, true));  // [C, H, W]
      Tensor y;
      VDIT_TRY(causal_conv(&y, l.conv, s->hist1, a, 0));  // [3, H, W]
      s->hist1.push(a);
      out->push_back(std::move(y));
      return Status::ok();
    }
  }
  return internal_error("unknown VAE layer kind");
}

}  // namespace vdit::vae
