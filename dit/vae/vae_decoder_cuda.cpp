// VaeDecoderCuda: uploads the CPU decoder's weights (convs in cuDNN's NHWC filter layout, the upsample3d
// time_conv split into its two output halves so each half writes its own frame), then streams latent
// frames depth-first through the layers like the CPU LayerRunner. Each kt = 3 causal conv owns a ring of
// 3 frame slots [3, H, W, C] that starts zeroed (= the causal zero padding); the newest frame overwrites the
// oldest slot and the conv uses the filter copy whose temporal taps are rotated to match, so history frames
// are never moved. Output frames are copied to pinned host
// memory and handed to the callback one frame late, so the GPU computes frame t+1 while the caller
// consumes frame t.
#include "dit/vae/vae_decoder_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "dit/core/check_cuda.h"
#include "dit/core/dtype.h"
#include "dit/ops/cuda/lt_gemm.h"
#include "dit/vae/vae_conv_cuda.h"
#include "dit/vae/vae_kernels_cuda.h"

namespace vdit::vae {
namespace {

using cuda::ConvShape;

struct DevConv {
  int64_t co = 0, ci = 0, kt = 1, kh = 1, kw = 1;
  DeviceBuffer w;  // activation type; kt = 1: [Co, kh, kw, Ci]; kt = 3: 3 rotations of [Co, kt, kh, kw, Ci]
  DeviceBuffer b;  // [Co] f32
  size_t rot_bytes = 0;  // bytes per rotation (see Window)
  const void* wp(int rot = 0) const { return static_cast<const char*>(w.data()) + rot * rot_bytes; }
  const float* bp() const { return b.as<float>(); }
};

struct DevLayer {
  LayerSpec spec;
  DevConv conv, conv2, shortcut, time0, time1;
  DeviceBuffer gamma1, gamma2;
  DeviceBuffer wq, wk, wv, wp, bq, bk, bv, bp;  // attention: [C, C] each, biases [C]
};

// A kt = 3 causal conv's input history as a ring of 3 slots [3, H, W, C]. Frame n goes into slot n % 3;
// the conv then reads the slots in memory order with filter rotation r = n % 3, whose tap for slot j is
// tap 2 - ((r - j) mod 3) (2 = newest). Zeroed slots are the causal front padding.
struct Window {
  DeviceBuffer buf;
  size_t frame = 0;    // bytes per slot
  int64_t pushed = 0;  // frames written so far
  int rot = 0;         // filter rotation for the frames held now
  void* next_slot() {
    rot = static_cast<int>(pushed++ % 3);
    return static_cast<char*>(buf.data()) + rot * frame;
  }
  const void* data() const { return buf.data(); }
};

// Per-size device buffers of one layer (element counts fixed by the latent grid).
struct LayerBuffers {
  int64_t H = 0, W = 0;         // input grid of this layer
  Window win1, win2;            // causal histories [3, H, W, C]
  DeviceBuffer out;             // emitted frame [Ho, Wo, Cout]
  DeviceBuffer t0, t1;          // upsample3d: time-conv halves [H, W, C] (t1 outlives t0's downstream work)
  // Transients, used only inside this layer's call before it emits (so every layer can use the same
  // memory: slices of the decoder's one scratch buffer).
  void* tmp = nullptr;          // residual: conv1 output [H, W, Cout]
  void* sc = nullptr;           // residual: shortcut output [H, W, Cout]
  void* up = nullptr;           // upsample: upsampled input [2H, 2W, C]
  float *hn = nullptr, *q = nullptr, *k = nullptr, *vt = nullptr, *s = nullptr, *o = nullptr;  // attention, f32
  bool seen_first = false;
  int64_t emitted = 0;
};

struct PinnedBuffer {
  void* p = nullptr;
  ~PinnedBuffer() {
    if (p) cudaFreeHost(p);
  }
};

Result<DeviceBuffer> upload(const float* src, size_t n, size_t* counter) {
  VDIT_ASSIGN(DeviceBuffer b, DeviceBuffer::allocate(n * sizeof(float)));
  VDIT_TRY(b.copy_from_host(src, n * sizeof(float)));
  *counter += b.size();
  return b;
}

// Output channels [co0, co0 + n) of `c`, from GEMM layout [taps, Co, Ci] to NHWC filter [n, taps, Ci]
// (three tap rotations when kt = 3), stored as bf16 when `bf16`.
Result<DevConv> upload_conv(const ConvWeights& c, int64_t co0, int64_t n, bool bf16, size_t* counter) {
  DevConv d;
  d.co = n, d.ci = c.ci, d.kt = c.kt, d.kh = c.kh, d.kw = c.kw;
  const int64_t taps = c.kt * c.kh * c.kw, plane = c.kh * c.kw, rots = c.kt == 3 ? 3 : 1;
  if (c.kt != 1 && c.kt != 3) return internal_error("VAE conv with kt = " + std::to_string(c.kt));
  const int64_t rot_stride = n * taps * c.ci;
  d.rot_bytes = static_cast<size_t>(rot_stride) * (bf16 ? 2 : 4);
  std::vector<float> w(static_cast<size_t>(rots * rot_stride));
  const float* src = c.w.f32();
  for (int64_t r = 0; r < rots; ++r) {
    for (int64_t o = 0; o < n; ++o) {
      for (int64_t j = 0; j < c.kt; ++j) {
        const int64_t t = c.kt == 1 ? 0 : 2 - ((r - j) % 3 + 3) % 3;  // tap for slot j under rotation r
        for (int64_t q = 0; q < plane; ++q) {
          const float* s = src + ((t * plane + q) * c.co + co0 + o) * c.ci;
          std::copy(s, s + c.ci, w.begin() + r * rot_stride + (o * taps + j * plane + q) * c.ci);
        }
      }
    }
  }
  if (bf16) {
    std::vector<uint16_t> h(w.size());
    for (size_t i = 0; i < w.size(); ++i) h[i] = f32_to_bf16(w[i]);
    VDIT_ASSIGN(d.w, DeviceBuffer::allocate(h.size() * sizeof(uint16_t)));
    VDIT_TRY(d.w.copy_from_host(h.data(), h.size() * sizeof(uint16_t)));
    *counter += d.w.size();
  } else {
    VDIT_ASSIGN(d.w, upload(w.data(), w.size(), counter));
  }
  VDIT_ASSIGN(d.b, upload(c.b.f32() + co0, static_cast<size_t>(n), counter));
  return d;
}

Result<DeviceBuffer> upload_tensor(const Tensor& t, int64_t offset, int64_t n, size_t* counter) {
  return upload(t.f32() + offset, static_cast<size_t>(n), counter);
}

}  // namespace

struct VaeDecoderCuda::Impl {
  VaeConfig config;
  int64_t spatial_factor = 8;
  int temporal_ups = 2;
  VaeCudaOptions options;
  cudaStream_t stream = nullptr;
  cudaEvent_t copied[2] = {nullptr, nullptr};
  std::unique_ptr<cuda::ConvEngine> conv;
  std::unique_ptr<ops::cuda::LtGemm> gemm;
  std::vector<DevLayer> layers;
  DeviceBuffer mean, inv_std;
  size_t weight_bytes = 0, act_bytes = 0, peak = 0;
  bool bf16 = false;  // activation type: bf16 (else f32)
  size_t es = 4;      // bytes per activation element

