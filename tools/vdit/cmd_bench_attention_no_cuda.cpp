// `vdit bench attention` in builds without CUDA: the command exists (so --help lists it) and says what it
// needs. The CPU kernel has its own benchmark, `vdit bench attention-cpu`.
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

std::function<int()> setup(CLI::App& app) {
  app.allow_extras();
  return [] {
    return report_error("vdit bench attention needs a CUDA build and a GPU (this vdit was built without CUDA); "
                        "for the CPU kernel use `vdit bench attention-cpu`");
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench attention",
                      "Time the block-sparse CUDA attention kernel (validated first) against cuDNN dense SDPA", 62,
                      setup);

}  // namespace vdit::cli
