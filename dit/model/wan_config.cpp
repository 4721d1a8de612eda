// Wan2.1 DiT config: parsing config.json (official and diffusers keys) and stringified safetensors
// metadata, inference from tensor shapes, and the precedence/consistency rules between them.
#include "dit/model/wan_config.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dit/model/wan_names.h"

namespace vdit::model {
namespace {

using json = nlohmann::json;

// One source's view of the config: only the values it states.
struct PartialConfig {
  std::string source;  // "config.json (path)", "safetensors metadata of ...", "the tensor shapes of ..."
  // Any of kIntFields: dim, ffn_dim, num_heads, num_layers, in_dim, out_dim, freq_dim, text_dim, text_len.
  std::map<std::string, int64_t> ints;
  std::optional<std::array<int64_t, 3>> patch_size;
  std::optional<double> eps;
  std::optional<bool> qk_norm, cross_attn_norm;
};

// The integer fields, by their official config.json / metadata key.
constexpr std::pair<const char*, int64_t WanDitConfig::*> kIntFields[] = {
    {"dim", &WanDitConfig::dim},
    {"ffn_dim", &WanDitConfig::ffn_dim},
    {"num_heads", &WanDitConfig::num_heads},
    {"num_layers", &WanDitConfig::num_layers},
    {"in_dim", &WanDitConfig::in_dim},
    {"out_dim", &WanDitConfig::out_dim},
    {"freq_dim", &WanDitConfig::freq_dim},
    {"text_dim", &WanDitConfig::text_dim},
    {"text_len", &WanDitConfig::text_len},
};

Status check_model_type(const std::string& type, const std::string& source) {
  if (type == "t2v") return Status::ok();
  if (type == "i2v" || type == "flf2v" || type == "vace" || type == "ti2v") {
    return unsupported(source + ": model_type \"" + type + "\" is not supported; only the t2v DiT is");
  }
  return format_error(source + ": unknown model_type \"" + type + "\" (expected \"t2v\")");
}

Status check_window(const std::vector<int64_t>& w, const std::string& source) {
  if (w.size() == 2 && w[0] == -1 && w[1] == -1) return Status::ok();
  return unsupported(source + ": window_size other than (-1, -1) (local attention) is not supported");
}

// --- config.json ---------------------------------------------------------------------------------

Result<int64_t> json_int(const json& j, const char* key, const std::string& source) {
  const json& v = j.at(key);
  if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>();
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())
    return static_cast<int64_t>(v.get<double>());
  return format_error(source + ": \"" + key + "\" must be an integer, got " + v.dump());
}

Result<PartialConfig> parse_config_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) return not_found(path + ": cannot open the DiT config.json");
  json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
  const std::string src = "config.json (" + path + ")";
  if (!j.is_object()) return format_error(src + " is not a valid JSON object");
  // A whole-model config may keep the DiT's values under "dit".
  if (j.contains("dit") && j["dit"].is_object()) j = json(j["dit"]);
  PartialConfig p;
  p.source = src;
  if (j.contains("_class_name") && j["_class_name"].is_string()) {
    std::string cls = j["_class_name"];
    if (cls != "WanModel" && cls != "WanTransformer3DModel") {
      return format_error(src + " describes a \"" + cls + "\", not a Wan DiT (WanModel / WanTransformer3DModel)");
    }
  }
  try {
    if (j.contains("model_type") && j["model_type"].is_string()) VDIT_TRY(check_model_type(j["model_type"], src));
    for (const auto& [k, member] : kIntFields) {
      if (j.contains(k) && !j[k].is_null()) {
        VDIT_ASSIGN(p.ints[k], json_int(j, k, src));
      }
    }
    // diffusers WanTransformer3DModel names.
    if (j.contains("num_attention_heads")) {
      VDIT_ASSIGN(p.ints["num_heads"], json_int(j, "num_attention_heads", src));
    }
    if (j.contains("in_channels")) {
      VDIT_ASSIGN(p.ints["in_dim"], json_int(j, "in_channels", src));
    }
    if (j.contains("out_channels")) {
      VDIT_ASSIGN(p.ints["out_dim"], json_int(j, "out_channels", src));
    }
    if (j.contains("attention_head_dim")) {
      VDIT_ASSIGN(int64_t hd, json_int(j, "attention_head_dim", src));
      if (!p.ints.count("num_heads")) {
        return format_error(src + ": attention_head_dim without num_attention_heads");
      }
      p.ints["dim"] = hd * p.ints["num_heads"];
    }
    if ((j.contains("image_dim") && !j["image_dim"].is_null()) ||
        (j.contains("added_kv_proj_dim") && !j["added_kv_proj_dim"].is_null())) {
      return unsupported(src + ": image_dim / added_kv_proj_dim describe an image-to-video DiT; only t2v is supported");
    }
    if (j.contains("patch_size")) {
      const json& ps = j["patch_size"];
      if (!ps.is_array() || ps.size() != 3) return format_error(src + ": patch_size must be a list of 3 integers");
      p.patch_size = std::array<int64_t, 3>{ps[0].get<int64_t>(), ps[1].get<int64_t>(), ps[2].get<int64_t>()};
    }
    if (j.contains("eps")) p.eps = j["eps"].get<double>();
    if (j.contains("qk_norm")) {
      const json& q = j["qk_norm"];
      // Official: bool; diffusers: "rms_norm_across_heads" or null.
      if (q.is_boolean()) {
        p.qk_norm = q.get<bool>();
      } else if (q.is_null()) {
        p.qk_norm = false;
      } else if (q.is_string() && q.get<std::string>() == "rms_norm_across_heads") {
        p.qk_norm = true;
      } else {
        return unsupported(src + ": qk_norm " + q.dump() +
                           " is not supported (expected true or \"rms_norm_across_heads\")");
      }
    }
    if (j.contains("cross_attn_norm")) p.cross_attn_norm = j["cross_attn_norm"].get<bool>();
    if (j.contains("window_size") && j["window_size"].is_array()) {
      VDIT_TRY(check_window(j["window_size"].get<std::vector<int64_t>>(), src));
    }
  } catch (const json::exception& e) {
    return format_error(src + ": a value has the wrong type (" + e.what() + ")");
  }
  return p;
}

