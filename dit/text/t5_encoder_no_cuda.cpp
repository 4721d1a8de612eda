// T5EncoderCuda in builds without CUDA: the factories say what is missing; no encoder object can exist, so
// the other members are never reached.
#include "dit/text/t5_encoder_cuda.h"

namespace vdit::text {

struct T5EncoderCuda::Impl {
  T5Config config;
};

namespace {

Status no_cuda() {
  return unsupported("the GPU text encoder needs the CUDA backend, which this build lacks (rebuild with "
                     "-DVDIT_CUDA=ON where nvcc is installed); use --text-encoder-device cpu");
}

}  // namespace

T5EncoderCuda::T5EncoderCuda(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
T5EncoderCuda::~T5EncoderCuda() = default;

Result<std::unique_ptr<T5EncoderCuda>> T5EncoderCuda::create(const T5Weights&, const T5CudaOptions&) {
  return no_cuda();
}
Result<std::unique_ptr<T5EncoderCuda>> T5EncoderCuda::load(const std::string&, const T5CudaOptions&) {
  return no_cuda();
}
Result<std::unique_ptr<T5EncoderCuda>> T5EncoderCuda::random(const T5Config&, uint64_t, const T5CudaOptions&) {
  return no_cuda();
}

const T5Config& T5EncoderCuda::config() const { return impl_->config; }
T5Precision T5EncoderCuda::precision() const { return T5Precision::bf16; }
T5CudaMemory T5EncoderCuda::memory() const { return {}; }
Result<Tensor> T5EncoderCuda::encode(const std::vector<int32_t>&, const std::vector<uint8_t>&) const {
  return no_cuda();
}
Result<Tensor> T5EncoderCuda::encode_trimmed(const std::vector<int32_t>&, const std::vector<uint8_t>&) const {
  return no_cuda();
}
Result<T5Weights> T5EncoderCuda::download_weights() const { return no_cuda(); }

}  // namespace vdit::text
