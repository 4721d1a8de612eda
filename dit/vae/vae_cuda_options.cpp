// Names of the CUDA VAE decoder's precisions (built with and without CUDA, so the CLI can parse them anywhere).
#include "dit/vae/vae_decoder_cuda.h"

namespace vdit::vae {

const char* vae_cuda_precision_name(VaeCudaPrecision p) {
  switch (p) {
    case VaeCudaPrecision::fp32: return "fp32";
    case VaeCudaPrecision::tf32: return "tf32";
    case VaeCudaPrecision::bf16: return "bf16";
  }
  return "?";
}

Result<VaeCudaPrecision> parse_vae_cuda_precision(const std::string& name) {
  if (name == "fp32") return VaeCudaPrecision::fp32;
  if (name == "tf32") return VaeCudaPrecision::tf32;
  if (name == "bf16") return VaeCudaPrecision::bf16;
  return invalid_argument("VAE precision \"" + name +
                          "\": use fp32 (exact), tf32 (TF32 tensor-core convolutions) or bf16 (bf16 activations)");
}

}  // namespace vdit::vae