// --- safetensors metadata (Python reprs: "256", "(1, 2, 2)", "True", "1e-06", "t2v") ---------------------

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\n\r'\""), b = s.find_last_not_of(" \t\n\r'\"");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool parse_int(const std::string& s, int64_t* out) {
  std::string t = trim(s);
  if (t.empty()) return false;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (*end != '\0') return false;
  *out = v;
  return true;
}

bool parse_int_tuple(const std::string& s, std::vector<int64_t>* out) {
  std::string t = trim(s);
  if (t.size() < 2 || !((t.front() == '(' && t.back() == ')') || (t.front() == '[' && t.back() == ']'))) return false;
  std::stringstream ss(t.substr(1, t.size() - 2));
  std::string item;
  out->clear();
  while (std::getline(ss, item, ',')) {
    if (trim(item).empty()) continue;
    int64_t v;
    if (!parse_int(item, &v)) return false;
    out->push_back(v);
  }
  return true;
}

Result<PartialConfig> parse_metadata(const std::map<std::string, std::string>& md, const std::string& weights) {
  const std::string src = "safetensors metadata of " + weights;
  PartialConfig p;
  p.source = src;
  auto bad = [&](const std::string& key, const std::string& v, const char* want) {
    return format_error(src + ": \"" + key + "\" = \"" + v + "\" is not " + want);
  };
  for (const auto& [k, member] : kIntFields) {
    auto it = md.find(k);
    if (it == md.end()) continue;
    int64_t v;
    if (!parse_int(it->second, &v)) return bad(k, it->second, "an integer");
    p.ints[k] = v;
  }
  if (auto it = md.find("model_type"); it != md.end()) VDIT_TRY(check_model_type(trim(it->second), src));
  if (auto it = md.find("patch_size"); it != md.end()) {
    std::vector<int64_t> v;
    if (!parse_int_tuple(it->second, &v) || v.size() != 3)
      return bad("patch_size", it->second, "a 3-tuple of integers");
    p.patch_size = std::array<int64_t, 3>{v[0], v[1], v[2]};
  }
  if (auto it = md.find("window_size"); it != md.end()) {
    std::vector<int64_t> v;
    if (!parse_int_tuple(it->second, &v)) return bad("window_size", it->second, "a tuple of integers");
    VDIT_TRY(check_window(v, src));
  }
  if (auto it = md.find("eps"); it != md.end()) {
    char* end = nullptr;
    std::string t = trim(it->second);
    double v = std::strtod(t.c_str(), &end);
    if (t.empty() || *end != '\0') return bad("eps", it->second, "a number");
    p.eps = v;
  }
  for (const char* k : {"qk_norm", "cross_attn_norm"}) {
    auto it = md.find(k);
    if (it == md.end()) continue;
    std::string t = trim(it->second);
    bool v;
    if (t == "True" || t == "true" || t == "1") {
      v = true;
    } else if (t == "False" || t == "false" || t == "0") {
      v = false;
    } else {
      return bad(k, it->second, "a boolean");
    }
    (std::string(k) == "qk_norm" ? p.qk_norm : p.cross_attn_norm) = v;
  }
  return p;
}

