// `vdit bench t5` in builds without CUDA: the command exists (so --help lists it) and says what is missing.
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

std::function<int()> setup_bench_t5(CLI::App& app) {
  app.allow_extras();
  return [] {
    return report_error("bench t5 times the UMT5-XXL text encoder on the GPU, but this build has no CUDA backend; "
                        "rebuild with -DVDIT_CUDA=ON where nvcc is installed");
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench t5", "Time the UMT5-XXL text encoder on the GPU at full size (needs CUDA)", 62,
                      setup_bench_t5);

}  // namespace vdit::cli
