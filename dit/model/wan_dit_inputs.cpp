// Input checks shared by the DiT backends (wan_dit_inputs.h).
#include "dit/model/wan_dit_inputs.h"

#include <string>

namespace vdit::model {

Result<Tensor> checked_text_context(const WanDitConfig& config, const Tensor& context) {
  const int64_t Lt = config.text_len, Ct = config.text_dim;
  if (!context.defined() || context.rank() != 2 || context.dim(1) != Ct) {
    return invalid_argument(strfmt("text context must be [Lc, %lld] (Lc tokens of the T5 output), got %s",
                                   (long long)Ct, context.defined() ? shape_str(context.shape()).c_str() : "nothing"));
  }
  const int64_t Lc = context.dim(0);
  if (Lc > Lt) {
    return invalid_argument(strfmt("text context has %lld tokens, more than the model's text_len %lld; trim it",
                                   (long long)Lc, (long long)Lt));
  }
  if (!dtype_is_float(context.dtype())) {
    return invalid_argument(std::string("text context must be a float tensor, got ") + dtype_name(context.dtype()));
  }
  return context.to(DType::f32);  // [Lc, Ct]
}

Status check_dit_forward_inputs(const WanDitConfig& config, const Tensor& x, int64_t timestep) {
  const auto& p = config.patch_size;
  if (!x.defined() || x.rank() != 4 || x.dim(0) != config.in_dim) {
    return invalid_argument(strfmt("latent x must be [%lld, F, H, W], got %s", (long long)config.in_dim,
                                   x.defined() ? shape_str(x.shape()).c_str() : "nothing"));
  }
  if (x.dtype() != DType::f32) {
    return invalid_argument(std::string("latent x must be f32, got ") + dtype_name(x.dtype()));
  }
  for (int a = 0; a < 3; ++a) {
    const int64_t n = x.dim(a + 1);
    if (n <= 0 || n % p[a] != 0) {
      return invalid_argument(
          strfmt("latent x %s: F, H, W must be positive multiples of the patch size (%lld, %lld, %lld)",
                 shape_str(x.shape()).c_str(), (long long)p[0], (long long)p[1], (long long)p[2]));
    }
    if (n / p[a] > kMaxPatchesPerAxis) {
      return invalid_argument(strfmt("latent x %s has %lld patches along axis %d; the RoPE table covers at most %lld",
                                     shape_str(x.shape()).c_str(), (long long)(n / p[a]), a + 1,
                                     (long long)kMaxPatchesPerAxis));
    }
  }
  if (timestep < 0 || timestep > 1000) {
    return invalid_argument(strfmt("timestep %lld is outside [0, 1000]", (long long)timestep));
  }
  return Status::ok();
}

}  // namespace vdit::model