  // Per-size state.
  int64_t h = 0, w = 0;
  std::vector<LayerBuffers> bufs;
  DeviceBuffer z_dev, x0, planar, stage, scratch;
  PinnedBuffer pinned[2];
  int64_t out_H = 0, out_W = 0;

  // Per-decode state.
  const FrameCallback* on_frame = nullptr;
  const StageCallback* on_stage = nullptr;
  int64_t next_frame = 0, pending = -1;

  ~Impl() {
    bufs.clear();
    for (cudaEvent_t e : copied) {
      if (e) cudaEventDestroy(e);
    }
    conv.reset();
    gemm.reset();
    if (stream) cudaStreamDestroy(stream);
  }

  void* s() const { return stream; }

  Status alloc_bytes(DeviceBuffer* b, size_t bytes) {
    VDIT_ASSIGN(*b, DeviceBuffer::allocate(bytes));
    act_bytes += b->size();
    return Status::ok();
  }
  Status alloc(DeviceBuffer* b, int64_t elems) { return alloc_bytes(b, static_cast<size_t>(elems) * es); }
  Status alloc_f32(DeviceBuffer* b, int64_t elems) { return alloc_bytes(b, static_cast<size_t>(elems) * 4); }
  void note_peak() {
    const size_t ws = conv->workspace_bytes() + gemm->workspace_bytes();
    peak = std::max(peak, weight_bytes + act_bytes + ws);
  }

