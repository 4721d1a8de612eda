// Official <-> diffusers tensor names of the Wan2.1 DiT and exact key-set matching.
#include "dit/model/wan_names.h"

#include <set>

namespace vdit::model {
namespace {

// diffusers scripts/convert_wan_to_diffusers.py, TRANSFORMER_KEYS_RENAME_DICT (t2v entries): plain
// substring replacement of every occurrence, applied to each key in this order. The three norm lines swap
// the names: official `norm3` (cross-attention LayerNorm, affine) is diffusers `norm2`, and official
// `norm2` (FFN LayerNorm, no tensors) would be diffusers `norm3`.
constexpr std::pair<const char*, const char*> kOfficialToDiffusers[] = {
    {"time_embedding.0", "condition_embedder.time_embedder.linear_1"},
    {"time_embedding.2", "condition_embedder.time_embedder.linear_2"},
    {"text_embedding.0", "condition_embedder.text_embedder.linear_1"},
    {"text_embedding.2", "condition_embedder.text_embedder.linear_2"},
    {"time_projection.1", "condition_embedder.time_proj"},
    {"head.modulation", "scale_shift_table"},
    {"head.head", "proj_out"},
    {"modulation", "scale_shift_table"},
    {"ffn.0", "ffn.net.0.proj"},
    {"ffn.2", "ffn.net.2"},
    {"norm2", "norm__placeholder"},
    {"norm3", "norm2"},
    {"norm__placeholder", "norm3"},
    {"self_attn.q", "attn1.to_q"},
    {"self_attn.k", "attn1.to_k"},
    {"self_attn.v", "attn1.to_v"},
    {"self_attn.o", "attn1.to_out.0"},
    {"self_attn.norm_q", "attn1.norm_q"},
    {"self_attn.norm_k", "attn1.norm_k"},
    {"cross_attn.q", "attn2.to_q"},
    {"cross_attn.k", "attn2.to_k"},
    {"cross_attn.v", "attn2.to_v"},
    {"cross_attn.o", "attn2.to_out.0"},
    {"cross_attn.norm_q", "attn2.norm_q"},
    {"cross_attn.norm_k", "attn2.norm_k"},
};

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

bool has_prefix(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

bool any_key(const TensorShapes& shapes, bool (*pred)(const std::string&)) {
  for (const auto& kv : shapes) {
    if (pred(kv.first)) return true;
  }
  return false;
}

std::string name_list(const std::vector<std::string>& names, size_t max_shown = 6) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max_shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > max_shown) out += strfmt(", ... (%zu in all)", names.size());
  return out;
}

}  // namespace

const char* wan_layout_name(WanLayout layout) { return layout == WanLayout::official ? "official" : "diffusers"; }

std::string wan_tensor_name(const std::string& official_name, WanLayout layout) {
  if (layout == WanLayout::official) return official_name;
  std::string s = official_name;
  for (const auto& [from, to] : kOfficialToDiffusers) replace_all(s, from, to);
  return s;
}

std::vector<std::pair<std::string, Shape>> wan_dit_expected_tensors(const WanDitConfig& c) {
  const int64_t D = c.dim;
  std::vector<std::pair<std::string, Shape>> t;
  t.emplace_back("patch_embedding.weight", Shape{D, c.in_dim, c.patch_size[0], c.patch_size[1], c.patch_size[2]});
  t.emplace_back("patch_embedding.bias", Shape{D});
  t.emplace_back("text_embedding.0.weight", Shape{D, c.text_dim});
  t.emplace_back("text_embedding.0.bias", Shape{D});
  t.emplace_back("text_embedding.2.weight", Shape{D, D});
  t.emplace_back("text_embedding.2.bias", Shape{D});
  t.emplace_back("time_embedding.0.weight", Shape{D, c.freq_dim});
  t.emplace_back("time_embedding.0.bias", Shape{D});
  t.emplace_back("time_embedding.2.weight", Shape{D, D});
  t.emplace_back("time_embedding.2.bias", Shape{D});
  t.emplace_back("time_projection.1.weight", Shape{6 * D, D});
  t.emplace_back("time_projection.1.bias", Shape{6 * D});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    t.emplace_back(b + "modulation", Shape{1, 6, D});
    for (const char* attn : {"self_attn", "cross_attn"}) {
      if (std::string(attn) == "cross_attn" && c.cross_attn_norm) {
        t.emplace_back(b + "norm3.weight", Shape{D});
        t.emplace_back(b + "norm3.bias", Shape{D});
      }
      for (const char* p : {"q", "k", "v", "o"}) {
        t.emplace_back(b + attn + "." + p + ".weight", Shape{D, D});
        t.emplace_back(b + attn + "." + p + ".bias", Shape{D});
      }
      if (c.qk_norm) {
        t.emplace_back(b + attn + ".norm_q.weight", Shape{D});
        t.emplace_back(b + attn + ".norm_k.weight", Shape{D});
      }
    }
    t.emplace_back(b + "ffn.0.weight", Shape{c.ffn_dim, D});
    t.emplace_back(b + "ffn.0.bias", Shape{c.ffn_dim});
    t.emplace_back(b + "ffn.2.weight", Shape{D, c.ffn_dim});
    t.emplace_back(b + "ffn.2.bias", Shape{D});
  }
  t.emplace_back("head.modulation", Shape{1, 2, D});
  t.emplace_back("head.head.weight", Shape{c.out_dim * c.patch_volume(), D});
  t.emplace_back("head.head.bias", Shape{c.out_dim * c.patch_volume()});
  return t;
}

