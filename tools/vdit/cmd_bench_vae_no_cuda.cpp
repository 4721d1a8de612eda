// `vdit bench vae` in builds without CUDA: the command exists (so --help lists it) and says what is missing.
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

std::function<int()> setup_bench_vae(CLI::App& app) {
  app.allow_extras();
  return [] {
    return report_error("bench vae times the CUDA VAE decoder, but this build has no CUDA backend; rebuild with "
                        "-DVDIT_CUDA=ON where nvcc (and cuDNN) is installed");
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench vae", "Time the CUDA Wan VAE streaming decode at full size (needs CUDA)", 62,
                      setup_bench_vae);

}  // namespace vdit::cli