  Status prepare(int64_t lh, int64_t lw);
  // Points the transients of layer buffers B (grid B.H x B.W) at consecutive 256-byte aligned slices from
  // `base`; returns the bytes used. base = 0 only measures.
  size_t carve(LayerBuffers* B, const DevLayer& L, uintptr_t base) const {
    size_t used = 0;
    auto take = [&](size_t bytes) {
      void* p = reinterpret_cast<void*>(base + used);
      used += (bytes + 255) / 256 * 256;
      return base ? p : nullptr;
    };
    const size_t HW = static_cast<size_t>(B->H * B->W), ci = static_cast<size_t>(L.spec.in_channels);
    const size_t co = static_cast<size_t>(L.spec.out_channels);
    switch (L.spec.kind) {
      case LayerKind::residual:
        B->tmp = take(HW * co * es);
        if (L.shortcut.co > 0) B->sc = take(HW * co * es);
        break;
      case LayerKind::attention:
        for (float** f : {&B->hn, &B->q, &B->k, &B->vt, &B->o}) *f = static_cast<float*>(take(HW * ci * 4));
        B->s = static_cast<float*>(take(HW * HW * 4));
        break;
      case LayerKind::upsample2d:
      case LayerKind::upsample3d: B->up = take(4 * HW * ci * es); break;
      default: break;
    }
    return used;
  }
  Status reset_state();
  Status conv_run(void* y, const void* x, const DevConv& c, int64_t H, int64_t W, int rot = 0) {
    ConvShape sh;
    sh.ci = c.ci, sh.co = c.co, sh.kt = c.kt, sh.kh = c.kh, sh.kw = c.kw, sh.H = H, sh.W = W;
    return conv->run(y, x, c.wp(rot), sh);
  }
  Status alloc_window(Window* win, int64_t frame) {
    win->frame = static_cast<size_t>(frame) * es;
    return alloc(&win->buf, 3 * frame);
  }
  // y = causal conv of x (through the window when kt = 3) + bias.
  Status causal(void* y, const DevConv& c, Window& win, const void* x, int64_t H, int64_t W) {
    if (c.kt == 1) {
      VDIT_TRY(conv_run(y, x, c, H, W));
    } else {
      void* slot = win.next_slot();
      VDIT_CHECK(cudaMemcpyAsync(slot, x, win.frame, cudaMemcpyDeviceToDevice, stream));
      VDIT_TRY(conv_run(y, win.data(), c, H, W, win.rot));
    }
    return add_bias(y, c, H * W);
  }
  Status add_bias(void* y, const DevConv& c, int64_t N) {
    return cuda::add_bias_residual(y, bf16, c.bp(), nullptr, nullptr, c.co, N, s());
  }

