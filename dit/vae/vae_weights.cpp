// Decoder weight loading by the layout table of vae_layout.h: look up each tensor under the file's
// naming, check its shape, convert to f32 and into the layer's GEMM layout.
#include "dit/vae/vae_weights.h"

#include <set>

namespace vdit::vae {
namespace {

bool is_decoder_side(const std::string& name, VaeNameLayout layout) {
  if (name.rfind("decoder.", 0) == 0) return true;
  return layout == VaeNameLayout::official ? name.rfind("conv2.", 0) == 0 : name.rfind("post_quant_conv.", 0) == 0;
}

class LayerLoader {
 public:
  LayerLoader(const TensorFile& f, VaeNameLayout layout, const std::string& config_str)
      : f_(f), layout_(layout), config_(config_str) {}

  // The tensor for `spec`'s tensor ending in `official_suffix`, checked against its expected shape.
  Result<Tensor> get(const LayerSpec& spec, const std::string& official_suffix) {
    const std::string official = spec.name + "." + official_suffix;
    for (const TensorSpec& t : spec.tensors) {
      if (t.name != official) continue;
      const std::string& name = layout_ == VaeNameLayout::official ? t.name : t.diffusers_name;
      used_.insert(name);
      const TensorEntry* e = f_.find(name);
      if (!e) {
        return not_found(strfmt("%s: missing VAE decoder tensor \"%s\" (%s layout) expected by config %s; the "
                                "file is incomplete or stores a different config (put dim, dim_mult, "
                                "num_res_blocks, temperal_downsample in its metadata or pass a config JSON)",
                                f_.path().c_str(), name.c_str(), vae_name_layout_name(layout_), config_.c_str()));
      }
      if (e->shape != t.shape) {
        return format_error(strfmt("%s: tensor \"%s\" has shape %s but config %s expects %s; if this VAE uses "
                                   "another config, store it in the metadata or pass a config JSON",
                                   f_.path().c_str(), name.c_str(), shape_str(e->shape).c_str(), config_.c_str(),
                                   shape_str(t.shape).c_str()));
      }
      if (!dtype_is_float(e->dtype)) {
        return format_error(strfmt("%s: tensor \"%s\" is %s; VAE weights must be f32, bf16 or f16", f_.path().c_str(),
                                   name.c_str(), dtype_name(e->dtype)));
      }
      return f_.tensor(name);
    }
    return internal_error("VAE layout has no tensor " + official);
  }

  Result<ConvWeights> conv(const LayerSpec& spec, const std::string& official_prefix) {
    VDIT_ASSIGN(Tensor w, get(spec, official_prefix + ".weight"));
    VDIT_ASSIGN(Tensor b, get(spec, official_prefix + ".bias"));
    return make_conv_weights(w, b, spec.name + "." + official_prefix);
  }

  // A gamma [C, 1, 1(, 1)] or a [Co, Ci, 1, 1] 1x1 conv weight as a flat f32 matrix.
  Result<Tensor> flat(const LayerSpec& spec, const std::string& official_suffix, Shape shape) {
    VDIT_ASSIGN(Tensor t, get(spec, official_suffix));
    VDIT_ASSIGN(Tensor f, t.to(DType::f32));
    if (f.raw() == t.raw()) { VDIT_ASSIGN(f, t.clone()); }
    return f.reshape(std::move(shape));
  }

  Status check_unused() const {
    for (const TensorEntry& e : f_.entries()) {
      if (is_decoder_side(e.name, layout_) && !used_.count(e.name)) {
        return format_error(strfmt("%s: decoder tensor \"%s\" %s is not part of config %s; the file stores a "
                                   "different decoder config (put it in the metadata or pass a config JSON)",
                                   f_.path().c_str(), e.name.c_str(), shape_str(e.shape).c_str(), config_.c_str()));
      }
    }
    return Status::ok();
  }

