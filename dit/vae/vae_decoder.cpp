// VaeDecoder: loading (file -> config -> layer table -> weights), the streaming driver that pushes each
// frame depth-first through the layers (so at most a few frames per level are alive), the exact tiled
// variant, and the uint8 conversion.
#include "dit/vae/vae_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dit/core/log.h"
#include "dit/vae/vae_weights.h"
#include "io/tensor_file.h"

namespace vdit::vae {
namespace {

using FrameSinkFn = std::function<Status(Tensor)>;

// Runs layers [begin, end) on a stream of frames, depth-first: every frame a layer emits goes through
// the remaining layers before the next one is computed. Owns one LayerState per layer.
class LayerRunner {
 public:
  LayerRunner(const std::vector<VaeLayer>& layers, size_t begin, size_t end, const StageCallback* on_stage,
              FrameSinkFn sink)
      : layers_(layers), begin_(begin), end_(end), on_stage_(on_stage), sink_(std::move(sink)),
        states_(end - begin), counters_(end - begin, 0) {}

  Status feed(Tensor x) { return feed_at(begin_, std::move(x)); }

 private:
  Status feed_at(size_t i, Tensor x) {
    if (i == end_) return sink_(std::move(x));
    std::vector<Tensor> outs;
    VDIT_TRY(layer_forward(&outs, layers_[i], &states_[i - begin_], x));
    x = Tensor();  // drop our reference early; histories keep what they need
    for (Tensor& y : outs) {
      if (on_stage_ && *on_stage_) (*on_stage_)(layers_[i].spec.name, counters_[i - begin_], y);
      ++counters_[i - begin_];
      VDIT_TRY(feed_at(i + 1, std::move(y)));
    }
    return Status::ok();
  }

  const std::vector<VaeLayer>& layers_;
  size_t begin_, end_;
  const StageCallback* on_stage_;
  FrameSinkFn sink_;
  std::vector<LayerState> states_;
  std::vector<int64_t> counters_;
};

// z as f32 [Z, F, H, W] (a leading batch of 1 is dropped), checked.
Result<Tensor> checked_latent(const Tensor& z, int64_t z_dim) {
  Tensor t = z;
  if (t.rank() == 5 && t.dim(0) == 1) { VDIT_ASSIGN(t, t.reshape({t.dim(1), t.dim(2), t.dim(3), t.dim(4)})); }
  if (t.rank() != 4 || t.dim(0) != z_dim || t.dim(1) < 1 || t.dim(2) < 1 || t.dim(3) < 1) {
    return invalid_argument(strfmt("VAE decode: latent has shape %s; expected [%lld, F, H, W] (normalized latent, "
                                   "F >= 1 frames, H x W = video size / 8)",
                                   shape_str(z.shape()).c_str(), static_cast<long long>(z_dim)));
  }
  if (!dtype_is_float(t.dtype())) {
    return invalid_argument(strfmt("VAE decode: latent dtype is %s; expected a float type", dtype_name(t.dtype())));
  }
  VDIT_ASSIGN(t, t.to(DType::f32));
  const float* d = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (!std::isfinite(d[i])) {
      return invalid_argument(strfmt("VAE decode: latent value %g at flat index %lld is not finite; the sampler "
                                     "diverged or the input file is corrupt",
                                     d[i], static_cast<long long>(i)));
    }
  }
  return t;
}

// Latent frame f of z [Z, F, H, W], de-normalized as the official `z / (1/std) + mean` (same rounding).
Result<Tensor> latent_frame(const Tensor& z, int64_t f, const VaeConfig& cfg) {
  const int64_t Z = z.dim(0), F = z.dim(1), HW = z.dim(2) * z.dim(3);
  VDIT_ASSIGN(Tensor x, Tensor::create(DType::f32, {Z, z.dim(2), z.dim(3)}));  // [Z, H, W]
  for (int64_t c = 0; c < Z; ++c) {
    const float inv_std = 1.0f / cfg.latents_std[static_cast<size_t>(c)];
    const float mean = cfg.latents_mean[static_cast<size_t>(c)];
    const float* src = z.f32() + (c * F + f) * HW;
    float* dst = x.f32() + c * HW;
    for (int64_t i = 0; i < HW; ++i) dst[i] = src[i] / inv_std + mean;
  }
  return x;
}

void clamp_unit(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = std::min(1.0f, std::max(-1.0f, src[i]));
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": cannot open the VAE config file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) return io_error(path + ": read failed");
  return ss.str();
}

}  // namespace