  Status feed(size_t i, const void* x, int64_t H, int64_t W);
  Status emit(size_t i, const void* y, int64_t H, int64_t W);
  Status residual(size_t i, const void* x, int64_t H, int64_t W);
  Status attention(size_t i, const void* x, int64_t H, int64_t W);
  Status upsample(size_t i, const void* x, int64_t H, int64_t W);
  Status sink(const void* y, int64_t H, int64_t W);
  Status deliver(int64_t t);
};

Status VaeDecoderCuda::Impl::prepare(int64_t lh, int64_t lw) {
  if (lh == h && lw == w && !bufs.empty()) return reset_state();
  VDIT_CHECK(cudaStreamSynchronize(stream));
  bufs.clear();
  x0 = DeviceBuffer(), planar = DeviceBuffer(), stage = DeviceBuffer(), scratch = DeviceBuffer();
  act_bytes = 0;
  h = w = 0;
  bufs.resize(layers.size());
  int64_t H = lh, W = lw, max_stage = config.z_dim * lh * lw;
  size_t scratch_bytes = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const DevLayer& L = layers[i];
    LayerBuffers& B = bufs[i];
    B.H = H, B.W = W;
    const int64_t HW = H * W, ci = L.spec.in_channels, co = L.spec.out_channels;
    switch (L.spec.kind) {
      case LayerKind::conv_1x1:
      case LayerKind::causal_conv:
      case LayerKind::head:
        if (L.conv.kt == 3) VDIT_TRY(alloc_window(&B.win1, HW * ci));
        VDIT_TRY(alloc(&B.out, HW * co));
        break;
      case LayerKind::residual:
        VDIT_TRY(alloc_window(&B.win1, HW * ci));
        VDIT_TRY(alloc_window(&B.win2, HW * co));
        VDIT_TRY(alloc(&B.out, HW * co));
        break;
      case LayerKind::attention:
        VDIT_TRY(alloc(&B.out, HW * ci));
        break;
      case LayerKind::upsample3d:
        VDIT_TRY(alloc_window(&B.win1, HW * ci));
        VDIT_TRY(alloc(&B.t0, HW * ci));
        VDIT_TRY(alloc(&B.t1, HW * ci));
        [[fallthrough]];
      case LayerKind::upsample2d:
        VDIT_TRY(alloc(&B.out, 4 * HW * co));
        H *= 2, W *= 2;
        break;
    }
    max_stage = std::max(max_stage, H * W * co);
    scratch_bytes = std::max(scratch_bytes, carve(&B, L, 0));
  }
  VDIT_TRY(alloc_bytes(&scratch, scratch_bytes));
  for (size_t i = 0; i < layers.size(); ++i) carve(&bufs[i], layers[i], reinterpret_cast<uintptr_t>(scratch.data()));
  out_H = H, out_W = W;
  VDIT_TRY(alloc(&x0, config.z_dim * lh * lw));
  VDIT_TRY(alloc_f32(&planar, 3 * H * W));
  if (on_stage && *on_stage) VDIT_TRY(alloc_f32(&stage, max_stage));
  for (PinnedBuffer& p : pinned) {
    if (p.p) cudaFreeHost(p.p);
    p.p = nullptr;
    VDIT_CHECK(cudaMallocHost(&p.p, static_cast<size_t>(3 * H * W) * sizeof(float)));
  }
  h = lh, w = lw;
  note_peak();
  return reset_state();
}

Status VaeDecoderCuda::Impl::reset_state() {
  for (LayerBuffers& B : bufs) {
    for (Window* win : {&B.win1, &B.win2}) {
      if (win->buf.size()) VDIT_CHECK(cudaMemsetAsync(win->buf.data(), 0, win->buf.size(), stream));
      win->pushed = 0, win->rot = 0;
    }
    B.seen_first = false;
    B.emitted = 0;
  }
  next_frame = 0;
  pending = -1;
  return Status::ok();
}

Status VaeDecoderCuda::Impl::emit(size_t i, const void* y, int64_t H, int64_t W) {
  LayerBuffers& B = bufs[i];
  if (on_stage && *on_stage) {
    const int64_t C = layers[i].spec.out_channels;
    VDIT_TRY(cuda::to_planar(stage.as<float>(), y, bf16, C, H * W, false, s()));
    VDIT_ASSIGN(Tensor t, Tensor::create(DType::f32, {C, H, W}));
    VDIT_CHECK(cudaMemcpyAsync(t.f32(), stage.data(), t.nbytes(), cudaMemcpyDeviceToHost, stream));
    VDIT_CHECK(cudaStreamSynchronize(stream));
    (*on_stage)(layers[i].spec.name, B.emitted, t);
  }
  ++B.emitted;
  return feed(i + 1, y, H, W);
}

Status VaeDecoderCuda::Impl::feed(size_t i, const void* x, int64_t H, int64_t W) {
  if (i == layers.size()) return sink(x, H, W);
  const DevLayer& L = layers[i];
  LayerBuffers& B = bufs[i];
  switch (L.spec.kind) {
    case LayerKind::conv_1x1:
    case LayerKind::causal_conv:
      VDIT_TRY(causal(B.out.data(), L.conv, B.win1, x, H, W));  // [H, W, Cout]
      return emit(i, B.out.data(), H, W);
    case LayerKind::residual: return residual(i, x, H, W);
    case LayerKind::attention: return attention(i, x, H, W);
    case LayerKind::upsample2d:
    case LayerKind::upsample3d: return upsample(i, x, H, W);
    case LayerKind::head: {
      void* slot = B.win1.next_slot();
      VDIT_TRY(cuda::rms_norm_channels_last(slot, bf16, x, bf16, nullptr, L.gamma1.as<float>(), L.conv.ci, H * W, true,
                                            s()));
      VDIT_TRY(conv_run(B.out.data(), B.win1.data(), L.conv, H, W, B.win1.rot));  // [H, W, 3]
      VDIT_TRY(add_bias(B.out.data(), L.conv, H * W));
      return emit(i, B.out.data(), H, W);
    }
  }
  return internal_error("unknown VAE layer kind");
}