Result<WanLayout> detect_wan_dit_layout(const TensorShapes& shapes, const std::string& what) {
  auto has = [&](const char* n) { return shapes.count(n) > 0; };
  const bool official = has("time_embedding.0.weight");
  const bool diffusers = has("condition_embedder.time_embedder.linear_1.weight");
  if (any_key(shapes, [](const std::string& k) {
        return has_prefix(k, "img_emb.") || has_prefix(k, "condition_embedder.image_embedder.") ||
               k.find(".k_img.") != std::string::npos || k.find(".add_k_proj.") != std::string::npos;
      })) {
    return unsupported(what +
                       " holds an image-to-video (i2v/flf2v) Wan DiT (img_emb / k_img tensors); only the "
                       "text-to-video DiT is supported");
  }
  if (has("patch_embedding.weight") && official != diffusers) {
    return official ? WanLayout::official : WanLayout::diffusers;
  }
  if (has("patch_embedding.weight") && official && diffusers) {
    return format_error(what +
                        " mixes official (time_embedding.0.weight) and diffusers "
                        "(condition_embedder.time_embedder.linear_1.weight) names; use one layout");
  }
  // Not a DiT: say what it looks like.
  std::string looks;
  if (any_key(shapes, [](const std::string& k) {
        return has_prefix(k, "decoder.") || has_prefix(k, "encoder.down") || k == "conv2.weight" ||
               has_prefix(k, "post_quant_conv.");
      })) {
    looks = "it looks like a Wan VAE (decoder.* / conv2 tensors)";
  } else if (any_key(shapes, [](const std::string& k) {
               return k == "token_embedding.weight" || k == "shared.weight" || has_prefix(k, "encoder.block.") ||
                      k.find(".pos_embedding.embedding.") != std::string::npos;
             })) {
    looks = "it looks like a T5 text encoder (token_embedding / shared tensors)";
  } else if (any_key(shapes, [](const std::string& k) {
               return has_prefix(k, "model.diffusion_model.") || has_prefix(k, "diffusion_model.");
             })) {
    looks =
        "its names carry a \"model.diffusion_model.\" prefix (ComfyUI layout), which is not supported; "
        "use the official or diffusers file";
  } else {
    std::vector<std::string> some;
    for (const auto& kv : shapes) {
      if (some.size() == 3) break;
      some.push_back("\"" + kv.first + "\"");
    }
    looks = strfmt("it holds %zu tensors such as %s", shapes.size(), name_list(some).c_str());
  }
  return format_error(
      what + " is not a Wan2.1 DiT checkpoint: it has no " +
      (has("patch_embedding.weight") ? std::string("time_embedding.0.weight") : std::string("patch_embedding.weight")) +
      "; " + looks + ". Pass the DiT weights (diffusion_pytorch_model*.safetensors)");
}

Result<WanTensorNames> match_wan_dit_tensors(const WanDitConfig& config, const TensorShapes& shapes, WanLayout layout,
                                             const std::string& what) {
  WanTensorNames names;
  std::set<std::string> expected_file_names;
  std::vector<std::string> missing, misshaped;
  for (const auto& [official, shape] : wan_dit_expected_tensors(config)) {
    std::string name = wan_tensor_name(official, layout);
    expected_file_names.insert(name);
    auto it = shapes.find(name);
    if (it == shapes.end()) {
      missing.push_back(name);
      continue;
    }
    if (it->second != shape) {
      misshaped.push_back(name + " is " + shape_str(it->second) + ", expected " + shape_str(shape));
    }
    names.emplace_back(official, name);
  }
  std::vector<std::string> unexpected;
  for (const auto& kv : shapes) {
    if (!expected_file_names.count(kv.first)) unexpected.push_back(kv.first);
  }
  const std::string ctx =
      strfmt("%s (%s layout, %s)", what.c_str(), wan_layout_name(layout), config.to_string().c_str());
  if (!missing.empty()) {
    return format_error(
        strfmt("%s: missing tensor%s %s", ctx.c_str(), missing.size() > 1 ? "s" : "", name_list(missing).c_str()));
  }
  if (!unexpected.empty()) {
    return format_error(strfmt("%s: unexpected tensor%s %s (not part of a Wan2.1 t2v DiT with this config)",
                               ctx.c_str(), unexpected.size() > 1 ? "s" : "", name_list(unexpected).c_str()));
  }
  if (!misshaped.empty()) {
    return format_error(
        strfmt("%s: wrong shape%s: %s", ctx.c_str(), misshaped.size() > 1 ? "s" : "", name_list(misshaped, 4).c_str()));
  }
  return names;
}

}  // namespace vdit::model
