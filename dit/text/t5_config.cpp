// T5Config checks and the metadata / config.json cross-check.
#include "dit/text/t5_config.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vdit::text {
namespace {

Result<int64_t> parse_int(const std::string& key, const std::string& value, const std::string& source) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(value.c_str(), &end, 10);
  if (errno != 0 || end == value.c_str() || *end != '\0') {
    return format_error(
        strfmt("%s: setting %s = \"%s\" is not an integer", source.c_str(), key.c_str(), value.c_str()));
  }
  return static_cast<int64_t>(v);
}

Result<double> parse_float(const std::string& key, const std::string& value, const std::string& source) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (errno != 0 || end == value.c_str() || *end != '\0') {
    return format_error(strfmt("%s: setting %s = \"%s\" is not a number", source.c_str(), key.c_str(), value.c_str()));
  }
  return v;
}

// A size the tensors already determined: the setting must agree.
Status check_size(const std::map<std::string, std::string>& s, const char* key, int64_t from_shapes, const char* what,
                  const std::string& source) {
  auto it = s.find(key);
  if (it == s.end()) return Status::ok();
  VDIT_ASSIGN(int64_t v, parse_int(key, it->second, source));
  if (v != from_shapes) {
    return format_error(
        strfmt("%s: %s = %lld, but the tensors say %lld (%s); the settings belong to another model or "
               "the weights are incomplete",
               source.c_str(), key, static_cast<long long>(v), static_cast<long long>(from_shapes), what));
  }
  return Status::ok();
}

}  // namespace

std::string T5Config::summary() const {
  return strfmt("vocab %lld, dim %lld, %lld heads x %lld, ffn %lld, %lld layers, %lld buckets (%s), max_distance %lld",
                static_cast<long long>(vocab), static_cast<long long>(dim), static_cast<long long>(num_heads),
                static_cast<long long>(head_dim()), static_cast<long long>(dim_ffn), static_cast<long long>(num_layers),
                static_cast<long long>(num_buckets), shared_pos ? "shared" : "per layer",
                static_cast<long long>(max_distance));
}

Status T5Config::validate() const {
  if (vocab <= 0 || dim <= 0 || dim_attn <= 0 || dim_ffn <= 0 || num_heads <= 0 || num_layers <= 0) {
    return format_error("T5 config has a non-positive size: " + summary());
  }
  if (dim_attn % num_heads != 0) {
    return format_error(strfmt("T5 attention width %lld is not a multiple of the %lld heads",
                               static_cast<long long>(dim_attn), static_cast<long long>(num_heads)));
  }
  if (num_buckets < 4 || num_buckets % 2 != 0) {
    return format_error(strfmt("T5 relative attention needs an even bucket count >= 4 (bidirectional); got %lld",
                               static_cast<long long>(num_buckets)));
  }
  if (max_distance <= num_buckets / 4) {
    return format_error(strfmt("T5 max_distance %lld must exceed num_buckets/4 = %lld",
                               static_cast<long long>(max_distance), static_cast<long long>(num_buckets / 4)));
  }
  if (!(eps > 0.0f)) return format_error(strfmt("T5 layer-norm eps must be positive; got %g", double(eps)));
  return Status::ok();
}

Status apply_t5_settings(T5Config& c, const std::map<std::string, std::string>& s, const std::string& source) {
  if (auto it = s.find("model_type"); it != s.end()) {
    const std::string& t = it->second;
    if (t != "t5" && t != "umt5" && t != "mt5") {
      return format_error(source + ": model_type is \"" + t + "\", not a T5/UMT5 encoder");
    }
  }
  if (auto it = s.find("feed_forward_proj"); it != s.end() && it->second != "gated-gelu") {
    return unsupported(source + ": feed_forward_proj \"" + it->second +
                       "\" is not supported; only UMT5's gated GELU (\"gated-gelu\") is implemented");
  }
  VDIT_TRY(check_size(s, "vocab", c.vocab, "vocabulary", source));
  VDIT_TRY(check_size(s, "vocab_size", c.vocab, "vocabulary", source));
  VDIT_TRY(check_size(s, "dim", c.dim, "width", source));
  VDIT_TRY(check_size(s, "d_model", c.dim, "width", source));
  VDIT_TRY(check_size(s, "dim_attn", c.dim_attn, "attention width", source));
  VDIT_TRY(check_size(s, "dim_ffn", c.dim_ffn, "FFN width", source));
  VDIT_TRY(check_size(s, "d_ff", c.dim_ffn, "FFN width", source));
  VDIT_TRY(check_size(s, "num_heads", c.num_heads, "heads", source));
  VDIT_TRY(check_size(s, "num_layers", c.num_layers, "layers", source));
  VDIT_TRY(check_size(s, "num_buckets", c.num_buckets, "buckets", source));
  VDIT_TRY(check_size(s, "relative_attention_num_buckets", c.num_buckets, "buckets", source));
  VDIT_TRY(check_size(s, "d_kv", c.head_dim(), "head dim", source));
  if (auto it = s.find("shared_pos"); it != s.end()) {
    const bool v = it->second == "True" || it->second == "true" || it->second == "1";
    if (v != c.shared_pos) {
      return format_error(source + ": shared_pos = " + it->second + " but the weights have " +
                          (c.shared_pos ? "one shared" : "a per-layer") + " relative-bias table");
    }
  }
  for (const char* key : {"max_dist", "max_distance", "relative_attention_max_distance"}) {
    if (auto it = s.find(key); it != s.end()) {
      VDIT_ASSIGN(c.max_distance, parse_int(key, it->second, source));
    }
  }
  for (const char* key : {"eps", "layer_norm_epsilon"}) {
    if (auto it = s.find(key); it != s.end()) {
      VDIT_ASSIGN(double e, parse_float(key, it->second, source));
      c.eps = static_cast<float>(e);
    }
  }
  return c.validate().with_context(source);
}

Result<std::map<std::string, std::string>> read_hf_config_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) return not_found(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return format_error(path + ": not a JSON object");
  std::map<std::string, std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    if (v.is_string()) {
      out[it.key()] = v.get<std::string>();
    } else if (v.is_boolean()) {
      out[it.key()] = v.get<bool>() ? "true" : "false";
    } else if (v.is_number_integer()) {
      out[it.key()] = std::to_string(v.get<int64_t>());
    } else if (v.is_number_float()) {
      out[it.key()] = strfmt("%.17g", v.get<double>());
    }
  }
  return out;
}

}  // namespace vdit::text
