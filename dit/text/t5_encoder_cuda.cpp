// T5EncoderCuda (t5_encoder_cuda.h): weight upload into one device arena (q|k|v and gate|fc1 fused, so a
// layer is four cuBLASLt GEMMs), the per-call workspace, and the forward pass on one stream:
//   embed -> 24 x [add + RMS norm, qkv GEMM, Q·Kᵀ (batched cuBLAS), softmax(+bias, mask), P·V, o GEMM,
//   add + RMS norm, gate|fc1 GEMM, GELU(gate)·fc1, fc2 GEMM] -> add + final RMS norm (fp32 out).
// Each sub-layer's output is added to the fp32 residual stream by the next norm kernel. Does not: tokenize,
// keep the embedding on the host, or overlap several encodes.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "dit/core/check_cuda.h"
#include "dit/core/parallel.h"
#include "dit/ops/cuda/dit_kernels.h"
#include "dit/ops/cuda/lt_gemm.h"
#include "dit/text/t5_attention.h"
#include "dit/text/t5_encoder_cuda.h"
#include "dit/text/t5_input_check.h"
#include "dit/text/t5_kernels.h"

namespace vdit::text {
namespace {

constexpr size_t kAlign = 256;  // every arena slice starts 256-byte aligned (cuBLASLt wants 16)

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Bump allocator over one buffer: offsets first (to size the buffer), pointers once it exists.
struct Arena {
  size_t size = 0;
  size_t take(size_t bytes) {
    const size_t off = size;
    size = align_up(size + bytes);
    return off;
  }
};

uint64_t tensor_seed(uint64_t seed, uint64_t k) {  // splitmix64: independent Philox keys per tensor
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (k + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct LayerOffsets {
  size_t wqkv = 0;  // [3·DA, D]  rows q, then k, then v
  size_t wo = 0;    // [D, DA]
  size_t wgu = 0;   // [2·F, D]   rows gate (GELU branch), then fc1
  size_t wfc2 = 0;  // [D, F]
  size_t norm1 = 0, norm2 = 0;  // [D] f32
  size_t rel = 0;   // [NB, NH] f32 (unused when the table is shared)
};

}  // namespace

struct T5EncoderCuda::Impl {
  T5Config config;
  T5CudaOptions options;
  bool bf16 = true;  // activation / GEMM dtype
  size_t es = 2;     // its size

  DeviceBuffer weights;  // the weight arena
  size_t emb_off = 0, final_norm_off = 0, shared_rel_off = 0;
  std::vector<LayerOffsets> layers;

  DeviceBuffer work;  // activations for work_L tokens
  int64_t work_L = 0;

  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  std::unique_ptr<ops::cuda::LtGemm> gemm;
  std::mutex mu;

  ~Impl() {
    if (stream) cudaStreamSynchronize(stream);
    gemm.reset();
    work = DeviceBuffer();
    weights = DeviceBuffer();
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  char* wp(size_t off) const { return static_cast<char*>(weights.data()) + off; }
  float* wf(size_t off) const { return reinterpret_cast<float*>(wp(off)); }

  static Result<std::unique_ptr<Impl>> make(const T5Config& c, const T5CudaOptions& o);
  Status upload(size_t off, bool to_act_dtype, const Tensor& src, int64_t numel, const char* what);
  Result<Tensor> download(size_t off, bool act_dtype, Shape shape) const;
  Status ensure_workspace(int64_t L);
  Status gemm_run(void* y, const void* x, size_t w_off, int64_t M, int64_t N, int64_t K);
  Status forward(const int32_t* ids, const uint8_t* mask, int64_t L, float* out_host);
};

namespace {

// Activation slices of the workspace for L tokens. `ld` is the row pitch of the score matrices.
struct Work {
  int32_t* ids;      // [L]
  uint8_t* mask;     // [L]
  int32_t* buckets;  // [2L-1]
  float* x;          // [L, D] fp32 residual stream
  void* h;           // [L, D] normed sub-layer input
  void* qkv;         // [L, 3·DA] = [L, 3, NH, HD]
  float* scores;     // [NH, L, ld] fp32
  void* probs;       // [NH, L, ld]
  void* att;         // [L, DA] = [L, NH, HD]
  void* y;           // [L, D] sub-layer output (added by the next norm)
  void* gu;          // [L, 2·F] gate | fc1
  void* act;         // [L, F]
  float* out;        // [L, D] fp32 final output
  int64_t ld;
};

Work plan_work(const T5Config& c, size_t es, int64_t L, void* base, Arena& a) {
  const size_t l = static_cast<size_t>(L);
  const int64_t ld = (L + 7) / 8 * 8;  // 16-byte aligned rows for the tensor-core batched GEMMs
  const size_t D = c.dim, DA = c.dim_attn, F = c.dim_ffn, NH = c.num_heads;
  char* b = static_cast<char*>(base);
  auto at = [&](size_t bytes) -> void* { const size_t off = a.take(bytes); return b ? b + off : nullptr; };
  Work w{};
  w.ids = static_cast<int32_t*>(at(l * 4));
  w.mask = static_cast<uint8_t*>(at(l));
  w.buckets = static_cast<int32_t*>(at((2 * l - 1) * 4));
  w.x = static_cast<float*>(at(l * D * 4));
  w.h = at(l * D * es);
  w.qkv = at(l * 3 * DA * es);
  w.scores = static_cast<float*>(at(NH * l * ld * 4));
  w.probs = at(NH * l * ld * es);
  w.att = at(l * DA * es);
  w.y = at(l * D * es);
  w.gu = at(l * 2 * F * es);
  w.act = at(l * F * es);
  w.out = static_cast<float*>(at(l * D * 4));
  w.ld = ld;
  return w;
}

Status with_gpu_hint(const Status& s, const std::string& what) {
  if (s.code() == StatusCode::out_of_memory) {
    return Status(StatusCode::out_of_memory, what + ": " + s.message() +
                                                 "; run the text encoder on the CPU instead (--text-encoder-device cpu)");
  }
  return s.with_context(what);
}

}  // namespace

Result<std::unique_ptr<T5EncoderCuda::Impl>> T5EncoderCuda::Impl::make(const T5Config& c, const T5CudaOptions& o) {
  if (Status v = c.validate(); !v.is_ok()) return invalid_argument(v.message());
  if (cuda_device_count() == 0) {
    return unsupported("the GPU text encoder needs a CUDA device and none is visible; use --text-encoder-device cpu");
  }
  auto impl = std::make_unique<Impl>();
  impl->config = c;
  impl->options = o;
  impl->bf16 = o.precision == T5Precision::bf16;
  impl->es = impl->bf16 ? 2 : 4;

  const size_t D = c.dim, DA = c.dim_attn, F = c.dim_ffn, es = impl->es;
  const size_t table = static_cast<size_t>(c.num_buckets * c.num_heads) * 4;
  Arena a;
  impl->emb_off = a.take(static_cast<size_t>(c.vocab) * D * es);
  impl->layers.resize(static_cast<size_t>(c.num_layers));
  for (LayerOffsets& l : impl->layers) {
    l.wqkv = a.take(3 * DA * D * es);
    l.wo = a.take(D * DA * es);
    l.wgu = a.take(2 * F * D * es);
    l.wfc2 = a.take(D * F * es);
    l.norm1 = a.take(D * 4);
    l.norm2 = a.take(D * 4);
    if (!c.shared_pos) l.rel = a.take(table);
  }
  impl->final_norm_off = a.take(D * 4);
  if (c.shared_pos) impl->shared_rel_off = a.take(table);

  const std::string what = strfmt("putting the T5 encoder (%s) on the GPU as %s: %.2f GiB of weights",
                                  c.summary().c_str(), t5_precision_name(o.precision),
                                  static_cast<double>(a.size) / (1 << 30));
  auto buf = DeviceBuffer::allocate(a.size);
  if (!buf) return with_gpu_hint(buf.status(), what);
  impl->weights = std::move(*buf);
  VDIT_CHECK(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  VDIT_CHECK(cublasCreate(&impl->blas));
  VDIT_CHECK(cublasSetStream(impl->blas, impl->stream));
  auto g = ops::cuda::LtGemm::create(size_t{32} << 20, o.gemm_autotune);
  if (!g) return with_gpu_hint(g.status(), what);
  impl->gemm = std::move(*g);
  return impl;
}

// Copies `src` (f32/bf16/f16 host tensor of `numel` elements) into the arena at `off`, converted to the
// activation dtype (GEMM weights, embedding) or to f32 (norms, bias tables).
Status T5EncoderCuda::Impl::upload(size_t off, bool to_act_dtype, const Tensor& src, int64_t numel, const char* what) {
  if (!src.defined() || src.numel() != numel) {
    return invalid_argument(strfmt("T5 weights: %s has %lld elements, expected %lld", what,
                                   static_cast<long long>(src.defined() ? src.numel() : 0),
                                   static_cast<long long>(numel)));
  }
  const DType dst_type = to_act_dtype && bf16 ? DType::bf16 : DType::f32;
  char* dst = wp(off);
  if (src.dtype() == dst_type) {
    VDIT_CHECK(cudaMemcpy(dst, src.raw(), src.nbytes(), cudaMemcpyHostToDevice));
    return Status::ok();
  }
  const int64_t chunk = int64_t{1} << 22, piece = int64_t{1} << 16;
  std::vector<float> f32(static_cast<size_t>(std::min(chunk, numel)));
  std::vector<uint16_t> half(dst_type == DType::bf16 ? f32.size() : 0);
  const size_t src_es = dtype_size(src.dtype()), dst_es = dtype_size(dst_type);
  const auto* s = static_cast<const uint8_t*>(src.raw());
  for (int64_t b = 0; b < numel; b += chunk) {
    const int64_t n = std::min(chunk, numel - b);
    parallel_for((n + piece - 1) / piece, [&](int64_t p) {
      const int64_t p0 = p * piece, pn = std::min(piece, n - p0);
      convert_to_f32(f32.data() + p0, s + static_cast<size_t>(b + p0) * src_es, src.dtype(), static_cast<size_t>(pn));
      if (dst_type == DType::bf16) {
        convert_from_f32(half.data() + p0, DType::bf16, f32.data() + p0, static_cast<size_t>(pn));
      }
    });
    const void* h = dst_type == DType::bf16 ? static_cast<const void*>(half.data()) : f32.data();
    VDIT_CHECK(cudaMemcpy(dst + static_cast<size_t>(b) * dst_es, h, static_cast<size_t>(n) * dst_es,
                          cudaMemcpyHostToDevice));
  }
  return Status::ok();
}

Result<Tensor> T5EncoderCuda::Impl::download(size_t off, bool act_dtype, Shape shape) const {
  VDIT_ASSIGN(Tensor t, Tensor::create(DType::f32, std::move(shape)));
  const size_t n = static_cast<size_t>(t.numel());
  if (act_dtype && bf16) {
    std::vector<uint16_t> h(n);
    VDIT_CHECK(cudaMemcpy(h.data(), wp(off), n * 2, cudaMemcpyDeviceToHost));
    convert_to_f32(t.f32(), h.data(), DType::bf16, n);
  } else {
    VDIT_CHECK(cudaMemcpy(t.f32(), wp(off), n * 4, cudaMemcpyDeviceToHost));
  }
  return t;
}

Status T5EncoderCuda::Impl::ensure_workspace(int64_t L) {
  if (L <= work_L) return Status::ok();
  Arena a;
  plan_work(config, es, L, nullptr, a);
  work = DeviceBuffer();  // free the smaller one first
  work_L = 0;
  auto buf = DeviceBuffer::allocate(a.size);
  if (!buf) {
    return with_gpu_hint(buf.status(), strfmt("T5 encode of %lld tokens on the GPU: %.1f MiB of activations",
                                              static_cast<long long>(L), static_cast<double>(a.size) / (1 << 20)));
  }
  work = std::move(*buf);
  work_L = L;
  return Status::ok();
}

Status T5EncoderCuda::Impl::gemm_run(void* y, const void* x, size_t w_off, int64_t M, int64_t N, int64_t K) {
  ops::cuda::GemmCall call;
  call.y = y;
  call.x = x;
  call.w = wp(w_off);
  call.M = M;
  call.N = N;
  call.K = K;
  call.type = bf16 ? ops::cuda::GemmType::bf16 : ops::cuda::GemmType::f32;
  call.epilogue = ops::cuda::GemmEpilogue::none;
  return gemm->run(call, stream);
}

Status T5EncoderCuda::Impl::forward(const int32_t* ids, const uint8_t* mask, int64_t L, float* out_host) {
  const T5Config& c = config;
  const int64_t D = c.dim, DA = c.dim_attn, F = c.dim_ffn, NH = c.num_heads, HD = c.head_dim();
  if (L > 0x7fffffff / 2) return invalid_argument(strfmt("T5 encode: %lld tokens is too many", (long long)L));
  VDIT_TRY(ensure_workspace(L));
  Arena a;
  const Work w = plan_work(c, es, L, work.data(), a);
  cudaStream_t s = stream;
  const std::vector<int32_t> buckets = t5_relative_buckets(L, c.num_buckets, c.max_distance);  // [2L-1]
  VDIT_CHECK(cudaMemcpyAsync(w.ids, ids, static_cast<size_t>(L) * 4, cudaMemcpyHostToDevice, s));
  if (mask) VDIT_CHECK(cudaMemcpyAsync(w.mask, mask, static_cast<size_t>(L), cudaMemcpyHostToDevice, s));
  VDIT_CHECK(cudaMemcpyAsync(w.buckets, buckets.data(), buckets.size() * 4, cudaMemcpyHostToDevice, s));
  VDIT_TRY(cuda::t5_embed(w.x, wp(emb_off), bf16, w.ids, L, D, s));

  cuda::T5NormParams norm;
  norm.x = w.x;
  norm.y_bf16 = bf16;
  norm.out = w.h;
  norm.out_bf16 = bf16;
  norm.rows = L;
  norm.D = D;
  norm.eps = c.eps;
  cuda::T5SoftmaxParams sm;
  sm.scores = w.scores;
  sm.probs = w.probs;
  sm.probs_bf16 = bf16;
  sm.buckets = w.buckets;
  sm.key_mask = mask ? w.mask : nullptr;
  sm.L = L;
  sm.ld = w.ld;
  sm.num_heads = NH;
  const cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const float one = 1.f, zero = 0.f;
  const char* qkv = static_cast<const char*>(w.qkv);
  const void *q = qkv, *k = qkv + DA * es, *v = qkv + 2 * DA * es;
  const int ld_qkv = static_cast<int>(3 * DA), iL = static_cast<int>(L), iHD = static_cast<int>(HD);

  const void* pending = nullptr;  // the previous sub-layer's output, still to be added to x
  for (const LayerOffsets& l : layers) {
    // Self-attention: x += o(softmax(q·kᵀ + bias, mask)·v), q|k|v from RMS(x).
    norm.y = pending;
    norm.weight = wf(l.norm1);
    VDIT_TRY(cuda::t5_add_rms_norm(norm, s));
    VDIT_TRY(gemm_run(w.qkv, w.h, l.wqkv, L, 3 * DA, D));
    // scores[h] = Q_h·K_hᵀ: column-major S_hᵀ [Lk, Lq] = K_h [HD, Lk]ᵀ · Q_h [HD, Lq], heads HD apart.
    VDIT_CHECK(cublasGemmStridedBatchedEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, iL, iL, iHD, &one, k, t, ld_qkv, HD, q, t,
                                          ld_qkv, HD, &zero, w.scores, CUDA_R_32F, static_cast<int>(w.ld), L * w.ld,
                                          static_cast<int>(NH), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    sm.table = wf(c.shared_pos ? shared_rel_off : l.rel);
    VDIT_TRY(cuda::t5_softmax_bias(sm, s));
    // att[:, h] = P_h·V_h: column-major O_hᵀ [HD, Lq] = V_hᵀ [HD, Lk] · P_hᵀ [Lk, Lq].
    VDIT_CHECK(cublasGemmStridedBatchedEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, iHD, iL, iL, &one, v, t, ld_qkv, HD,
                                          w.probs, t, static_cast<int>(w.ld), L * w.ld, &zero, w.att, t,
                                          static_cast<int>(DA), HD, static_cast<int>(NH), CUBLAS_COMPUTE_32F,
                                          CUBLAS_GEMM_DEFAULT));
    VDIT_TRY(gemm_run(w.y, w.att, l.wo, L, D, DA));
    // Gated GELU FFN: x += fc2(fc1(h) · GELU_tanh(gate(h))), h = RMS(x).
    norm.y = w.y;
    norm.weight = wf(l.norm2);
    VDIT_TRY(cuda::t5_add_rms_norm(norm, s));
    VDIT_TRY(gemm_run(w.gu, w.h, l.wgu, L, 2 * F, D));
    VDIT_TRY(cuda::t5_gated_gelu(w.act, w.gu, bf16, L, F, s));
    VDIT_TRY(gemm_run(w.y, w.act, l.wfc2, L, D, F));
    pending = w.y;
  }
  norm.y = pending;
  norm.weight = wf(final_norm_off);
  norm.out = w.out;
  norm.out_bf16 = false;
  VDIT_TRY(cuda::t5_add_rms_norm(norm, s));
  VDIT_CHECK(cudaMemcpyAsync(out_host, w.out, static_cast<size_t>(L * D) * 4, cudaMemcpyDeviceToHost, s));
  VDIT_CHECK(cudaStreamSynchronize(s));
  return Status::ok();
}

T5EncoderCuda::T5EncoderCuda(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
T5EncoderCuda::~T5EncoderCuda() = default;

const T5Config& T5EncoderCuda::config() const { return impl_->config; }
T5Precision T5EncoderCuda::precision() const { return impl_->options.precision; }

T5CudaMemory T5EncoderCuda::memory() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  T5CudaMemory m;
  m.weight_bytes = impl_->weights.size();
  m.workspace_bytes = impl_->work.size() + (impl_->gemm ? impl_->gemm->workspace_bytes() : 0);
  return m;
}

Result<std::unique_ptr<T5EncoderCuda>> T5EncoderCuda::create(const T5Weights& w, const T5CudaOptions& o) {
  const T5Config& c = w.config;
  if (static_cast<int64_t>(w.layers.size()) != c.num_layers) {
    return invalid_argument(strfmt("T5 weights: %zu layers, config says %lld", w.layers.size(),
                                   static_cast<long long>(c.num_layers)));
  }
  VDIT_ASSIGN(std::unique_ptr<Impl> impl, Impl::make(c, o));
  const int64_t D = c.dim, DA = c.dim_attn, F = c.dim_ffn, table = c.num_buckets * c.num_heads;
  const size_t es = impl->es;
  VDIT_TRY(impl->upload(impl->emb_off, true, w.token_embedding, c.vocab * D, "token_embedding"));
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const T5LayerWeights& s = w.layers[i];
    const LayerOffsets& d = impl->layers[i];
    VDIT_TRY(impl->upload(d.wqkv, true, s.q, DA * D, "attn.q"));
    VDIT_TRY(impl->upload(d.wqkv + DA * D * es, true, s.k, DA * D, "attn.k"));
    VDIT_TRY(impl->upload(d.wqkv + 2 * DA * D * es, true, s.v, DA * D, "attn.v"));
    VDIT_TRY(impl->upload(d.wo, true, s.o, D * DA, "attn.o"));
    VDIT_TRY(impl->upload(d.wgu, true, s.gate, F * D, "ffn.gate"));
    VDIT_TRY(impl->upload(d.wgu + F * D * es, true, s.fc1, F * D, "ffn.fc1"));
    VDIT_TRY(impl->upload(d.wfc2, true, s.fc2, D * F, "ffn.fc2"));
    VDIT_TRY(impl->upload(d.norm1, false, s.norm1, D, "norm1"));
    VDIT_TRY(impl->upload(d.norm2, false, s.norm2, D, "norm2"));
    if (!c.shared_pos) VDIT_TRY(impl->upload(d.rel, false, s.rel_bias, table, "pos_embedding"));
  }
  VDIT_TRY(impl->upload(impl->final_norm_off, false, w.final_norm, D, "norm"));
  if (c.shared_pos) VDIT_TRY(impl->upload(impl->shared_rel_off, false, w.shared_rel_bias, table, "pos_embedding"));
  return std::unique_ptr<T5EncoderCuda>(new T5EncoderCuda(std::move(impl)));
}

Result<std::unique_ptr<T5EncoderCuda>> T5EncoderCuda::load(const std::string& path, const T5CudaOptions& o) {
  T5LoadOptions lo;
  lo.weights_f32 = false;  // no f32 host copy: matrices are converted while uploading
  VDIT_ASSIGN(T5Weights w, load_t5_weights(path, lo));
  return create(w, o);
}

Result<std::unique_ptr<T5EncoderCuda>> T5EncoderCuda::random(const T5Config& c, uint64_t seed, const T5CudaOptions& o) {
  VDIT_ASSIGN(std::unique_ptr<Impl> impl, Impl::make(c, o));
  const int64_t D = c.dim, DA = c.dim_attn, F = c.dim_ffn, table = c.num_buckets * c.num_heads;
  const bool b = impl->bf16;
  void* s = impl->stream;
  uint64_t k = 0;
  auto fill = [&](size_t off, bool act, int64_t n, float scale, float offset) {
    return ops::cuda::fill_gaussian(impl->wp(off), act && b, n, tensor_seed(seed, k++), scale, offset, s);
  };
  const float sd = 1.f / std::sqrt(static_cast<float>(D));
  VDIT_TRY(fill(impl->emb_off, true, c.vocab * D, 1.f, 0.f));
  for (const LayerOffsets& l : impl->layers) {
    VDIT_TRY(fill(l.wqkv, true, 3 * DA * D, sd, 0.f));
    VDIT_TRY(fill(l.wo, true, D * DA, 1.f / std::sqrt(static_cast<float>(DA)), 0.f));
    VDIT_TRY(fill(l.wgu, true, 2 * F * D, sd, 0.f));
    VDIT_TRY(fill(l.wfc2, true, D * F, 1.f / std::sqrt(static_cast<float>(F)), 0.f));
    VDIT_TRY(fill(l.norm1, false, D, 0.1f, 1.f));
    VDIT_TRY(fill(l.norm2, false, D, 0.1f, 1.f));
    if (!c.shared_pos) VDIT_TRY(fill(l.rel, false, table, 0.5f, 0.f));
  }
  VDIT_TRY(fill(impl->final_norm_off, false, D, 0.1f, 1.f));
  if (c.shared_pos) VDIT_TRY(fill(impl->shared_rel_off, false, table, 0.5f, 0.f));
  VDIT_CHECK(cudaStreamSynchronize(impl->stream));
  return std::unique_ptr<T5EncoderCuda>(new T5EncoderCuda(std::move(impl)));
}

Result<Tensor> T5EncoderCuda::encode(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask) const {
  VDIT_TRY(check_t5_inputs(impl_->config, ids, mask));
  const int64_t L = static_cast<int64_t>(ids.size());
  const bool all_valid = std::all_of(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; });
  std::vector<uint8_t> m01;  // normalized to 0/1 bytes
  if (!all_valid) {
    m01.resize(mask.size());
    for (size_t i = 0; i < mask.size(); ++i) m01[i] = mask[i] != 0;
  }
  VDIT_ASSIGN(Tensor out, Tensor::create(DType::f32, {L, impl_->config.dim}));
  std::lock_guard<std::mutex> lock(impl_->mu);
  VDIT_TRY(impl_->forward(ids.data(), all_valid ? nullptr : m01.data(), L, out.f32()));
  return out;
}

Result<Tensor> T5EncoderCuda::encode_trimmed(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask) const {
  VDIT_TRY(check_t5_inputs(impl_->config, ids, mask));
  VDIT_ASSIGN(const int64_t len, t5_trimmed_length(ids, mask));
  VDIT_ASSIGN(Tensor out, Tensor::create(DType::f32, {len, impl_->config.dim}));
  std::lock_guard<std::mutex> lock(impl_->mu);
  VDIT_TRY(impl_->forward(ids.data(), nullptr, len, out.f32()));
  return out;
}

Result<T5Weights> T5EncoderCuda::download_weights() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const Impl& m = *impl_;
  const T5Config& c = m.config;
  const int64_t D = c.dim, DA = c.dim_attn, F = c.dim_ffn;
  const size_t es = m.es;
  VDIT_CHECK(cudaStreamSynchronize(m.stream));
  T5Weights w;
  w.config = c;
  w.layout = "official";
  w.source = std::string("GPU T5 encoder (") + t5_precision_name(m.options.precision) + ")";
  VDIT_ASSIGN(w.token_embedding, m.download(m.emb_off, true, {c.vocab, D}));
  for (const LayerOffsets& d : m.layers) {
    T5LayerWeights l;
    VDIT_ASSIGN(l.q, m.download(d.wqkv, true, {DA, D}));
    VDIT_ASSIGN(l.k, m.download(d.wqkv + DA * D * es, true, {DA, D}));
    VDIT_ASSIGN(l.v, m.download(d.wqkv + 2 * DA * D * es, true, {DA, D}));
    VDIT_ASSIGN(l.o, m.download(d.wo, true, {D, DA}));
    VDIT_ASSIGN(l.gate, m.download(d.wgu, true, {F, D}));
    VDIT_ASSIGN(l.fc1, m.download(d.wgu + F * D * es, true, {F, D}));
    VDIT_ASSIGN(l.fc2, m.download(d.wfc2, true, {D, F}));
    VDIT_ASSIGN(l.norm1, m.download(d.norm1, false, {D}));
    VDIT_ASSIGN(l.norm2, m.download(d.norm2, false, {D}));
    if (!c.shared_pos) {
      VDIT_ASSIGN(l.rel_bias, m.download(d.rel, false, {c.num_buckets, c.num_heads}));
    }
    w.layers.push_back(std::move(l));
  }
  VDIT_ASSIGN(w.final_norm, m.download(m.final_norm_off, false, {D}));
  if (c.shared_pos) {
    VDIT_ASSIGN(w.shared_rel_bias, m.download(m.shared_rel_off, false, {c.num_buckets, c.num_heads}));
  }
  return w;
}

}  // namespace vdit::text
