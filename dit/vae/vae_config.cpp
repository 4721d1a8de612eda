// Wan VAE config resolution: JSON/metadata parsing (Python-literal strings such as "[False, True]" as
// the official code stringifies them), precedence, validation, and the Wan2.1 latent constants.
#include "dit/vae/vae_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace vdit::vae {
namespace {

using json = nlohmann::json;

// "[False, True, None, 'a']" -> "[false, true, null, \"a\"]" so nlohmann can read metadata values
// written with Python's str(). Quotes inside strings are not expected in these keys.
std::string python_literal_to_json(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto starts = [&](const char* w) { return s.compare(i, std::char_traits<char>::length(w), w) == 0; };
    if (starts("True")) { out += "true"; i += 4; continue; }
    if (starts("False")) { out += "false"; i += 5; continue; }
    if (starts("None")) { out += "null"; i += 4; continue; }
    out += s[i] == '\'' ? '"' : s[i];
    ++i;
  }
  return out;
}

Result<json> parse_value(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) j = json::parse(python_literal_to_json(text), nullptr, false);
  if (j.is_discarded()) return format_error(what + ": cannot parse \"" + text + "\" as a JSON or Python value");
  return j;
}

Result<int64_t> as_int(const json& j, const std::string& what) {
  if (j.is_number_integer()) return j.get<int64_t>();
  if (j.is_number_float() && std::floor(j.get<double>()) == j.get<double>()) {
    return static_cast<int64_t>(j.get<double>());
  }
  return format_error(what + " must be an integer, got " + j.dump());
}

Result<std::vector<int64_t>> as_int_list(const json& j, const std::string& what) {
  if (!j.is_array()) return format_error(what + " must be a list of integers, got " + j.dump());
  std::vector<int64_t> v;
  for (size_t i = 0; i < j.size(); ++i) {
    VDIT_ASSIGN(int64_t x, as_int(j[i], what + "[" + std::to_string(i) + "]"));
    v.push_back(x);
  }
  return v;
}

Result<std::vector<bool>> as_bool_list(const json& j, const std::string& what) {
  if (!j.is_array()) return format_error(what + " must be a list of booleans, got " + j.dump());
  std::vector<bool> v;
  for (const auto& x : j) {
    if (!x.is_boolean()) return format_error(what + " must be a list of booleans, got " + j.dump());
    v.push_back(x.get<bool>());
  }
  return v;
}

Result<std::vector<float>> as_float_list(const json& j, const std::string& what) {
  if (!j.is_array()) return format_error(what + " must be a list of numbers, got " + j.dump());
  std::vector<float> v;
  for (const auto& x : j) {
    if (!x.is_number()) return format_error(what + " must be a list of numbers, got " + j.dump());
    v.push_back(x.get<float>());
  }
  return v;
}

// Applies the keys of one source (an object of parsed values) to `c`. `source` names it in messages.
Status apply_keys(VaeConfig* c, const json& o, const std::string& source) {
  auto has = [&](const char* k) { return o.contains(k) && !o[k].is_null(); };
  if (has("is_residual") && o["is_residual"].is_boolean() && o["is_residual"].get<bool>()) {
    return unsupported(source + ": is_residual=true is the Wan2.2 VAE; only the Wan2.1 decoder is implemented");
  }
  if (has("patch_size")) {
    return unsupported(source + ": patch_size is set (Wan2.2 patched VAE); only the Wan2.1 decoder is implemented");
  }
  if (has("attn_scales")) {
    if (!o["attn_scales"].is_array()) return format_error(source + ": attn_scales must be a list");
    if (!o["attn_scales"].empty()) {
      return unsupported(source + ": attn_scales=" + o["attn_scales"].dump() +
                         " asks for attention inside the upsampling stages, which Wan2.1 never uses and this "
                         "decoder does not build");
    }
  }
  if (has("dim")) { VDIT_ASSIGN(c->dim, as_int(o["dim"], source + " dim")); }
  if (has("base_dim")) { VDIT_ASSIGN(c->dim, as_int(o["base_dim"], source + " base_dim")); }
  if (has("decoder_base_dim")) {
    VDIT_ASSIGN(int64_t d, as_int(o["decoder_base_dim"], source + " decoder_base_dim"));
    if (d != c->dim) {
      return unsupported(source + ": decoder_base_dim differs from base_dim (Wan2.2 VAE); not implemented");
    }
  }
  if (has("z_dim")) { VDIT_ASSIGN(c->z_dim, as_int(o["z_dim"], source + " z_dim")); }
  if (has("dim_mult")) { VDIT_ASSIGN(c->dim_mult, as_int_list(o["dim_mult"], source + " dim_mult")); }
  if (has("num_res_blocks")) { VDIT_ASSIGN(c->num_res_blocks, as_int(o["num_res_blocks"], source + " num_res_blocks")); }
  if (has("temperal_downsample")) {
    VDIT_ASSIGN(c->temperal_downsample, as_bool_list(o["temperal_downsample"], source + " temperal_downsample"));
  }
  return Status::ok();
}

