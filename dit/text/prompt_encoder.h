// Prompt -> text context for the DiT, as Wan does it (W t5.py T5EncoderModel.__call__): tokenize to 512 with
// </s> and padding, encode, keep the first mask.sum() rows. The DiT zero-pads the context back to 512 itself.
#pragma once

#include <string_view>

#include "dit/core/tensor.h"
#include "dit/text/t5_encoder.h"
#include "dit/text/tokenizer.h"

namespace vdit::text {

// The trimmed context of `text`: [Lc, D] f32, Lc = prompt tokens + 1 (</s>), at most options.max_length.
Result<Tensor> encode_prompt(const Tokenizer& tokenizer, const T5Encoder& encoder, std::string_view text,
                             const TokenizerOptions& options = {});

}  // namespace vdit::text