// --- inference from shapes -------------------------------------------------------------------------

Result<Shape> need(const TensorShapes& shapes, const std::string& official, WanLayout layout, size_t rank) {
  std::string name = wan_tensor_name(official, layout);
  auto it = shapes.find(name);
  if (it == shapes.end()) return format_error("missing tensor " + name + " (needed to infer the config)");
  if (it->second.size() != rank) {
    return format_error(
        strfmt("tensor %s has shape %s; expected rank %zu", name.c_str(), shape_str(it->second).c_str(), rank));
  }
  for (int64_t d : it->second) {
    if (d <= 0) return format_error("tensor " + name + " has an empty shape " + shape_str(it->second));
  }
  return it->second;
}

int64_t count_blocks(const TensorShapes& shapes) {
  int64_t n = 0;
  for (const auto& kv : shapes) {
    const std::string& k = kv.first;
    if (k.rfind("blocks.", 0) != 0) continue;
    int64_t i;
    size_t dot = k.find('.', 7);
    if (dot != std::string::npos && parse_int(k.substr(7, dot - 7), &i) && i >= 0 && i < 100000) n = std::max(n, i + 1);
  }
  return n;
}

PartialConfig to_partial(const WanDitConfig& c, const std::string& source) {
  PartialConfig p;
  p.source = source;
  p.ints = {{"dim", c.dim},         {"ffn_dim", c.ffn_dim},   {"num_layers", c.num_layers}, {"in_dim", c.in_dim},
            {"out_dim", c.out_dim}, {"freq_dim", c.freq_dim}, {"text_dim", c.text_dim}};
  p.patch_size = c.patch_size;
  p.qk_norm = c.qk_norm;
  p.cross_attn_norm = c.cross_attn_norm;
  return p;
}

std::string tuple_str(const std::array<int64_t, 3>& a) {
  return strfmt("(%lld, %lld, %lld)", (long long)a[0], (long long)a[1], (long long)a[2]);
}

}  // namespace

std::string WanDitConfig::to_string() const {
  return strfmt(
      "dim %lld, ffn_dim %lld, heads %lld (head_dim %lld), layers %lld, in/out %lld/%lld, freq_dim %lld, "
      "text_dim %lld, text_len %lld, patch %s, eps %g%s%s",
      (long long)dim, (long long)ffn_dim, (long long)num_heads, (long long)head_dim(), (long long)num_layers,
      (long long)in_dim, (long long)out_dim, (long long)freq_dim, (long long)text_dim, (long long)text_len,
      tuple_str(patch_size).c_str(), eps, qk_norm ? "" : ", no qk_norm", cross_attn_norm ? "" : ", no cross_attn_norm");
}