Status apply_latents(VaeConfig* c, const json& o, const std::string& source, bool* found) {
  bool has_mean = o.contains("latents_mean") && !o["latents_mean"].is_null();
  bool has_std = o.contains("latents_std") && !o["latents_std"].is_null();
  if (has_mean != has_std) {
    return format_error(source + ": has " + (has_mean ? "latents_mean" : "latents_std") + " but not " +
                        (has_mean ? "latents_std" : "latents_mean") + "; store both or neither");
  }
  if (!has_mean) return Status::ok();
  VDIT_ASSIGN(c->latents_mean, as_float_list(o["latents_mean"], source + " latents_mean"));
  VDIT_ASSIGN(c->latents_std, as_float_list(o["latents_std"], source + " latents_std"));
  *found = true;
  return Status::ok();
}

std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

const std::vector<float>& wan21_latents_mean() {
  static const std::vector<float> v = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                       -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                       -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
  return v;
}

const std::vector<float>& wan21_latents_std() {
  static const std::vector<float> v = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                       3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};
  return v;
}

std::string VaeConfig::to_string() const {
  std::string t = "[";
  for (size_t i = 0; i < temperal_downsample.size(); ++i) {
    t += std::string(i ? ", " : "") + (temperal_downsample[i] ? "true" : "false");
  }
  t += "]";
  return strfmt("dim=%lld z_dim=%lld dim_mult=%s num_res_blocks=%lld temperal_downsample=%s latents=%s",
                static_cast<long long>(dim), static_cast<long long>(z_dim), list_str(dim_mult).c_str(),
                static_cast<long long>(num_res_blocks), t.c_str(), normalization_source.c_str());
}

Status validate_vae_config(const VaeConfig& c) {
  const std::string what = "VAE config (" + c.to_string() + ")";
  if (c.dim <= 0 || c.z_dim <= 0) return invalid_argument(what + ": dim and z_dim must be positive");
  if (c.num_res_blocks < 0) return invalid_argument(what + ": num_res_blocks must be >= 0");
  if (c.dim_mult.size() < 2) return invalid_argument(what + ": dim_mult needs at least 2 stages");
  for (int64_t m : c.dim_mult) {
    if (m <= 0) return invalid_argument(what + ": dim_mult entries must be positive");
  }
  if (c.temperal_downsample.size() != c.dim_mult.size() - 1) {
    return invalid_argument(strfmt("%s: temperal_downsample has %zu flags but dim_mult has %zu stages (needs %zu)",
                                   what.c_str(), c.temperal_downsample.size(), c.dim_mult.size(),
                                   c.dim_mult.size() - 1));
  }
  // Every upsampling stage halves its channels with the resample conv, and the next stage reads half of
  // the previous width: both must be even.
  for (int64_t m : c.dim_mult) {
    if ((c.dim * m) % 2 != 0) return invalid_argument(what + ": dim·dim_mult[i] must be even for the resample convs");
  }
  if (static_cast<int64_t>(c.latents_mean.size()) != c.z_dim ||
      static_cast<int64_t>(c.latents_std.size()) != c.z_dim) {
    return invalid_argument(strfmt("%s: latents_mean/latents_std have %zu/%zu values, need z_dim=%lld",
                                   what.c_str(), c.latents_mean.size(), c.latents_std.size(),
                                   static_cast<long long>(c.z_dim)));
  }
  for (size_t i = 0; i < c.latents_std.size(); ++i) {
    if (!(c.latents_std[i] > 0) || !std::isfinite(c.latents_std[i]) || !std::isfinite(c.latents_mean[i])) {
      return invalid_argument(strfmt("%s: latents_std[%zu]=%g must be finite and > 0 (mean %g)", what.c_str(), i,
                                     c.latents_std[i], c.latents_mean[i]));
    }
  }
  return Status::ok();
}

