// Tokenizer: model-file lookup, special ids read from the model, and the official truncate/</s>/pad rule.
// The sentencepiece calls themselves are behind SentencePieceModel (sentencepiece_model_spm.cpp).
#include "dit/text/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "dit/core/log.h"
#include "dit/text/sentencepiece_model.h"
#include "dit/text/text_clean.h"

namespace vdit::text {
namespace {

namespace fs = std::filesystem;

Result<std::string> find_model_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found(path + ": no such tokenizer file or folder");
  if (!fs::is_directory(path, ec)) return path;
  for (const char* rel : {"spiece.model", "tokenizer.model", "google/umt5-xxl/spiece.model", "tokenizer/spiece.model",
                          "tokenizer/tokenizer.model"}) {
    fs::path p = fs::path(path) / rel;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return not_found(path +
                   ": folder has no spiece.model (also looked in google/umt5-xxl/ and tokenizer/); pass the "
                   "sentencepiece model file itself");
}

// The id of a special piece: the model's own setting, else the piece spelled `spelling`.
Result<int32_t> special_id(const SentencePieceModel& m, int32_t from_spec, const char* spelling,
                           const std::string& path) {
  if (from_spec >= 0 && from_spec < m.vocab_size()) return from_spec;
  int32_t id = m.piece_id(spelling);
  if (id >= 0) return id;
  return format_error(
      strfmt("%s: the sentencepiece model defines no %s piece, which T5 needs; train it with "
             "--pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 as UMT5's is",
             path.c_str(), spelling));
}

}  // namespace

Result<Tokenizer> Tokenizer::load(const std::string& path) {
  VDIT_ASSIGN(std::string file, find_model_file(path));
  VDIT_ASSIGN(std::unique_ptr<SentencePieceModel> model, open_sentencepiece_model(file));
  Tokenizer t;
  VDIT_ASSIGN(t.pad_id_, special_id(*model, model->pad_id(), "<pad>", file));
  VDIT_ASSIGN(t.eos_id_, special_id(*model, model->eos_id(), "</s>", file));
  VDIT_ASSIGN(t.unk_id_, special_id(*model, model->unk_id(), "<unk>", file));
  t.model_ = std::move(model);
  t.path_ = file;
  return t;
}

int64_t Tokenizer::vocab_size() const { return model_ ? model_->vocab_size() : 0; }

std::string Tokenizer::piece(int32_t id) const { return model_ ? model_->piece(id) : std::string(); }

Result<std::vector<int32_t>> Tokenizer::encode_pieces(std::string_view text) const {
  if (!model_) return invalid_argument("tokenizer is not loaded; call Tokenizer::load first");
  return model_->encode(text);
}

Result<TokenizedPrompt> Tokenizer::encode(std::string_view text, const TokenizerOptions& options) const {
  if (options.max_length < 1) {
    return invalid_argument(strfmt("tokenizer max_length is %lld; it must be at least 1 (room for </s>); Wan uses 512",
                                   static_cast<long long>(options.max_length)));
  }
  std::string cleaned;
  if (options.clean) {
    VDIT_ASSIGN(cleaned, clean_prompt(text));
  } else {
    cleaned = std::string(text);
  }
  VDIT_ASSIGN(std::vector<int32_t> pieces, encode_pieces(cleaned));
  TokenizedPrompt out;
  out.piece_count = static_cast<int64_t>(pieces.size());
  const int64_t keep = std::min<int64_t>(out.piece_count, options.max_length - 1);
  out.truncated = keep < out.piece_count;
  if (out.truncated) {
    VDIT_LOG_WARN(
        "prompt is %lld tokens long; truncated to %lld (%lld pieces + </s>) as the official tokenizer "
        "does, so the end of the prompt is ignored",
        static_cast<long long>(out.piece_count + 1), static_cast<long long>(options.max_length),
        static_cast<long long>(keep));
  }
  out.length = keep + 1;
  const int64_t total = options.pad ? options.max_length : out.length;
  out.ids.assign(static_cast<size_t>(total), pad_id_);
  out.mask.assign(static_cast<size_t>(total), 0);
  for (int64_t i = 0; i < keep; ++i) out.ids[static_cast<size_t>(i)] = pieces[static_cast<size_t>(i)];
  out.ids[static_cast<size_t>(keep)] = eos_id_;
  for (int64_t i = 0; i < out.length; ++i) out.mask[static_cast<size_t>(i)] = 1;
  return out;
}

}  // namespace vdit::text