// W ResidualBlock: conv2(SiLU(RMS2(conv1(SiLU(RMS1(x)))))) + shortcut(x); conv1's bias is folded into RMS2.
Status VaeDecoderCuda::Impl::residual(size_t i, const void* x, int64_t H, int64_t W) {
  const DevLayer& L = layers[i];
  LayerBuffers& B = bufs[i];
  const int64_t HW = H * W, ci = L.spec.in_channels, co = L.spec.out_channels;
  void* a = B.win1.next_slot();
  VDIT_TRY(cuda::rms_norm_channels_last(a, bf16, x, bf16, nullptr, L.gamma1.as<float>(), ci, HW, true, s()));
  VDIT_TRY(conv_run(B.tmp, B.win1.data(), L.conv, H, W, B.win1.rot));  // [H, W, Cout]
  void* b = B.win2.next_slot();
  VDIT_TRY(cuda::rms_norm_channels_last(b, bf16, B.tmp, bf16, L.conv.bp(), L.gamma2.as<float>(), co, HW, true,
                                        s()));
  void* y = B.out.data();
  VDIT_TRY(conv_run(y, B.win2.data(), L.conv2, H, W, B.win2.rot));  // [H, W, Cout]
  if (L.shortcut.co > 0) {
    VDIT_TRY(conv_run(B.sc, x, L.shortcut, H, W));
    VDIT_TRY(cuda::add_bias_residual(y, bf16, L.conv2.bp(), B.sc, L.shortcut.bp(), co, HW, s()));
  } else {
    VDIT_TRY(cuda::add_bias_residual(y, bf16, L.conv2.bp(), x, nullptr, co, HW, s()));
  }
  return emit(i, y, H, W);
}

// W AttentionBlock on one frame, tokens = pixels: x + proj(softmax(q·kᵀ/√C)·v). v's bias is added after
// the attention (softmax rows sum to 1), so vᵀ = Wv·hᵀ can be produced transposed by one GEMM.
Status VaeDecoderCuda::Impl::attention(size_t i, const void* x, int64_t H, int64_t W) {
  const DevLayer& L = layers[i];
  LayerBuffers& B = bufs[i];
  const int64_t N = H * W, C = L.spec.in_channels;
  using ops::cuda::GemmCall;
  using ops::cuda::GemmEpilogue;
  using ops::cuda::GemmType;
  auto gemm_f32 = [&](void* y, const void* a, const void* b, const void* bias, int64_t M, int64_t Nn, int64_t K) {
    GemmCall g;
    g.y = y, g.x = a, g.w = b, g.bias = bias, g.M = M, g.N = Nn, g.K = K, g.type = GemmType::f32;
    g.epilogue = bias ? GemmEpilogue::bias : GemmEpilogue::none;
    return gemm->run(g, s());
  };
  VDIT_TRY(cuda::rms_norm_channels_last(B.hn, false, x, bf16, nullptr, L.gamma1.as<float>(), C, N, false, s()));
  VDIT_TRY(gemm_f32(B.q, B.hn, L.wq.data(), L.bq.data(), N, C, C));  // [N, C]
  VDIT_TRY(gemm_f32(B.k, B.hn, L.wk.data(), L.bk.data(), N, C, C));  // [N, C]
  VDIT_TRY(gemm_f32(B.vt, L.wv.data(), B.hn, nullptr, C, N, C));     // [C, N] (no bias)
  VDIT_TRY(gemm_f32(B.s, B.q, B.k, nullptr, N, N, C));        // [N, N]
  VDIT_TRY(cuda::softmax_rows(B.s, N, N, 1.0f / std::sqrt(static_cast<float>(C)), s()));
  VDIT_TRY(gemm_f32(B.o, B.s, B.vt, L.bv.data(), N, C, N));   // [N, C] + bv
  VDIT_TRY(gemm_f32(B.q, B.o, L.wp.data(), L.bp.data(), N, C, C));   // [N, C]
  VDIT_TRY(cuda::add_f32_residual(B.out.data(), bf16, B.q, x, N * C, s()));
  return emit(i, B.out.data(), H, W);
}

