// ConvEngine in builds without cuDNN: create() explains what is missing; nothing else can be reached.
#include "dit/vae/vae_conv_cuda.h"

namespace vdit::vae::cuda {

struct ConvEngine::Plan {};

Result<std::unique_ptr<ConvEngine>> ConvEngine::create(ConvPrecision, void*, bool) {
  return unsupported("the CUDA VAE decoder runs its convolutions through cuDNN, which this build lacks; install cuDNN "
                     "9 and rebuild with -DVDIT_CUDNN=ON, or decode on the CPU");
}

ConvEngine::~ConvEngine() = default;

Result<ConvEngine::Plan*> ConvEngine::plan_for(const ConvShape&, void*, const void*, const void*) {
  return unsupported("no cuDNN in this build");
}
Status ConvEngine::describe_plan(Plan*) const { return unsupported("no cuDNN in this build"); }
Status ConvEngine::choose_algorithm(Plan*, void*, const void*, const void*) { return unsupported("no cuDNN"); }
Status ConvEngine::ensure_workspace(size_t) { return unsupported("no cuDNN in this build"); }

Status ConvEngine::run(void*, const void*, const void*, const ConvShape&) {
  return unsupported("no cuDNN in this build");
}

std::string ConvEngine::describe() const { return {}; }
size_t ConvEngine::workspace_bytes() const { return 0; }
Result<const void*> ConvEngine::tap_filters(const void*, const ConvShape&) { return unsupported("no cuDNN"); }
Status ConvEngine::run_per_tap(void*, const void*, const void*, const ConvShape&) { return unsupported("no cuDNN"); }

}  // namespace vdit::vae::cuda
