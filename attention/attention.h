// The attention interface the models call for self-attention. A `SelfAttention` object is created per
// run for the chosen method (dense, or a sparse method from attention/methods/) and sees every call with
// its position in the sampling loop, so methods can keep state across layers and steps.
// Tensor layout everywhere: q, k, v, out are [L, NH, HD] f32, contiguous (token-major, as produced by
// the model's linear layers); lse is [NH, L] (natural log). Methods are created by make_attention() in
// attention/methods/method.h (see attention/README.md).
#pragma once

#include <cstdint>
#include <memory>

#include "attention/device_attention.h"
#include "dit/core/status.h"

namespace vdit::attn {

// The latent token grid of a video (after patch embedding): frames x height x width, L = f*h*w,
// token index (fi*h + hi)*w + wi.
struct VideoGrid {
  int64_t f = 0, h = 0, w = 0;
  int64_t tokens() const { return f * h * w; }
};

// Where a call sits in the generation: used by methods with dense warm-up steps/layers and caches.
struct AttentionCall {
  int layer = 0;
  int num_layers = 1;
  int step = 0;        // denoising step index, 0-based
  int num_steps = 1;
  int branch = 0;      // 0 = conditional, 1 = unconditional (CFG); methods keep state per branch
  VideoGrid grid;      // video tokens come first in q/k/v, frame-major
  int64_t text_len = 0;  // text tokens after the video tokens (0 for Wan's self-attention)
  bool text_first = false;  // text tokens before the video instead (CogVideoX/PARO layout)

  int64_t video_begin() const { return text_first ? text_len : 0; }  // first video token
};

class SelfAttention {
 public:
  virtual ~SelfAttention() = default;
  // out[L,NH,HD] = attention(q, k, v) with scale 1/sqrt(HD); L = call.grid.tokens() + call.text_len.
  virtual Status forward(const AttentionCall& call, const float* q, const float* k, const float* v, int64_t L,
                         int NH, int HD, float* out) = 0;
  virtual const char* name() const = 0;
  // The same call on device memory (the CUDA backend; see device_attention.h). Methods without a GPU path
  // return `unsupported` naming themselves.
  virtual Status forward_device(const AttentionCall& call, const DeviceQKV& qkv);

  // Whether the work forward_device(call, ·) enqueues may be captured once into a CUDA graph and replayed for
  // later calls of the same shapes (other steps and branches included) for which this also says true. It may
  // say true only if, once a call of the same shapes ran outside capture, such a call just enqueues work on
  // qkv.stream: no host synchronization, device allocation or pageable copy, no host-side planning, and no
  // per-call host bookkeeping (statistics, records) that a replay would skip. Default false: the CUDA DiT then
  // enqueues its forward kernel by kernel.
  virtual bool device_graph_safe(const AttentionCall& /*call*/) const { return false; }
  // Names the device resources (workspaces, plans) that captured work refers to: unique in the process (so a
  // new object at a freed one's address differs) and changed whenever such a resource may have been freed or
  // moved, e.g. when a call of a new shape grew a workspace. A graph captured under one value is replayed only
  // while the object still reports it. Meaningful only where device_graph_safe() says true.
  virtual uint64_t device_graph_epoch() const { return 0; }
};

// Exact dense attention on the CPU (tiled online softmax; never materializes the L x L matrix).
std::unique_ptr<SelfAttention> make_dense_cpu_attention();

}  // namespace vdit::attn