// W Resample: upsample3d first doubles frames 1.. through time_conv (its halves = output frames 2k, 2k+1,
// history zero at frame 1); then per frame nearest x2 and the 3x3 conv C -> C/2.
Status VaeDecoderCuda::Impl::upsample(size_t i, const void* x, int64_t H, int64_t W) {
  const DevLayer& L = layers[i];
  LayerBuffers& B = bufs[i];
  const int64_t C = L.spec.in_channels;
  const void* frames[2] = {x, nullptr};
  int count = 1;
  if (L.spec.kind == LayerKind::upsample3d) {
    if (B.seen_first) {
      void* slot = B.win1.next_slot();
      VDIT_CHECK(cudaMemcpyAsync(slot, x, B.win1.frame, cudaMemcpyDeviceToDevice, stream));
      VDIT_TRY(conv_run(B.t0.data(), B.win1.data(), L.time0, H, W, B.win1.rot));  // [H, W, C] = frame 2k
      VDIT_TRY(add_bias(B.t0.data(), L.time0, H * W));
      VDIT_TRY(conv_run(B.t1.data(), B.win1.data(), L.time1, H, W, B.win1.rot));  // [H, W, C] = frame 2k+1
      VDIT_TRY(add_bias(B.t1.data(), L.time1, H * W));
      frames[0] = B.t0.data(), frames[1] = B.t1.data(), count = 2;
    }
    B.seen_first = true;
  }
  for (int k = 0; k < count; ++k) {
    VDIT_TRY(cuda::upsample_nearest2x(B.up, frames[k], bf16, H, W, C, s()));  // [2H, 2W, C]
    VDIT_TRY(conv_run(B.out.data(), B.up, L.conv, 2 * H, 2 * W));            // [2H, 2W, C/2]
    VDIT_TRY(add_bias(B.out.data(), L.conv, 4 * H * W));
    VDIT_TRY(emit(i, B.out.data(), 2 * H, 2 * W));
  }
  return Status::ok();
}

Status VaeDecoderCuda::Impl::sink(const void* y, int64_t H, int64_t W) {
  const int64_t t = next_frame++;
  const int slot = static_cast<int>(t % 2);
  VDIT_TRY(cuda::to_planar(planar.as<float>(), y, bf16, 3, H * W, true, s()));  // [3, H, W] f32 clamped
  VDIT_CHECK(cudaMemcpyAsync(pinned[slot].p, planar.data(), static_cast<size_t>(3 * H * W) * sizeof(float),
                             cudaMemcpyDeviceToHost, stream));
  VDIT_CHECK(cudaEventRecord(copied[slot], stream));
  if (pending >= 0) VDIT_TRY(deliver(pending));
  pending = t;
  return Status::ok();
}

Status VaeDecoderCuda::Impl::deliver(int64_t t) {
  const int slot = static_cast<int>(t % 2);
  VDIT_CHECK(cudaEventSynchronize(copied[slot]));
  const size_t bytes = static_cast<size_t>(3 * out_H * out_W) * sizeof(float);
  Tensor frame = Tensor::from_buffer(HostBuffer::borrow(pinned[slot].p, bytes, nullptr), 0, DType::f32,
                                     {3, out_H, out_W});
  pending = -1;
  return (*on_frame)(t, frame);
}