Result<VaeDecoder> VaeDecoder::load(const std::string& path, const VaeLoadOptions& options) {
  VDIT_ASSIGN(auto file, open_tensor_file(path));
  std::string cfg, cfg_name;
  if (!options.config_path.empty()) {
    VDIT_ASSIGN(cfg, read_text_file(options.config_path));
    cfg_name = options.config_path;
  } else {
    const size_t slash = path.find_last_of('/');
    const std::string sibling = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "config.json";
    std::ifstream probe(sibling);
    if (probe) {
      auto text = read_text_file(sibling);
      if (text) {
        auto j = nlohmann::json::parse(*text, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.value("_class_name", "") == "AutoencoderKLWan") {
          cfg = *text;
          cfg_name = sibling;
        } else {
          VDIT_LOG_DEBUG("VAE: ignoring %s (not an AutoencoderKLWan config)", sibling.c_str());
        }
      }
    }
  }
  auto dec = load(*file, cfg, cfg_name);
  if (!dec) return dec.status().with_context("loading VAE " + path);
  return dec;
}

Result<VaeDecoder> VaeDecoder::load(const TensorFile& file, const std::string& config_json,
                                    const std::string& config_name) {
  VDIT_ASSIGN(VaeNameLayout layout, detect_vae_layout(file));
  VaeConfigSources src;
  src.weights_name = file.path();
  src.config_json = config_json;
  src.config_json_name = config_name.empty() ? "VAE config JSON" : config_name;
  src.metadata = &file.metadata();
  infer_vae_sizes(file, layout, &src.inferred_dim, &src.inferred_z_dim);
  VaeDecoder d;
  VDIT_ASSIGN(d.config_, resolve_vae_config(src));
  VDIT_ASSIGN(std::vector<LayerSpec> specs, decoder_layers(d.config_));
  VDIT_ASSIGN(d.layers_, load_vae_layers(file, specs, layout, d.config_.to_string()));
  d.first_local_ = first_local_layer(specs);
  d.spatial_factor_ = spatial_upsample_factor(specs);
  d.temporal_ups_ = temporal_upsamples(specs);
  d.halo_ = tiling_halo(specs, d.first_local_);
  VDIT_LOG_INFO("VAE decoder %s (%s names): %s", file.path().c_str(), vae_name_layout_name(layout),
                d.config_.to_string().c_str());
  return d;
}

int64_t VaeDecoder::output_frames(int64_t latent_frames) const {
  return latent_frames <= 0 ? 0 : 1 + (latent_frames - 1) * (int64_t{1} << temporal_ups_);
}

Status VaeDecoder::decode(const Tensor& z, const FrameCallback& on_frame, const VaeDecodeOptions& options) const {
  if (!on_frame) return invalid_argument("VAE decode: no frame callback given");
  if (options.tile < 0) return invalid_argument(strfmt("VAE decode: tile=%lld must be >= 0 (0 = untiled)",
                                                       static_cast<long long>(options.tile)));
  VDIT_ASSIGN(Tensor zf, checked_latent(z, config_.z_dim));
  return options.tile > 0 ? decode_tiled(zf, on_frame, options) : decode_untiled(zf, on_frame, options);
}

Status VaeDecoder::decode_untiled(const Tensor& z, const FrameCallback& on_frame,
                                  const VaeDecodeOptions& options) const {
  int64_t t = 0;
  LayerRunner run(layers_, 0, layers_.size(), &options.on_stage, [&](Tensor y) -> Status {
    // A new tensor, so a stage observer holding the pre-clamp head output never sees it change.
    VDIT_ASSIGN(Tensor frame, Tensor::create(DType::f32, y.shape()));  // [3, 8H, 8W]
    clamp_unit(frame.f32(), y.f32(), y.numel());
    return on_frame(t++, frame);
  });
  for (int64_t f = 0; f < z.dim(1); ++f) {
    VDIT_ASSIGN(Tensor x, latent_frame(z, f, config_));  // [Z, H, W]
    VDIT_TRY(run.feed(std::move(x)));
  }
  return Status::ok();
}

