// The sentencepiece model behind the tokenizer, as an interface so that only sentencepiece_model_spm.cpp
// includes the library; sentencepiece_model_no_spm.cpp stands in when the build has no sentencepiece.
// It encodes text to piece ids and reports the special ids the model defines; it adds no special tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dit/core/status.h"

namespace vdit::text {

class SentencePieceModel {
 public:
  virtual ~SentencePieceModel() = default;
  // Piece ids of `text` after the model's own normalizer (e.g. nmt_nfkc); no </s>, no truncation.
  virtual Result<std::vector<int32_t>> encode(std::string_view text) const = 0;
  virtual int64_t vocab_size() const = 0;
  // Id of the piece spelled `piece`, or -1 when the model has no such piece.
  virtual int32_t piece_id(std::string_view piece) const = 0;
  // Spelling of piece `id` ("" when out of range).
  virtual std::string piece(int32_t id) const = 0;
  // Special ids from the model's trainer spec; -1 where the model defines none.
  virtual int32_t pad_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t unk_id() const = 0;
  virtual int32_t bos_id() const = 0;
};

// Loads a sentencepiece model file (e.g. google/umt5-xxl/spiece.model). Thread-safe to use once loaded.
Result<std::unique_ptr<SentencePieceModel>> open_sentencepiece_model(const std::string& path);

}  // namespace vdit::text