VaeDecoderCuda::VaeDecoderCuda(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VaeDecoderCuda::~VaeDecoderCuda() = default;

Result<std::unique_ptr<VaeDecoderCuda>> VaeDecoderCuda::create(const VaeDecoder& cpu, const VaeCudaOptions& options) {
  if (cuda_device_count() == 0) {
    return unsupported("the CUDA VAE decoder needs a GPU, but no CUDA device is visible; decode on the CPU");
  }
  auto m = std::make_unique<Impl>();
  m->config = cpu.config();
  m->spatial_factor = cpu.spatial_factor();
  m->options = options;
  m->bf16 = options.precision == VaeCudaPrecision::bf16;
  m->es = m->bf16 ? 2 : 4;
  VDIT_CHECK(cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking));
  for (cudaEvent_t& e : m->copied) VDIT_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  const cuda::ConvPrecision cp = options.precision == VaeCudaPrecision::bf16   ? cuda::ConvPrecision::bf16
                                 : options.precision == VaeCudaPrecision::tf32 ? cuda::ConvPrecision::tf32
                                                                               : cuda::ConvPrecision::fp32;
  VDIT_ASSIGN(m->conv, cuda::ConvEngine::create(cp, m->stream, options.conv_per_tap));
  const bool b16 = m->bf16;
  VDIT_ASSIGN(m->gemm, ops::cuda::LtGemm::create(size_t{32} << 20));

  size_t* wb = &m->weight_bytes;
  int ups = 0;
  for (const VaeLayer& l : cpu.layers()) {
    DevLayer d;
    d.spec = l.spec;
    const int64_t C = l.spec.in_channels;
    if (l.spec.kind == LayerKind::attention) {
      VDIT_ASSIGN(d.gamma1, upload_tensor(l.gamma1, 0, C, wb));
      VDIT_ASSIGN(d.wq, upload_tensor(l.qkv_w, 0, C * C, wb));
      VDIT_ASSIGN(d.wk, upload_tensor(l.qkv_w, C * C, C * C, wb));
      VDIT_ASSIGN(d.wv, upload_tensor(l.qkv_w, 2 * C * C, C * C, wb));
      VDIT_ASSIGN(d.bq, upload_tensor(l.qkv_b, 0, C, wb));
      VDIT_ASSIGN(d.bk, upload_tensor(l.qkv_b, C, C, wb));
      VDIT_ASSIGN(d.bv, upload_tensor(l.qkv_b, 2 * C, C, wb));
      VDIT_ASSIGN(d.wp, upload_tensor(l.proj_w, 0, C * C, wb));
      VDIT_ASSIGN(d.bp, upload_tensor(l.proj_b, 0, C, wb));
    } else {
      if (l.spec.kind == LayerKind::upsample3d) {
        ++ups;
        VDIT_ASSIGN(d.time0, upload_conv(l.time_conv, 0, C, b16, wb));
        VDIT_ASSIGN(d.time1, upload_conv(l.time_conv, C, C, b16, wb));
      }
      VDIT_ASSIGN(d.conv, upload_conv(l.conv, 0, l.conv.co, b16, wb));
      if (l.conv2.co > 0) { VDIT_ASSIGN(d.conv2, upload_conv(l.conv2, 0, l.conv2.co, b16, wb)); }
      if (l.shortcut.co > 0) { VDIT_ASSIGN(d.shortcut, upload_conv(l.shortcut, 0, l.shortcut.co, b16, wb)); }
      if (l.gamma1.defined()) { VDIT_ASSIGN(d.gamma1, upload_tensor(l.gamma1, 0, l.gamma1.numel(), wb)); }
      if (l.gamma2.defined()) { VDIT_ASSIGN(d.gamma2, upload_tensor(l.gamma2, 0, l.gamma2.numel(), wb)); }
    }
    m->layers.push_back(std::move(d));
  }
  m->temporal_ups = ups;
  std::vector<float> inv(m->config.latents_std.size());
  for (size_t c = 0; c < inv.size(); ++c) inv[c] = 1.0f / m->config.latents_std[c];
  VDIT_ASSIGN(m->inv_std, upload(inv.data(), inv.size(), wb));
  VDIT_ASSIGN(m->mean, upload(m->config.latents_mean.data(), m->config.latents_mean.size(), wb));
  m->note_peak();
  return std::unique_ptr<VaeDecoderCuda>(new VaeDecoderCuda(std::move(m)));
}

Result<std::unique_ptr<VaeDecoderCuda>> VaeDecoderCuda::load(const std::string& path, const VaeLoadOptions& lo,
                                                             const VaeCudaOptions& options) {
  VDIT_ASSIGN(VaeDecoder cpu, VaeDecoder::load(path, lo));
  return create(cpu, options);
}

