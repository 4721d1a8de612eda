// Checkpoint -> T5Weights: naming detection (official / HF, optional prefix), shape inference and checks,
// folder layouts, and the optional f32 conversion.
#include "dit/text/t5_weights.h"

#include <filesystem>
#include <functional>

#include "dit/core/log.h"
#include "dit/core/parallel.h"
#include "io/tensor_file.h"

namespace vdit::text {
namespace {

namespace fs = std::filesystem;

// Tensor names of one layout, relative to the detected prefix.
struct Naming {
  const char* layout;
  const char* probe;  // layer 0's q weight: identifies the layout
  // The embedding's name; `has` tells whether a (prefix-relative) name exists.
  std::string embedding(const std::function<bool(const std::string&)>& has) const;
  std::string layer(int64_t i, const char* part) const;
  const char* final_norm;
  const char* shared_bias;  // top-level shared table (official shared_pos); "" if the layout has none
};

const Naming kOfficial{"official", "blocks.0.attn.q.weight", "norm.weight", "pos_embedding.embedding.weight"};
const Naming kHf{"hf", "encoder.block.0.layer.0.SelfAttention.q.weight", "encoder.final_layer_norm.weight", ""};

std::string Naming::embedding(const std::function<bool(const std::string&)>& has) const {
  if (std::string(layout) == "official") return "token_embedding.weight";
  // HF ties encoder.embed_tokens to shared; a file may hold either or both. The encoder uses embed_tokens.
  return has("encoder.embed_tokens.weight") ? "encoder.embed_tokens.weight" : "shared.weight";
}

// Parts: norm1 q k v o rel norm2 gate fc1 fc2.
std::string Naming::layer(int64_t i, const char* part) const {
  const std::string p(part);
  if (std::string(layout) == "official") {
    const std::string b = "blocks." + std::to_string(i) + ".";
    if (p == "norm1" || p == "norm2") return b + p + ".weight";
    if (p == "q" || p == "k" || p == "v" || p == "o") return b + "attn." + p + ".weight";
    if (p == "rel") return b + "pos_embedding.embedding.weight";
    if (p == "gate") return b + "ffn.gate.0.weight";
    return b + "ffn." + p + ".weight";  // fc1, fc2
  }
  const std::string b = "encoder.block." + std::to_string(i) + ".layer.";
  if (p == "norm1") return b + "0.layer_norm.weight";
  if (p == "q" || p == "k" || p == "v" || p == "o") return b + "0.SelfAttention." + p + ".weight";
  if (p == "rel") return b + "0.SelfAttention.relative_attention_bias.weight";
  if (p == "norm2") return b + "1.layer_norm.weight";
  if (p == "gate") return b + "1.DenseReluDense.wi_0.weight";
  if (p == "fc1") return b + "1.DenseReluDense.wi_1.weight";
  return b + "1.DenseReluDense.wo.weight";  // fc2
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The layout and prefix: the shortest tensor name that ends with a layout's probe (a '.'-bounded suffix).
Result<std::pair<const Naming*, std::string>> detect_layout(const TensorFile& f, const std::string& source) {
  const Naming* best = nullptr;
  std::string best_prefix;
  for (const Naming* n : {&kOfficial, &kHf}) {
    const std::string probe(n->probe);
    for (const TensorEntry& e : f.entries()) {
      if (!ends_with(e.name, probe)) continue;
      std::string pre = e.name.substr(0, e.name.size() - probe.size());
      if (!pre.empty() && pre.back() != '.') continue;
      if (!best || pre.size() < best_prefix.size()) {
        best = n;
        best_prefix = pre;
      }
    }
  }
  if (!best) {
    std::string example = f.entries().empty() ? std::string("none") : "\"" + f.entries().front().name + "\"";
    return format_error(strfmt(
        "%s: not a UMT5/T5 text encoder checkpoint: no \"%s\" (official Wan T5) or \"%s\" (HF UMT5) among its %zu "
        "tensors (first: %s); pass models_t5_umt5-xxl-enc-bf16.pth or the diffusers text_encoder/ folder",
        source.c_str(), kOfficial.probe, kHf.probe, f.entries().size(), example.c_str()));
  }
  return std::make_pair(best, best_prefix);
}

// Converts any dtype to f32 in parallel chunks.
Result<Tensor> to_f32(const Tensor& t) {
  if (t.dtype() == DType::f32) return t;
  VDIT_ASSIGN(Tensor out, Tensor::create(DType::f32, t.shape()));
  const int64_t n = t.numel();
  const int64_t chunk = 1 << 16;
  const size_t esize = dtype_size(t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.raw());
  float* dst = out.f32();
  parallel_for((n + chunk - 1) / chunk, [&](int64_t c) {
    const int64_t b = c * chunk;
    const int64_t e = std::min(n, b + chunk);
    convert_to_f32(dst + b, src + static_cast<size_t>(b) * esize, t.dtype(), static_cast<size_t>(e - b));
  });
  return out;
}

class Reader {
 public:
  Reader(const TensorFile& f, std::string pre, std::string source)
      : f_(f), pre_(std::move(pre)), source_(std::move(source)) {}

  bool has(const std::string& name) const { return f_.find(pre_ + name) != nullptr; }
  const TensorEntry* entry(const std::string& name) const { return f_.find(pre_ + name); }

  // A tensor of `shape` as f32, or left bf16/f16 as stored when `allow_half`.
  Result<Tensor> get(const std::string& name, const Shape& shape, bool allow_half) const {
    const std::string full = pre_ + name;
    const TensorEntry* e = f_.find(full);
    if (!e) {
      return format_error(source_ + ": tensor \"" + full +
                          "\" is missing; the checkpoint is incomplete (a missing shard?) or not a UMT5 encoder");
    }
    if (e->shape != shape) {
      return format_error(source_ + ": tensor \"" + full + "\" has shape " + shape_str(e->shape) + ", expected " +
                          shape_str(shape) + " for this encoder");
    }
    if (!dtype_is_float(e->dtype)) {
      return format_error(source_ + ": tensor \"" + full + "\" has dtype " + dtype_name(e->dtype) +
                          ", expected a float type");
    }
    VDIT_ASSIGN(Tensor t, f_.tensor(full));
    const bool keep = allow_half && (t.dtype() == DType::bf16 || t.dtype() == DType::f16);
    if (keep || t.dtype() == DType::f32) return t;
    return to_f32(t);
  }

 private:
  const TensorFile& f_;
  std::string pre_;
  std::string source_;
};

Status shape_error(const std::string& source, const std::string& name, const TensorEntry* e, const char* expected) {
  return format_error(source + ": tensor \"" + name + "\" has shape " + shape_str(e->shape) + ", expected " + expected);
}

}  // namespace

Result<T5Weights> load_t5_weights(const TensorFile& f, const std::map<std::string, std::string>& settings,
                                  const std::string& source, const T5LoadOptions& options) {
  VDIT_ASSIGN(auto detected, detect_layout(f, source));
  const Naming& nm = *detected.first;
  const std::string& pre = detected.second;
  Reader rd(f, pre, source);
  const bool half = !options.weights_f32;  // matrices may stay bf16/f16
  T5Weights w;
  w.layout = nm.layout;
  w.source = source;
  T5Config& c = w.config;

  // Sizes from shapes.
  const std::string emb_name = nm.embedding([&](const std::string& n) { return rd.has(n); });
  const TensorEntry* emb = rd.entry(emb_name);
  if (!emb) return format_error(source + ": embedding \"" + pre + emb_name + "\" is missing");
  if (emb->shape.size() != 2) return shape_error(source, pre + emb_name, emb, "[vocab, dim]");
  c.vocab = emb->shape[0];
  c.dim = emb->shape[1];
  const TensorEntry* q0 = rd.entry(nm.layer(0, "q"));
  if (q0->shape.size() != 2 || q0->shape[1] != c.dim)
    return shape_error(source, pre + nm.layer(0, "q"), q0, "[dim_attn, dim]");
  c.dim_attn = q0->shape[0];
  const TensorEntry* g0 = rd.entry(nm.layer(0, "gate"));
  if (!g0)
    return format_error(source + ": tensor \"" + pre + nm.layer(0, "gate") + "\" is missing (gated FFN expected)");
  if (g0->shape.size() != 2 || g0->shape[1] != c.dim)
    return shape_error(source, pre + nm.layer(0, "gate"), g0, "[dim_ffn, dim]");
  c.dim_ffn = g0->shape[0];
  while (rd.has(nm.layer(c.num_layers, "q"))) ++c.num_layers;

  // Relative-bias tables: one per layer (UMT5), or one shared (official shared_pos; HF T5: block 0 only).
  const TensorEntry* rel0 = rd.entry(nm.layer(0, "rel"));
  const bool top_shared = nm.shared_bias[0] != '\0' && rd.has(nm.shared_bias);
  const TensorEntry* table = top_shared ? rd.entry(nm.shared_bias) : rel0;
  if (!table) return format_error(source + ": no relative attention bias table (\"" + pre + nm.layer(0, "rel") + "\")");
  if (table->shape.size() != 2) return shape_error(source, pre + nm.layer(0, "rel"), table, "[num_buckets, num_heads]");
  c.num_buckets = table->shape[0];
  c.num_heads = table->shape[1];
  int64_t with_table = 0;
  for (int64_t i = 0; i < c.num_layers; ++i) with_table += rd.has(nm.layer(i, "rel")) ? 1 : 0;
  if (top_shared && with_table > 0) {
    return format_error(source +
                        ": has both a shared relative bias table and per-layer ones; cannot tell which to use");
  }
  c.shared_pos = top_shared || (with_table == 1 && rel0 != nullptr && c.num_layers > 1);
  if (!top_shared && !c.shared_pos && with_table != c.num_layers) {
    return format_error(strfmt("%s: %lld of %lld layers have a relative bias table; UMT5 needs one per layer",
                               source.c_str(), static_cast<long long>(with_table),
                               static_cast<long long>(c.num_layers)));
  }

  std::map<std::string, std::string> all = f.metadata();
  for (const auto& [k, v] : settings) all[k] = v;
  VDIT_TRY(apply_t5_settings(c, all, source));

  // Every tensor, shape-checked.
  const int64_t D = c.dim, DA = c.dim_attn, F = c.dim_ffn, NB = c.num_buckets, NH = c.num_heads;
  // The embedding always stays bf16/f16 if stored so: only the looked-up rows are converted.
  VDIT_ASSIGN(w.token_embedding, rd.get(emb_name, {c.vocab, D}, /*allow_half=*/true));
  if (c.shared_pos) {
    VDIT_ASSIGN(w.shared_rel_bias, rd.get(top_shared ? nm.shared_bias : nm.layer(0, "rel"), {NB, NH}, false));
  }
  w.layers.resize(static_cast<size_t>(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    T5LayerWeights& l = w.layers[static_cast<size_t>(i)];
    VDIT_ASSIGN(l.norm1, rd.get(nm.layer(i, "norm1"), {D}, false));
    VDIT_ASSIGN(l.q, rd.get(nm.layer(i, "q"), {DA, D}, half));
    VDIT_ASSIGN(l.k, rd.get(nm.layer(i, "k"), {DA, D}, half));
    VDIT_ASSIGN(l.v, rd.get(nm.layer(i, "v"), {DA, D}, half));
    VDIT_ASSIGN(l.o, rd.get(nm.layer(i, "o"), {D, DA}, half));
    if (!c.shared_pos) {
      VDIT_ASSIGN(l.rel_bias, rd.get(nm.layer(i, "rel"), {NB, NH}, false));
    }
    VDIT_ASSIGN(l.norm2, rd.get(nm.layer(i, "norm2"), {D}, false));
    VDIT_ASSIGN(l.gate, rd.get(nm.layer(i, "gate"), {F, D}, half));
    VDIT_ASSIGN(l.fc1, rd.get(nm.layer(i, "fc1"), {F, D}, half));
    VDIT_ASSIGN(l.fc2, rd.get(nm.layer(i, "fc2"), {D, F}, half));
  }
  VDIT_ASSIGN(w.final_norm, rd.get(nm.final_norm, {D}, false));
  VDIT_LOG_INFO("T5 encoder from %s (%s names%s): %s", source.c_str(), nm.layout,
                pre.empty() ? "" : (", prefix \"" + pre + "\"").c_str(), c.summary().c_str());
  return w;
}

Result<T5Weights> load_t5_weights(const std::string& path, const T5LoadOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found(path + ": no such file or folder");
  std::string file = path;
  std::string config_json;
  if (fs::is_directory(path, ec)) {
    file.clear();
    const fs::path dir(path);
    for (const char* rel : {"model.safetensors.index.json", "model.safetensors", "text_encoder",
                            "models_t5_umt5-xxl-enc-bf16.pth", "pytorch_model.bin"}) {
      if (fs::exists(dir / rel, ec)) {
        if (std::string(rel) == "text_encoder") return load_t5_weights((dir / rel).string(), options);
        file = (dir / rel).string();
        break;
      }
    }
    if (file.empty()) {
      return not_found(path +
                       ": folder has no model.safetensors(.index.json), text_encoder/ or "
                       "models_t5_umt5-xxl-enc-bf16.pth; pass the weight file itself");
    }
  }
  const fs::path cfg = fs::path(file).parent_path() / "config.json";
  if (fs::is_regular_file(cfg, ec)) config_json = cfg.string();

  VDIT_ASSIGN(std::unique_ptr<TensorFile> tf, open_tensor_file(file));
  std::map<std::string, std::string> settings;
  if (!config_json.empty()) {
    // Only a T5 config applies: a Wan checkpoint root also holds the DiT's config.json (model_type "t2v").
    VDIT_ASSIGN(settings, read_hf_config_json(config_json));
    auto type = settings.find("model_type");
    const bool is_t5 =
        settings.count("d_model") > 0 || (type != settings.end() && type->second.find("t5") != std::string::npos);
    if (!is_t5) settings.clear();
  }
  return load_t5_weights(*tf, settings, file, options);
}

}  // namespace vdit::text
