// encode_prompt: tokenizer + encoder, running the encoder on the valid tokens only (same rows as the
// official full-length run, see T5Encoder::encode_trimmed).
#include "dit/text/prompt_encoder.h"

namespace vdit::text {

Result<Tensor> encode_prompt(const Tokenizer& tokenizer, const T5Encoder& encoder, std::string_view text,
                             const TokenizerOptions& options) {
  VDIT_ASSIGN(TokenizedPrompt tokens, tokenizer.encode(text, options));
  auto out = encoder.encode_trimmed(tokens.ids, tokens.mask);
  if (!out) {
    return out.status().with_context("encoding the prompt with the tokenizer " + tokenizer.path() + " (vocab " +
                                     std::to_string(tokenizer.vocab_size()) + ")");
  }
  return out;
}

}  // namespace vdit::text