Status validate_wan_dit_config(const WanDitConfig& c) {
  auto positive = [](int64_t v) { return v > 0; };
  const std::pair<const char*, int64_t> sizes[] = {
      {"dim", c.dim},          {"ffn_dim", c.ffn_dim}, {"num_heads", c.num_heads}, {"num_layers", c.num_layers},
      {"in_dim", c.in_dim},    {"out_dim", c.out_dim}, {"freq_dim", c.freq_dim},   {"text_dim", c.text_dim},
      {"text_len", c.text_len}};
  for (const auto& [name, v] : sizes) {
    if (!positive(v)) return invalid_argument(strfmt("DiT config: %s must be positive, got %lld", name, (long long)v));
  }
  for (int64_t p : c.patch_size) {
    if (p <= 0) return invalid_argument("DiT config: patch_size must be positive, got " + tuple_str(c.patch_size));
  }
  if (c.dim % c.num_heads != 0) {
    return invalid_argument(
        strfmt("DiT config: dim %lld is not a multiple of num_heads %lld", (long long)c.dim, (long long)c.num_heads));
  }
  if (c.head_dim() % 2 != 0) {
    return invalid_argument(strfmt("DiT config: head_dim = dim/num_heads = %lld must be even (RoPE rotates pairs)",
                                   (long long)c.head_dim()));
  }
  if (c.freq_dim % 2 != 0) {
    return invalid_argument(
        strfmt("DiT config: freq_dim %lld must be even (cos and sin halves)", (long long)c.freq_dim));
  }
  if (!(c.eps > 0 && c.eps < 1)) return invalid_argument(strfmt("DiT config: eps %g must be in (0, 1)", c.eps));
  return Status::ok();
}

Result<WanDitConfig> infer_wan_dit_config(const TensorShapes& shapes, WanLayout layout, int64_t head_dim_hint) {
  WanDitConfig c;
  VDIT_ASSIGN(Shape pe, need(shapes, "patch_embedding.weight", layout, 5));
  c.dim = pe[0];
  c.in_dim = pe[1];
  c.patch_size = {pe[2], pe[3], pe[4]};
  VDIT_ASSIGN(Shape te, need(shapes, "text_embedding.0.weight", layout, 2));
  c.text_dim = te[1];
  VDIT_ASSIGN(Shape tm, need(shapes, "time_embedding.0.weight", layout, 2));
  c.freq_dim = tm[1];
  VDIT_ASSIGN(Shape ffn, need(shapes, "blocks.0.ffn.0.weight", layout, 2));
  c.ffn_dim = ffn[0];
  c.num_layers = count_blocks(shapes);
  VDIT_ASSIGN(Shape head, need(shapes, "head.head.weight", layout, 2));
  if (head[0] % c.patch_volume() != 0) {
    return format_error(strfmt("%s has %lld rows, not a multiple of the patch volume %lld",
                               wan_tensor_name("head.head.weight", layout).c_str(), (long long)head[0],
                               (long long)c.patch_volume()));
  }
  c.out_dim = head[0] / c.patch_volume();
  c.qk_norm = shapes.count(wan_tensor_name("blocks.0.self_attn.norm_q.weight", layout)) > 0;
  c.cross_attn_norm = shapes.count(wan_tensor_name("blocks.0.norm3.weight", layout)) > 0;
  if (head_dim_hint == 0) return c;  // num_heads left unset (0) for the caller to fill
  if (head_dim_hint < 0 || c.dim % head_dim_hint != 0) {
    return invalid_argument(
        strfmt("cannot infer num_heads: dim %lld is not a multiple of head_dim %lld; give num_heads "
               "in a config.json beside the weights",
               (long long)c.dim, (long long)head_dim_hint));
  }
  c.num_heads = c.dim / head_dim_hint;
  return c;
}