const VaeConfig& VaeDecoderCuda::config() const { return impl_->config; }
int64_t VaeDecoderCuda::spatial_factor() const { return impl_->spatial_factor; }
int64_t VaeDecoderCuda::output_frames(int64_t f) const {
  return f <= 0 ? 0 : 1 + (f - 1) * (int64_t{1} << impl_->temporal_ups);
}
VaeCudaPrecision VaeDecoderCuda::precision() const { return impl_->options.precision; }

VaeCudaMemory VaeDecoderCuda::memory() const {
  VaeCudaMemory m;
  m.weights = impl_->weight_bytes;
  m.activations = impl_->act_bytes;
  m.workspace = impl_->conv->workspace_bytes() + impl_->gemm->workspace_bytes();
  m.peak_total = impl_->peak;
  return m;
}

std::string VaeDecoderCuda::describe_plans() const { return impl_->conv->describe(); }

Status VaeDecoderCuda::decode(const Tensor& z_in, const FrameCallback& on_frame, const VaeDecodeOptions& options) {
  Impl& m = *impl_;
  if (!on_frame) return invalid_argument("VAE decode: no frame callback given");
  if (options.tile < 0) {
    return invalid_argument(strfmt("VAE decode: tile=%lld must be >= 0 (0 = untiled)", (long long)options.tile));
  }
  if (options.tile > 0) {
    return unsupported("VAE decode on CUDA: spatial tiling is not implemented (an 81-frame 720p decode needs about 20 "
                       "GiB untiled); use tile=0 or the CPU decoder");
  }
  Tensor z = z_in;
  if (z.rank() == 5 && z.dim(0) == 1) { VDIT_ASSIGN(z, z.reshape({z.dim(1), z.dim(2), z.dim(3), z.dim(4)})); }
  if (z.rank() != 4 || z.dim(0) != m.config.z_dim || z.dim(1) < 1 || z.dim(2) < 1 || z.dim(3) < 1) {
    return invalid_argument(strfmt("VAE decode: latent has shape %s; expected [%lld, F, H, W] (normalized latent, "
                                   "F >= 1 frames, H x W = video size / 8)",
                                   shape_str(z_in.shape()).c_str(), (long long)m.config.z_dim));
  }
  if (!dtype_is_float(z.dtype())) {
    return invalid_argument(strfmt("VAE decode: latent dtype is %s; expected a float type", dtype_name(z.dtype())));
  }
  VDIT_ASSIGN(z, z.to(DType::f32));
  for (int64_t i = 0; i < z.numel(); ++i) {
    if (!std::isfinite(z.f32()[i])) {
      return invalid_argument(strfmt("VAE decode: latent value %g at flat index %lld is not finite; the sampler "
                                     "diverged or the input file is corrupt",
                                     z.f32()[i], static_cast<long long>(i)));
    }
  }
  const int64_t Z = z.dim(0), F = z.dim(1), lh = z.dim(2), lw = z.dim(3);
  m.on_frame = &on_frame;
  m.on_stage = &options.on_stage;
  if (options.on_stage && !m.stage.size()) m.h = 0;  // re-plan buffers with a stage staging buffer
  VDIT_TRY(m.prepare(lh, lw));
  if (m.z_dev.size() < z.nbytes()) {
    VDIT_CHECK(cudaStreamSynchronize(m.stream));
    m.z_dev = DeviceBuffer();
    VDIT_ASSIGN(m.z_dev, DeviceBuffer::allocate(z.nbytes()));
  }
  VDIT_CHECK(cudaMemcpyAsync(m.z_dev.data(), z.raw(), z.nbytes(), cudaMemcpyHostToDevice, m.stream));
  for (int64_t f = 0; f < F; ++f) {
    VDIT_TRY(cuda::denorm_latent_frame(m.x0.data(), m.bf16, m.z_dev.as<float>(), m.inv_std.as<float>(),
                                       m.mean.as<float>(), Z, F, f, lh * lw, m.s()));  // [h, w, Z]
    VDIT_TRY(m.feed(0, m.x0.data(), lh, lw));
  }
  if (m.pending >= 0) VDIT_TRY(m.deliver(m.pending));
  VDIT_CHECK(cudaStreamSynchronize(m.stream));
  m.note_peak();
  m.peak = std::max(m.peak, m.weight_bytes + m.act_bytes + m.z_dev.size() + m.conv->workspace_bytes() +
                                m.gemm->workspace_bytes());
  return Status::ok();
}

}  // namespace vdit::vae
