// `vdit bench step` in builds without CUDA: the command exists (so --help lists it) and says what is missing.
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

std::function<int()> setup_bench_step(CLI::App& app) {
  app.allow_extras();
  return [] {
    return report_error("bench step times the DiT forward on the GPU, but this build has no CUDA backend; rebuild "
                        "with -DVDIT_CUDA=ON where nvcc is installed");
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench step", "Time the Wan2.1 DiT forward on the GPU at full or tiny size (needs CUDA)", 61,
                      setup_bench_step);

}  // namespace vdit::cli