Result<WanDitConfig> resolve_wan_dit_config(const TensorShapes& shapes, const WanDitConfigSources& sources) {
  VDIT_ASSIGN(WanLayout layout, detect_wan_dit_layout(shapes, sources.weights_name));
  std::vector<PartialConfig> stated;  // in precedence order
  if (sources.config_json_path) {
    VDIT_ASSIGN(PartialConfig p, parse_config_json(*sources.config_json_path));
    stated.push_back(std::move(p));
  }
  if (sources.metadata && !sources.metadata->empty()) {
    VDIT_ASSIGN(PartialConfig p, parse_metadata(*sources.metadata, sources.weights_name));
    stated.push_back(std::move(p));
  }
  // Shape inference without num_heads (dim need not be a multiple of the hint when a source states it).
  auto inferred_r = infer_wan_dit_config(shapes, layout, /*head_dim_hint=*/0);
  if (!inferred_r) return inferred_r.status().with_context(sources.weights_name);
  const WanDitConfig inferred = *inferred_r;
  stated.push_back(to_partial(inferred, "the tensor shapes of " + sources.weights_name));

  // Every stated value must agree with every other source that states it (shapes included).
  WanDitConfig c = inferred;
  auto conflict = [](const PartialConfig& a, const PartialConfig& b, const std::string& key, const std::string& va,
                     const std::string& vb) {
    return format_error(key + " = " + va + " in " + a.source + " but " + key + " = " + vb + " in " + b.source +
                        "; fix or remove the wrong value");
  };
  for (const auto& [k, member] : kIntFields) {
    const PartialConfig* first = nullptr;
    for (const auto& p : stated) {
      auto it = p.ints.find(k);
      if (it == p.ints.end()) continue;
      if (!first) {
        first = &p;
        continue;
      }
      const int64_t a = first->ints.at(k), b = it->second;
      if (a != b) return conflict(*first, p, k, std::to_string(a), std::to_string(b));
    }
    if (first) c.*member = first->ints.at(k);
  }
  auto merge_opt = [&](auto member, const char* key, auto to_str, auto& dst) -> Status {
    const PartialConfig* first = nullptr;
    for (const auto& p : stated) {
      if (!(p.*member)) continue;
      if (!first) {
        first = &p;
        continue;
      }
      if (*(first->*member) != *(p.*member)) {
        return conflict(*first, p, key, to_str(*(first->*member)), to_str(*(p.*member)));
      }
    }
    if (first) dst = *(first->*member);
    return Status::ok();
  };
  auto bool_str = [](bool b) { return std::string(b ? "true" : "false"); };
  VDIT_TRY(merge_opt(&PartialConfig::patch_size, "patch_size", tuple_str, c.patch_size));
  VDIT_TRY(merge_opt(&PartialConfig::qk_norm, "qk_norm", bool_str, c.qk_norm));
  VDIT_TRY(merge_opt(&PartialConfig::cross_attn_norm, "cross_attn_norm", bool_str, c.cross_attn_norm));
  VDIT_TRY(merge_opt(
      &PartialConfig::eps, "eps", [](double v) { return strfmt("%g", v); }, c.eps));
  if (c.num_heads == 0) {  // stated nowhere: head_dim 128 unless told otherwise
    const int64_t hd = sources.head_dim_hint;
    if (hd <= 0 || c.dim % hd != 0) {
      return invalid_argument(
          strfmt("%s: cannot infer num_heads: dim %lld is not a multiple of head_dim %lld; give "
                 "num_heads in a config.json beside the weights",
                 sources.weights_name.c_str(), (long long)c.dim, (long long)hd));
    }
    c.num_heads = c.dim / hd;
  }
  Status valid = validate_wan_dit_config(c);
  if (!valid.is_ok()) return valid.with_context(sources.weights_name);
  return c;
}

}  // namespace vdit::model
