// The CUDA backend of WanDit (internal: reached through load_wan_dit / create_wan_dit with DitDevice::cuda,
// and directly by `vdit bench step` for random full-size models). Weights live on the GPU in bf16 (GEMM
// weights) and fp32 (norms, modulation, time MLP, head), as the official autocast run computes them.
// CPU-only builds link wan_dit_no_cuda.cpp, whose factories return `unsupported`. No CUDA headers here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dit/model/wan_dit.h"
#include "dit/model/wan_weights.h"

namespace vdit::model {

// Uploads `weights` (f32 host tensors, e.g. mapped from `file`) and builds the model on the current device.
Result<std::unique_ptr<WanDit>> make_wan_dit_cuda(const WanDitConfig& config, const WanDitWeights& weights);

// A model with seeded random weights generated on the GPU (no host copy), initialised as the goldens
// (wan.md §7.3): Linear weights N(0, 1/fan_in), biases 0.05·N, norm weights 1 + 0.1·N, modulation N/√D.
Result<std::unique_ptr<WanDit>> make_random_wan_dit_cuda(const WanDitConfig& config, uint64_t seed);

// The model's weights copied back as f32 host tensors (bf16 weights widened exactly), so the CPU backend
// can run the very same model (make_wan_dit_cpu). `model` must come from this backend.
Result<WanDitWeights> download_wan_dit_cuda_weights(const WanDit& model);

// GPU memory the model holds: weights, the activation arena of the last shape, and one text conditioning.
struct CudaDitMemory {
  size_t weight_bytes = 0;
  size_t arena_bytes = 0;
  size_t text_bytes = 0;  // per prepared prompt
};
Result<CudaDitMemory> cuda_dit_memory(const WanDit& model);

// CUDA graphs of the forward, on by default. A forward without a stage recorder whose self-attention says it is
// graph-safe for the call (attn::SelfAttention::device_graph_safe: dense) runs its device part (patch embedding
// to unpatchify, after the uploads of the latent and the timestep, before the copy of the velocity) as a CUDA
// graph. Per key (latent shape, text conditioning, attention object) the first forward runs eagerly (it builds
// the GEMM and attention plans), the second is captured and launched, later ones launch the graph. If a capture
// fails the forward runs eagerly and the model stops trying (CudaDitGraphInfo::failure) until graphs are
// switched on again. Off: every forward enqueues its kernels one by one and the cached graphs are freed.
// Pays where kernel launches dominate (small models, e.g. the built-in one); `model` must be a CUDA DiT.
Status set_cuda_dit_graphs(WanDit& model, bool enabled);

struct CudaDitGraphInfo {
  bool enabled = true;           // set_cuda_dit_graphs
  bool last_used_graph = false;  // the last forward launched a graph
  int64_t eager_forwards = 0;    // forwards enqueued kernel by kernel (warm-ups, recorder, not graph-safe, off)
  int64_t captures = 0;          // graphs captured and instantiated
  int64_t launches = 0;          // forwards run by a graph launch (also the one right after its capture)
  int64_t cached_graphs = 0;     // instantiated graphs held now
  std::string failure;           // why graphs were given up for this model; empty while they are not
};
Result<CudaDitGraphInfo> cuda_dit_graph_info(const WanDit& model);

}  // namespace vdit::model
