// The settings of one text-to-video generation, how unset values get their defaults (the model's DiT
// metadata first, then the official Wan2.1 defaults), and the checks that run before any heavy work.
// Nothing here loads weights; reading a DiT's metadata opens only its header.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "dit/core/status.h"

namespace vdit::pipeline {

// The official Wan2.1 negative prompt (W shared_config.py `sample_neg_prompt`, wan.md §5).
extern const char* const kWanNegativePrompt;

// What the caller asked for; an empty optional means "use the default".
struct SettingsRequest {
  std::optional<std::string> negative_prompt;
  std::optional<int> frames, height, width, steps;
  std::optional<double> guidance, shift, fps;
  std::optional<std::string> sampler;
};

// Defaults a model carries in its DiT metadata (keys: height, width, frames, steps, shift, guidance,
// sampler, fps, negative_prompt); each is empty when the key is absent.
struct ModelDefaults {
  SettingsRequest values;
  std::string source;  // the file they were read from, for messages
};

// Parses the metadata keys above; a key with a value that does not parse is a format_error naming the
// key and `source`. Other keys are ignored.
Result<ModelDefaults> model_defaults_from_metadata(const std::map<std::string, std::string>& metadata,
                                                   const std::string& source);

// Every value concrete.
struct GenerationSettings {
  std::string negative_prompt;
  int frames = 81;   // 4k+1; 1 = a single image
  int height = 480;  // multiple of 16
  int width = 832;   // multiple of 16
  int steps = 50;
  double guidance = 5.0;  // 1 = no classifier-free guidance (single pass, no negative prompt)
  double shift = 5.0;
  std::string sampler = "unipc";
  double fps = 16.0;

  int latent_frames() const { return (frames - 1) / 4 + 1; }  // F' (VAE: 4x in time, frame 0 alone)
  int latent_height() const { return height / 8; }            // H'
  int latent_width() const { return width / 8; }              // W'
};

// request, else model default, else the Wan defaults (832x480, 81 frames, 50 steps, shift 5,
// guidance 5, unipc, 16 fps, the official negative prompt).
GenerationSettings resolve_settings(const SettingsRequest& request, const ModelDefaults& model);

// Range checks with messages that name the value and the rule: frames 4k+1, sizes positive multiples
// of 16, steps 1..1000, guidance finite and >= 0, shift > 0, a known sampler, fps in (0, 1000].
Status validate_settings(const GenerationSettings& settings);

// The settings as strings, for output metadata (saved latents) and logs.
std::map<std::string, std::string> settings_metadata(const GenerationSettings& settings);

}  // namespace vdit::pipeline
