// The UMT5 prompt tokenizer as Wan calls it (W wan/modules/tokenizers.py with clean='whitespace'; HF T5
// tokenizer with padding='max_length', max_length=512, truncation=True, add_special_tokens=True):
// clean_prompt, sentencepiece pieces, truncate to max_length-1 pieces, append </s>, pad to max_length.
// Special ids (pad, </s>, unk) come from the model file, not from constants. HF's handling of special-token
// text inside the prompt ("</s>", "<extra_id_0>" written literally) is not reproduced: they are plain text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dit/core/status.h"

namespace vdit::text {

class SentencePieceModel;

struct TokenizerOptions {
  int64_t max_length = 512;  // Wan's text_len; </s> included
  bool clean = true;         // apply clean_prompt (Wan's cleaning) first
  bool pad = true;           // pad ids/mask to max_length (else they end after </s>)
};

struct TokenizedPrompt {
  std::vector<int32_t> ids;   // [max_length] (or [length] without padding): pieces, </s>, pad...
  std::vector<uint8_t> mask;  // same size: 1 for pieces and </s>, 0 for padding
  int64_t length = 0;         // number of ones in mask (the official seq_len, </s> included)
  int64_t piece_count = 0;    // pieces before truncation (without </s>)
  bool truncated = false;     // piece_count > max_length - 1 (a warning is logged)
};

class Tokenizer {
 public:
  // `path`: a sentencepiece model file, or a folder holding one as spiece.model or tokenizer.model,
  // directly or under google/umt5-xxl/ (the Wan checkpoint folder) or tokenizer/ (a diffusers folder).
  static Result<Tokenizer> load(const std::string& path);

  // Cleans (optional), encodes, truncates with a logged warning, appends </s> and pads. Thread-safe.
  Result<TokenizedPrompt> encode(std::string_view text, const TokenizerOptions& options = {}) const;
  // Raw sentencepiece ids of `text`: no cleaning, no </s>, no truncation.
  Result<std::vector<int32_t>> encode_pieces(std::string_view text) const;

  int32_t pad_id() const { return pad_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t unk_id() const { return unk_id_; }
  int64_t vocab_size() const;
  std::string piece(int32_t id) const;
  const std::string& path() const { return path_; }

 private:
  std::shared_ptr<const SentencePieceModel> model_;
  std::string path_;
  int32_t pad_id_ = 0;
  int32_t eos_id_ = 1;
  int32_t unk_id_ = 2;
};

}  // namespace vdit::text
