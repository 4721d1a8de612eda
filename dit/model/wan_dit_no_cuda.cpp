// The CUDA DiT factories and queries in builds without CUDA: each says that this build has no GPU backend.
#include "dit/model/wan_dit_cuda.h"

namespace vdit::model {
namespace {
Status no_cuda() {
  return unsupported("this build of vdit has no CUDA backend for the Wan DiT; rebuild with -DVDIT_CUDA=ON where "
                     "nvcc and cuDNN are installed, or use the cpu device");
}
}  // namespace

Result<std::unique_ptr<WanDit>> make_wan_dit_cuda(const WanDitConfig&, const WanDitWeights&) { return no_cuda(); }
Result<std::unique_ptr<WanDit>> make_random_wan_dit_cuda(const WanDitConfig&, uint64_t) { return no_cuda(); }
Result<WanDitWeights> download_wan_dit_cuda_weights(const WanDit&) { return no_cuda(); }
Result<CudaDitMemory> cuda_dit_memory(const WanDit&) { return no_cuda(); }
Status set_cuda_dit_graphs(WanDit&, bool) { return no_cuda(); }
Result<CudaDitGraphInfo> cuda_dit_graph_info(const WanDit&) { return no_cuda(); }

}  // namespace vdit::model
