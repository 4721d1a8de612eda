// Settings defaults (model metadata, then Wan2.1) and the up-front range checks.
#include "dit/pipeline/generation_settings.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "schedulers/scheduler.h"

namespace vdit::pipeline {

// Copied byte for byte from W wan/configs/shared_config.py (full-width commas).
const char* const kWanNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

namespace {

Status parse_int(std::optional<int>* out, const std::string& text, const char* key, const std::string& source) {
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < -1000000 || v > 1000000) {
    return format_error(
        strfmt("%s: metadata key \"%s\" = \"%s\" is not an integer", source.c_str(), key, text.c_str()));
  }
  *out = static_cast<int>(v);
  return Status::ok();
}

Status parse_double(std::optional<double>* out, const std::string& text, const char* key, const std::string& source) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v)) {
    return format_error(strfmt("%s: metadata key \"%s\" = \"%s\" is not a number", source.c_str(), key, text.c_str()));
  }
  *out = v;
  return Status::ok();
}

template <class T>
T pick(const std::optional<T>& request, const std::optional<T>& model, T fallback) {
  return request ? *request : model ? *model : fallback;
}

// The shortest of %.15g / %.17g that reads back to the same double ("5", "0.1", not "0.10000000000000001").
std::string number(double v) {
  std::string s = strfmt("%.15g", v);
  return std::strtod(s.c_str(), nullptr) == v ? s : strfmt("%.17g", v);
}

}  // namespace

Result<ModelDefaults> model_defaults_from_metadata(const std::map<std::string, std::string>& metadata,
                                                   const std::string& source) {
  ModelDefaults d;
  d.source = source;
  SettingsRequest& v = d.values;
  auto get = [&](const char* key) -> const std::string* {
    auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
  };
  if (auto* s = get("frames")) VDIT_TRY(parse_int(&v.frames, *s, "frames", source));
  if (auto* s = get("height")) VDIT_TRY(parse_int(&v.height, *s, "height", source));
  if (auto* s = get("width")) VDIT_TRY(parse_int(&v.width, *s, "width", source));
  if (auto* s = get("steps")) VDIT_TRY(parse_int(&v.steps, *s, "steps", source));
  if (auto* s = get("guidance")) VDIT_TRY(parse_double(&v.guidance, *s, "guidance", source));
  if (auto* s = get("shift")) VDIT_TRY(parse_double(&v.shift, *s, "shift", source));
  if (auto* s = get("fps")) VDIT_TRY(parse_double(&v.fps, *s, "fps", source));
  if (auto* s = get("sampler")) v.sampler = *s;
  if (auto* s = get("negative_prompt")) v.negative_prompt = *s;
  return d;
}

GenerationSettings resolve_settings(const SettingsRequest& request, const ModelDefaults& model) {
  const SettingsRequest& m = model.values;
  GenerationSettings s;
  s.negative_prompt = pick<std::string>(request.negative_prompt, m.negative_prompt, kWanNegativePrompt);
  s.frames = pick(request.frames, m.frames, 81);
  s.height = pick(request.height, m.height, 480);
  s.width = pick(request.width, m.width, 832);
  s.steps = pick(request.steps, m.steps, 50);
  s.guidance = pick(request.guidance, m.guidance, 5.0);
  s.shift = pick(request.shift, m.shift, 5.0);
  s.sampler = pick<std::string>(request.sampler, m.sampler, "unipc");
  s.fps = pick(request.fps, m.fps, 16.0);
  return s;
}

Status validate_settings(const GenerationSettings& s) {
  if (s.frames < 1 || (s.frames - 1) % 4 != 0) {
    int below = s.frames < 1 ? 1 : s.frames - (s.frames - 1) % 4;
    return invalid_argument(
        strfmt("frames %d is not of the form 4k+1 (the VAE makes 1 + 4 frames per latent frame); "
               "use %d or %d, or 1 for a single image",
               s.frames, below, below + 4));
  }
  for (auto [name, v] : {std::pair{"height", s.height}, std::pair{"width", s.width}}) {
    if (v <= 0 || v % 16 != 0) {
      int down = v < 16 ? 16 : v - v % 16;
      return invalid_argument(
          strfmt("%s %d is not a positive multiple of 16 (VAE 8x times the DiT's 2x2 patches); "
                 "use %d or %d",
                 name, v, down, down + 16));
    }
  }
  if (s.steps < 1 || s.steps > 1000) return invalid_argument(strfmt("steps %d is outside 1..1000", s.steps));
  if (!std::isfinite(s.guidance) || s.guidance < 0) {
    return invalid_argument(
        strfmt("guidance %g must be finite and >= 0 (1 = no classifier-free guidance)", s.guidance));
  }
  if (!std::isfinite(s.shift) || s.shift <= 0)
    return invalid_argument(strfmt("shift %g must be finite and > 0", s.shift));
  if (!std::isfinite(s.fps) || s.fps <= 0 || s.fps > 1000)
    return invalid_argument(strfmt("fps %g is outside (0, 1000]", s.fps));
  std::string known;
  for (const auto& name : scheduler_names()) {
    if (name == s.sampler) return Status::ok();
    known += (known.empty() ? "" : ", ") + name;
  }
  return invalid_argument("unknown sampler \"" + s.sampler + "\"; known: " + known);
}

std::map<std::string, std::string> settings_metadata(const GenerationSettings& s) {
  return {
      {"negative_prompt", s.negative_prompt},
      {"frames", std::to_string(s.frames)},
      {"height", std::to_string(s.height)},
      {"width", std::to_string(s.width)},
      {"steps", std::to_string(s.steps)},
      {"guidance", number(s.guidance)},
      {"shift", number(s.shift)},
      {"sampler", s.sampler},
      {"fps", number(s.fps)},
  };
}

}  // namespace vdit::pipeline