Status VaeDecoder::decode_tiled(const Tensor& z, const FrameCallback& on_frame, const VaeDecodeOptions& options) const {
  const int64_t F = z.dim(1), h = z.dim(2), w = z.dim(3), s = spatial_factor_;
  const int64_t T = output_frames(F), tile = options.tile;

  // Untiled part: up to the end of the middle block, at the latent grid, kept for every frame.
  std::vector<Tensor> mid;  // F x [C0, h, w]
  {
    LayerRunner run(layers_, 0, first_local_, &options.on_stage, [&](Tensor y) -> Status {
      mid.push_back(std::move(y));
      return Status::ok();
    });
    for (int64_t f = 0; f < F; ++f) {
      VDIT_ASSIGN(Tensor x, latent_frame(z, f, config_));
      VDIT_TRY(run.feed(std::move(x)));
    }
  }
  std::vector<Tensor> video(static_cast<size_t>(T));  // T x [3, h·s, w·s]
  for (auto& v : video) { VDIT_ASSIGN(v, Tensor::create(DType::f32, {3, h * s, w * s})); }

  const int64_t C0 = mid.empty() ? 0 : mid[0].dim(0);
  for (int64_t iy0 = 0; iy0 < h; iy0 += tile) {
    for (int64_t ix0 = 0; ix0 < w; ix0 += tile) {
      const int64_t iy1 = std::min(h, iy0 + tile), ix1 = std::min(w, ix0 + tile);
      const int64_t cy0 = std::max<int64_t>(0, iy0 - halo_), cy1 = std::min(h, iy1 + halo_);
      const int64_t cx0 = std::max<int64_t>(0, ix0 - halo_), cx1 = std::min(w, ix1 + halo_);
      const int64_t cw = cx1 - cx0, ch = cy1 - cy0;
      int64_t t = 0;
      LayerRunner run(layers_, first_local_, layers_.size(), nullptr, [&](Tensor y) -> Status {
        // y [3, ch·s, cw·s]: keep the interior rows/cols, clamped, in the video frame.
        if (t >= T) return internal_error("VAE tiled decode produced more frames than expected");
        float* dst = video[static_cast<size_t>(t++)].f32();
        for (int64_t c = 0; c < 3; ++c) {
          for (int64_t yy = iy0 * s; yy < iy1 * s; ++yy) {
            const float* src = y.f32() + (c * ch * s + (yy - cy0 * s)) * cw * s + (ix0 - cx0) * s;
            clamp_unit(dst + (c * h * s + yy) * w * s + ix0 * s, src, (ix1 - ix0) * s);
          }
        }
        return Status::ok();
      });
      for (int64_t f = 0; f < F; ++f) {
        VDIT_ASSIGN(Tensor crop, Tensor::create(DType::f32, {C0, ch, cw}));  // [C0, ch, cw]
        const float* src = mid[static_cast<size_t>(f)].f32();
        float* dst = crop.f32();
        parallel_work(C0, ch * cw, [&](int64_t c) {
          for (int64_t yy = 0; yy < ch; ++yy) {
            std::memcpy(dst + (c * ch + yy) * cw, src + (c * h + cy0 + yy) * w + cx0,
                        static_cast<size_t>(cw) * sizeof(float));
          }
        });
        VDIT_TRY(run.feed(std::move(crop)));
      }
      if (t != T) return internal_error(strfmt("VAE tiled decode: a tile produced %lld of %lld frames",
                                               static_cast<long long>(t), static_cast<long long>(T)));
    }
  }
  mid.clear();
  for (int64_t t = 0; t < T; ++t) {
    VDIT_TRY(on_frame(t, video[static_cast<size_t>(t)]));
    video[static_cast<size_t>(t)] = Tensor();
  }
  return Status::ok();
}

namespace {
// torchvision make_grid(normalize, value_range=(-1, 1)): clamp, (x - (-1)) / 2; then ·255 and a truncating cast.
inline uint8_t to_u8(float x) {
  x = std::min(1.0f, std::max(-1.0f, x));
  return static_cast<uint8_t>((x + 1.0f) / 2.0f * 255.0f);
}
}  // namespace

void video_to_uint8(uint8_t* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = to_u8(src[i]);
}

void frame_to_rgb8(uint8_t* dst, const float* frame, int64_t H, int64_t W) {
  const int64_t plane = H * W;
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t c = 0; c < 3; ++c) dst[i * 3 + c] = to_u8(frame[c * plane + i]);
  }
}

}  // namespace vdit::vae
