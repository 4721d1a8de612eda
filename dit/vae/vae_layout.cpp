// Builds the decoder layer list of W `Decoder3d.__init__` for any config: dims = dim·[m[-1]] + dim·m[::-1];
// stage i has num_res_blocks+1 residual blocks (stages 1..3 read half of the previous width) and, except
// the last stage, a resample (upsample3d where the reversed temporal flag is set).
#include "dit/vae/vae_layout.h"

#include <cmath>

namespace vdit::vae {
namespace {

Shape conv3(int64_t co, int64_t ci) { return {co, ci, 3, 3, 3}; }

void add(LayerSpec* l, const std::string& official_suffix, const std::string& diffusers_suffix, Shape shape) {
  l->tensors.push_back({l->name + "." + official_suffix, l->diffusers + "." + diffusers_suffix, std::move(shape)});
}

LayerSpec residual(const std::string& name, const std::string& diffusers, int64_t in, int64_t out, int64_t scale) {
  LayerSpec l{LayerKind::residual, in, out, name, diffusers, {}, scale, 2};
  add(&l, "residual.0.gamma", "norm1.gamma", {in, 1, 1, 1});
  add(&l, "residual.2.weight", "conv1.weight", conv3(out, in));
  add(&l, "residual.2.bias", "conv1.bias", {out});
  add(&l, "residual.3.gamma", "norm2.gamma", {out, 1, 1, 1});
  add(&l, "residual.6.weight", "conv2.weight", conv3(out, out));
  add(&l, "residual.6.bias", "conv2.bias", {out});
  if (in != out) {
    add(&l, "shortcut.weight", "conv_shortcut.weight", {out, in, 1, 1, 1});
    add(&l, "shortcut.bias", "conv_shortcut.bias", {out});
  }
  return l;
}

}  // namespace

const char* layer_kind_name(LayerKind kind) {
  switch (kind) {
    case LayerKind::conv_1x1: return "conv_1x1";
    case LayerKind::causal_conv: return "causal_conv";
    case LayerKind::residual: return "residual";
    case LayerKind::attention: return "attention";
    case LayerKind::upsample2d: return "upsample2d";
    case LayerKind::upsample3d: return "upsample3d";
    case LayerKind::head: return "head";
  }
  return "?";
}

Result<std::vector<LayerSpec>> decoder_layers(const VaeConfig& c) {
  VDIT_TRY(validate_vae_config(c));
  const size_t stages = c.dim_mult.size();
  std::vector<int64_t> dims = {c.dim * c.dim_mult.back()};
  for (size_t i = stages; i-- > 0;) dims.push_back(c.dim * c.dim_mult[i]);
  std::vector<bool> temporal_up(c.temperal_downsample.rbegin(), c.temperal_downsample.rend());

  std::vector<LayerSpec> L;
  const int64_t z = c.z_dim, d0 = dims[0];
  {
    LayerSpec l{LayerKind::conv_1x1, z, z, "conv2", "post_quant_conv", {}, 1, 0};
    add(&l, "weight", "weight", {z, z, 1, 1, 1});
    add(&l, "bias", "bias", {z});
    L.push_back(std::move(l));
  }
  {
    LayerSpec l{LayerKind::causal_conv, z, d0, "decoder.conv1", "decoder.conv_in", {}, 1, 1};
    add(&l, "weight", "weight", conv3(d0, z));
    add(&l, "bias", "bias", {d0});
    L.push_back(std::move(l));
  }
  L.push_back(residual("decoder.middle.0", "decoder.mid_block.resnets.0", d0, d0, 1));
  {
    LayerSpec l{LayerKind::attention, d0, d0, "decoder.middle.1", "decoder.mid_block.attentions.0", {}, 1, 0};
    add(&l, "norm.gamma", "norm.gamma", {d0, 1, 1});
    add(&l, "to_qkv.weight", "to_qkv.weight", {3 * d0, d0, 1, 1});
    add(&l, "to_qkv.bias", "to_qkv.bias", {3 * d0});
    add(&l, "proj.weight", "proj.weight", {d0, d0, 1, 1});
    add(&l, "proj.bias", "proj.bias", {d0});
    L.push_back(std::move(l));
  }
  L.push_back(residual("decoder.middle.2", "decoder.mid_block.resnets.1", d0, d0, 1));

  int index = 0;
  int64_t scale = 1;
  int64_t out_dim = d0;
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    int64_t in_dim = dims[i];
    out_dim = dims[i + 1];
    // W Decoder3d: `if i == 1 or i == 2 or i == 3: in_dim = in_dim // 2` (the resample halved it).
    if (i >= 1 && i <= 3) in_dim /= 2;
    for (int64_t r = 0; r <= c.num_res_blocks; ++r) {
      L.push_back(residual(strfmt("decoder.upsamples.%d", index++),
                           strfmt("decoder.up_blocks.%zu.resnets.%lld", i, static_cast<long long>(r)), in_dim,
                           out_dim, scale));
      in_dim = out_dim;
    }
    if (i != stages - 1) {
      const bool t = temporal_up[i];
      scale *= 2;
      LayerSpec l{t ? LayerKind::upsample3d : LayerKind::upsample2d, out_dim, out_dim / 2,
                  strfmt("decoder.upsamples.%d", index++), strfmt("decoder.up_blocks.%zu.upsamplers.0", i), {},
                  scale, 1};
      add(&l, "resample.1.weight", "resample.1.weight", {out_dim / 2, out_dim, 3, 3});
      add(&l, "resample.1.bias", "resample.1.bias", {out_dim / 2});
      if (t) {
        add(&l, "time_conv.weight", "time_conv.weight", {2 * out_dim, out_dim, 3, 1, 1});
        add(&l, "time_conv.bias", "time_conv.bias", {2 * out_dim});
      }
      L.push_back(std::move(l));
    }
  }
  {
    LayerSpec l{LayerKind::head, out_dim, 3, "decoder.head", "decoder", {}, scale, 1};
    l.tensors.push_back({"decoder.head.0.gamma", "decoder.norm_out.gamma", {out_dim, 1, 1, 1}});
    l.tensors.push_back({"decoder.head.2.weight", "decoder.conv_out.weight", conv3(3, out_dim)});
    l.tensors.push_back({"decoder.head.2.bias", "decoder.conv_out.bias", {3}});
    L.push_back(std::move(l));
  }
  return L;
}

size_t first_local_layer(const std::vector<LayerSpec>& layers) {
  // The first layer after the last decoder.middle.* one (the middle block holds the frame-global attention).
  size_t first = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].name.rfind("decoder.middle.", 0) == 0) first = i + 1;
  }
  return first;
}

int temporal_upsamples(const std::vector<LayerSpec>& layers) {
  int n = 0;
  for (const auto& l : layers) n += l.kind == LayerKind::upsample3d;
  return n;
}

int64_t spatial_upsample_factor(const std::vector<LayerSpec>& layers) {
  int64_t f = 1;
  for (const auto& l : layers) {
    if (l.kind == LayerKind::upsample2d || l.kind == LayerKind::upsample3d) f *= 2;
  }
  return f;
}

int64_t tiling_halo(const std::vector<LayerSpec>& layers, size_t first) {
  double reach = 0;
  for (size_t i = first; i < layers.size(); ++i) {
    reach += static_cast<double>(layers[i].spatial_convs) / static_cast<double>(layers[i].scale);
  }
  return static_cast<int64_t>(std::ceil(reach - 1e-9));
}

}  // namespace vdit::vae
