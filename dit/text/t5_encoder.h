// The UMT5 text encoder forward pass on the CPU in f32 (W wan/modules/t5.py T5Encoder; HF UMT5EncoderModel):
// token embedding (unscaled) -> N x [RMS pre-norm, self-attention with the layer's relative bias and the key
// mask, no score scaling; RMS pre-norm, gated GELU-tanh FFN] -> final RMS norm. No biases anywhere.
// Linears go to BLAS (dit/ops); attention is t5_attention.h. The official model runs in bf16; this runs f32
// (closer to the f32 goldens; bf16 vs f32 differ by about 3e-2 relative on the tiny model).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dit/core/tensor.h"
#include "dit/text/t5_weights.h"

namespace vdit::text {

class T5Encoder {
 public:
  // See load_t5_weights for the accepted files and folders.
  static Result<T5Encoder> load(const std::string& path, const T5LoadOptions& options = {});
  static T5Encoder from_weights(T5Weights weights);

  bool loaded() const { return weights_ != nullptr; }
  // An empty config / weights (all sizes 0) when not loaded.
  const T5Config& config() const { return weights().config; }
  const T5Weights& weights() const;

  // Encodes every position of `ids` (pad rows included, as the official full output); keys whose mask is 0
  // are ignored by attention. `mask` empty means all ones; otherwise one entry per id, at least one nonzero.
  // Ids must lie in [0, vocab). Thread-safe (concurrent calls share only read-only weights).  // [L, D] f32
  Result<Tensor> encode(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask = {}) const;

  // The official trimmed context out[:mask.sum()] (what the DiT receives before it zero-pads to 512). The
  // mask must be ones then zeros; only the unmasked prefix is run, which gives the same rows as encode
  // (masked keys carry exactly zero weight) at a fraction of the cost.  // [Lc, D] f32
  Result<Tensor> encode_trimmed(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask) const;

 private:
  std::shared_ptr<const T5Weights> weights_;
};

}  // namespace vdit::text
