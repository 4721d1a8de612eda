// VaeDecoderCuda in builds without CUDA: create()/load() say what is missing; no instance can exist, so the
// remaining members are never reached.
#include "dit/vae/vae_decoder_cuda.h"

namespace vdit::vae {

struct VaeDecoderCuda::Impl {
  VaeConfig config;
};

namespace {
Status no_cuda() {
  return unsupported("this build has no CUDA backend, so the VAE cannot decode on the GPU; rebuild with -DVDIT_CUDA=ON "
                     "where nvcc is installed, or decode on the CPU");
}
}  // namespace

VaeDecoderCuda::VaeDecoderCuda(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VaeDecoderCuda::~VaeDecoderCuda() = default;

Result<std::unique_ptr<VaeDecoderCuda>> VaeDecoderCuda::create(const VaeDecoder&, const VaeCudaOptions&) {
  return no_cuda();
}

Result<std::unique_ptr<VaeDecoderCuda>> VaeDecoderCuda::load(const std::string&, const VaeLoadOptions&,
                                                             const VaeCudaOptions&) {
  return no_cuda();
}

const VaeConfig& VaeDecoderCuda::config() const { return impl_->config; }
int64_t VaeDecoderCuda::spatial_factor() const { return 8; }
int64_t VaeDecoderCuda::output_frames(int64_t f) const { return f <= 0 ? 0 : 1 + 4 * (f - 1); }
VaeCudaPrecision VaeDecoderCuda::precision() const { return VaeCudaPrecision::fp32; }
Status VaeDecoderCuda::decode(const Tensor&, const FrameCallback&, const VaeDecodeOptions&) { return no_cuda(); }
VaeCudaMemory VaeDecoderCuda::memory() const { return {}; }
std::string VaeDecoderCuda::describe_plans() const { return {}; }

}  // namespace vdit::vae
