// Stage names for progress displays and logs.
#include "dit/pipeline/progress.h"

namespace vdit::pipeline {

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::loading:
      return "loading";
    case Stage::text_encoder:
      return "text encoder";
    case Stage::denoising:
      return "denoising";
    case Stage::vae_decode:
      return "VAE decode";
    case Stage::finishing:
      return "finishing";
  }
  return "?";
}

}  // namespace vdit::pipeline