 private:
  const TensorFile& f_;
  VaeNameLayout layout_;
  std::string config_;
  std::set<std::string> used_;
};

}  // namespace

const char* vae_name_layout_name(VaeNameLayout layout) {
  return layout == VaeNameLayout::official ? "official" : "diffusers";
}

Result<VaeNameLayout> detect_vae_layout(const TensorFile& file) {
  if (file.find("decoder.conv1.weight")) return VaeNameLayout::official;
  if (file.find("decoder.conv_in.weight")) return VaeNameLayout::diffusers;
  return not_found(file.path() + ": no \"decoder.conv1.weight\" (official) or \"decoder.conv_in.weight\" "
                   "(diffusers) tensor; this is not a Wan VAE decoder checkpoint");
}

void infer_vae_sizes(const TensorFile& file, VaeNameLayout layout, int64_t* dim, int64_t* z_dim) {
  const bool off = layout == VaeNameLayout::official;
  const TensorEntry* head = file.find(off ? "decoder.head.2.weight" : "decoder.conv_out.weight");
  const TensorEntry* c2 = file.find(off ? "conv2.weight" : "post_quant_conv.weight");
  *dim = head && head->shape.size() == 5 ? head->shape[1] : 0;
  *z_dim = c2 && c2->shape.size() == 5 ? c2->shape[0] : 0;
}

Result<std::vector<VaeLayer>> load_vae_layers(const TensorFile& file, const std::vector<LayerSpec>& specs,
                                              VaeNameLayout layout, const std::string& config_str) {
  LayerLoader ld(file, layout, config_str);
  std::vector<VaeLayer> layers;
  for (const LayerSpec& s : specs) {
    VaeLayer l;
    l.spec = s;
    const int64_t ci = s.in_channels, co = s.out_channels;
    switch (s.kind) {
      case LayerKind::conv_1x1:
      case LayerKind::causal_conv: {
        VDIT_ASSIGN(Tensor w, ld.get(s, "weight"));
        VDIT_ASSIGN(Tensor b, ld.get(s, "bias"));
        VDIT_ASSIGN(l.conv, make_conv_weights(w, b, s.name));
        break;
      }
      case LayerKind::residual: {
        VDIT_ASSIGN(l.gamma1, ld.flat(s, "residual.0.gamma", {ci}));
        VDIT_ASSIGN(l.conv, ld.conv(s, "residual.2"));
        VDIT_ASSIGN(l.gamma2, ld.flat(s, "residual.3.gamma", {co}));
        VDIT_ASSIGN(l.conv2, ld.conv(s, "residual.6"));
        if (ci != co) { VDIT_ASSIGN(l.shortcut, ld.conv(s, "shortcut")); }
        break;
      }
      case LayerKind::attention: {
        VDIT_ASSIGN(l.gamma1, ld.flat(s, "norm.gamma", {ci}));
        VDIT_ASSIGN(l.qkv_w, ld.flat(s, "to_qkv.weight", {3 * ci, ci}));
        VDIT_ASSIGN(l.qkv_b, ld.flat(s, "to_qkv.bias", {3 * ci}));
        VDIT_ASSIGN(l.proj_w, ld.flat(s, "proj.weight", {ci, ci}));
        VDIT_ASSIGN(l.proj_b, ld.flat(s, "proj.bias", {ci}));
        break;
      }
      case LayerKind::upsample2d:
      case LayerKind::upsample3d: {
        if (s.kind == LayerKind::upsample3d) { VDIT_ASSIGN(l.time_conv, ld.conv(s, "time_conv")); }
        VDIT_ASSIGN(l.conv, ld.conv(s, "resample.1"));
        break;
      }
      case LayerKind::head: {
        // The head's tensors are named "decoder.head.0.gamma" / "decoder.head.2.*" (spec.name = decoder.head).
        VDIT_ASSIGN(l.gamma1, ld.flat(s, "0.gamma", {ci}));
        VDIT_ASSIGN(l.conv, ld.conv(s, "2"));
        break;
      }
    }
    layers.push_back(std::move(l));
  }
  VDIT_TRY(ld.check_unused());
  return layers;
}

}  // namespace vdit::vae
