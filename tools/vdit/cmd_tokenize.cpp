// `vdit tokenize --tokenizer FILE --prompt TEXT`: prints the UMT5 token ids of a prompt exactly as the text
// encoder receives them (Wan's cleaning, pieces, </s>; padding only with --pad), for comparing with HF.
// --pieces also prints each id's piece; --out writes ids [max_length] i32 and mask [max_length] u8 (padded)
// for `vdit forward t5 --inputs`.
#include <cstdio>

#include "dit/text/text_clean.h"
#include "dit/text/tokenizer.h"
#include "io/safetensors_writer.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer, prompt, out;
  int64_t max_length = 512;
  bool no_clean = false, pad = false, pieces = false;
};

int run_tokenize(const TokenizeOptions& o) {
  auto tok = text::Tokenizer::load(o.tokenizer);
  if (!tok) return report_error(tok.status().message());
  text::TokenizerOptions opt;
  opt.max_length = o.max_length;
  opt.clean = !o.no_clean;
  opt.pad = true;
  auto t = tok->encode(o.prompt, opt);
  if (!t) return report_error(t.status().message());
  const size_t shown = o.pad ? t->ids.size() : static_cast<size_t>(t->length);
  for (size_t i = 0; i < shown; ++i) std::printf(i ? " %d" : "%d", t->ids[i]);
  std::printf("\n");
  if (o.pieces) {
    for (size_t i = 0; i < static_cast<size_t>(t->length); ++i) {
      std::printf("%6d  %s\n", t->ids[i], tok->piece(t->ids[i]).c_str());
    }
  }
  if (!o.out.empty()) {
    const int64_t n = static_cast<int64_t>(t->ids.size());
    auto ids = Tensor::create(DType::i32, {n});
    auto mask = Tensor::create(DType::u8, {n});
    if (!ids || !mask) return report_error("out of memory");
    std::copy(t->ids.begin(), t->ids.end(), ids->data<int32_t>());
    std::copy(t->mask.begin(), t->mask.end(), mask->data<uint8_t>());
    auto cleaned = opt.clean ? text::clean_prompt(o.prompt) : Result<std::string>(o.prompt);
    Status st = save_safetensors(o.out, {{"ids", *ids}, {"mask", *mask}},
                                 {{"tokenizer", tok->path()}, {"prompt", cleaned ? *cleaned : o.prompt}});
    if (!st.is_ok()) return report_error(st.message());
  }
  return 0;
}

std::function<int()> setup_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  app.add_option("--tokenizer", o->tokenizer,
                 "sentencepiece model (google/umt5-xxl/spiece.model) or a folder holding it")
      ->required();
  app.add_option("--prompt", o->prompt, "prompt text (UTF-8)")->required();
  app.add_option("--max-length", o->max_length, "tokens including </s> (default 512, as Wan)");
  app.add_flag("--no-clean", o->no_clean, "skip Wan's cleaning (HTML unescape twice, whitespace collapse)");
  app.add_flag("--pad", o->pad, "print the padded ids (max-length of them)");
  app.add_flag("--pieces", o->pieces, "also print one line per token: id and piece");
  app.add_option("--out", o->out, "also write ids [max-length] i32 and mask u8 to this safetensors file");
  return [o] { return run_tokenize(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("tokenize", "Print the UMT5 token ids of a prompt", 35, setup_tokenize);

}  // namespace vdit::cli