Result<VaeConfig> resolve_vae_config(const VaeConfigSources& s) {
  VaeConfig c;
  // Lowest precedence first: inferred sizes over the released defaults, then metadata, then config JSON.
  if (s.inferred_dim > 0) c.dim = s.inferred_dim;
  if (s.inferred_z_dim > 0) c.z_dim = s.inferred_z_dim;

  json meta = json::object();
  if (s.metadata) {
    for (const auto& [k, v] : *s.metadata) {
      if (k == "config") continue;
      auto parsed = parse_value(v, s.weights_name + " metadata key " + k);
      if (parsed) meta[k] = *parsed;
      // Unparseable values under keys we do not read (e.g. "format": "pt") are ignored.
      else if (k == "dim" || k == "z_dim" || k == "dim_mult" || k == "num_res_blocks" || k == "temperal_downsample" ||
               k == "latents_mean" || k == "latents_std" || k == "attn_scales" || k == "base_dim") {
        return parsed.status();
      }
    }
    auto it = s.metadata->find("config");
    if (it != s.metadata->end()) {
      VDIT_ASSIGN(json cj, parse_value(it->second, s.weights_name + " metadata key config"));
      if (!cj.is_object()) return format_error(s.weights_name + ": metadata key config is not a JSON object");
      VDIT_TRY(apply_keys(&c, cj, s.weights_name + " metadata config"));
    }
    VDIT_TRY(apply_keys(&c, meta, s.weights_name + " metadata"));
  }
  json cfg = json::object();
  if (!s.config_json.empty()) {
    cfg = json::parse(s.config_json, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object()) {
      return format_error(s.config_json_name + ": not a JSON object; pass a VAE config.json (official WanVAE_ or "
                          "diffusers AutoencoderKLWan keys)");
    }
    if (cfg.contains("_class_name") && cfg["_class_name"].is_string() &&
        cfg["_class_name"].get<std::string>() != "AutoencoderKLWan") {
      return invalid_argument(s.config_json_name + ": _class_name is " + cfg["_class_name"].get<std::string>() +
                              ", not AutoencoderKLWan; this is not a Wan VAE config");
    }
    VDIT_TRY(apply_keys(&c, cfg, s.config_json_name));
  }

  bool found = false;
  VDIT_TRY(apply_latents(&c, meta, s.weights_name + " metadata", &found));
  if (found) {
    c.normalization_source = "metadata";
  } else {
    VDIT_TRY(apply_latents(&c, cfg, s.config_json_name, &found));
    if (found) c.normalization_source = "config";
  }
  if (!found) {
    if (c.z_dim != 16) {
      return invalid_argument(strfmt("%s: z_dim=%lld but no latents_mean/latents_std were found; the Wan2.1 "
                                     "constants have 16 channels. Store latents_mean and latents_std (JSON arrays) "
                                     "in the safetensors metadata",
                                     s.weights_name.c_str(), static_cast<long long>(c.z_dim)));
    }
    c.latents_mean = wan21_latents_mean();
    c.latents_std = wan21_latents_std();
    c.normalization_source = "wan2.1 constants";
  }
  VDIT_TRY(validate_vae_config(c));
  return c;
}

}  // namespace vdit::vae
