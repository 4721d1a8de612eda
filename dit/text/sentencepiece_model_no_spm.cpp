// Stand-in for builds without sentencepiece: loading a tokenizer model fails with an install hint.
#include "dit/text/sentencepiece_model.h"

namespace vdit::text {

Result<std::unique_ptr<SentencePieceModel>> open_sentencepiece_model(const std::string& path) {
  return unsupported(path +
                     ": this vdit was built without sentencepiece, so prompts cannot be tokenized; install "
                     "it (apt-get install libsentencepiece-dev) and reconfigure with -DVDIT_SENTENCEPIECE=ON, or pass "
                     "token ids directly (vdit forward t5 --inputs)");
}

}  // namespace vdit::text
