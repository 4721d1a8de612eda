// CudnnSdpa in builds without cuDNN: create() and every call say that this build has no cuDNN and how to
// get it. Nothing here touches a GPU.
#include "attention/cuda/cudnn_sdpa.h"

namespace vdit::attn {
namespace {
Status no_cudnn() {
  return unsupported("dense GPU attention uses cuDNN, but this build has no cuDNN; rebuild with -DVDIT_CUDNN=ON "
                     "(and -DVDIT_CUDA=ON) where cudnn.h and libcudnn 9.13.1 or newer are installed");
}
}  // namespace

struct CudnnSdpa::Impl {};

CudnnSdpa::CudnnSdpa(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudnnSdpa::~CudnnSdpa() = default;

Result<std::unique_ptr<CudnnSdpa>> CudnnSdpa::create() { return no_cudnn(); }
Status CudnnSdpa::forward(const DeviceQKV&) { return no_cudnn(); }
std::string CudnnSdpa::unsupported_reason(const DeviceQKV&) { return "this build has no cuDNN"; }
int CudnnSdpa::version() { return 0; }
std::string CudnnSdpa::describe() const { return "no cuDNN in this build"; }
Result<std::string> CudnnSdpa::plan_info(const DeviceQKV&) { return no_cudnn(); }

}  // namespace vdit::attn
