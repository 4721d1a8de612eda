// Helpers for the VAE tests and the VAE benchmark: an in-memory TensorFile, seeded random decoder
// weights for any config (official or diffusers names, any float dtype), renaming/retyping an existing
// file, and collecting decoded frames and stage outputs into [C, T, H, W] tensors.
#pragma once

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dit/vae/vae_decoder.h"
#include "dit/vae/vae_layout.h"
#include "io/tensor_file.h"

namespace vdit::vae_test {
using namespace vdit::vae;

class MemoryTensorFile : public TensorFile {
 public:
  explicit MemoryTensorFile(std::string name) { path_ = std::move(name), format_ = "memory"; }
  void add(const std::string& name, const Tensor& t) {
    keep_alive_.push_back(std::make_shared<Tensor>(t));
    TensorEntry e;
    e.name = name;
    e.dtype = t.dtype();
    e.shape = t.shape();
    e.data = static_cast<const uint8_t*>(t.raw());
    e.nbytes = t.nbytes();
    e.source = path_;
    add_entry(std::move(e));
  }
  void set_metadata(const std::string& k, const std::string& v) { metadata_[k] = v; }
  void clear_metadata() { metadata_.clear(); }
};

inline Tensor to_dtype(const Tensor& t, DType d) { return t.to(d).value(); }

// Random decoder weights for `config`, initialized like the golden recipe (wan.md §7.3): conv weights
// N(0, 1/fan_in), biases 0.05·N, norm gammas 1 + 0.1·N.
inline std::unique_ptr<MemoryTensorFile> random_vae_file(const VaeConfig& config, uint32_t seed,
                                                         bool diffusers = false, DType dtype = DType::f32) {
  auto f = std::make_unique<MemoryTensorFile>("random-vae");
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01(0.f, 1.f);
  auto layers = decoder_layers(config).value();
  for (const auto& l : layers) {
    for (const auto& t : l.tensors) {
      Tensor x = Tensor::create(DType::f32, t.shape).value();
      float* d = x.f32();
      const bool gamma = t.name.find("gamma") != std::string::npos;
      const bool bias = t.shape.size() == 1;
      int64_t fan_in = 1;
      for (size_t i = 1; i < t.shape.size(); ++i) fan_in *= t.shape[i];
      const float sd = gamma ? 0.1f : bias ? 0.05f : 1.0f / std::sqrt(static_cast<float>(fan_in));
      for (int64_t i = 0; i < x.numel(); ++i) d[i] = (gamma ? 1.f : 0.f) + sd * n01(rng);
      f->add(diffusers ? t.diffusers_name : t.name, to_dtype(x, dtype));
    }
  }
  std::string dm = "[";
  for (size_t i = 0; i < config.dim_mult.size(); ++i) dm += (i ? ", " : "") + std::to_string(config.dim_mult[i]);
  f->set_metadata("dim", std::to_string(config.dim));
  f->set_metadata("z_dim", std::to_string(config.z_dim));
  f->set_metadata("dim_mult", dm + "]");
  return f;
}

// A copy of `src` with every tensor converted (by `retype`) and renamed (by `rename`), same metadata.
template <class Rename, class Retype>
std::unique_ptr<MemoryTensorFile> transformed_copy(const TensorFile& src, Rename rename, Retype retype) {
  auto f = std::make_unique<MemoryTensorFile>(src.path() + " (copy)");
  for (const auto& e : src.entries()) f->add(rename(e.name), retype(src.tensor(e.name).value()));
  for (const auto& [k, v] : src.metadata()) f->set_metadata(k, v);
  return f;
}

// Official -> diffusers name for every decoder-side tensor of `config`.
inline std::map<std::string, std::string> diffusers_names(const VaeConfig& config) {
  std::map<std::string, std::string> m;
  const std::vector<LayerSpec> layers = decoder_layers(config).value();
  for (const auto& l : layers) {
    for (const auto& t : l.tensors) m[t.name] = t.diffusers_name;
  }
  return m;
}

// Stacks frames [C, H, W] into [C, T, H, W].
inline Tensor stack_frames(const std::vector<Tensor>& frames) {
  const int64_t C = frames[0].dim(0), H = frames[0].dim(1), W = frames[0].dim(2), T = static_cast<int64_t>(frames.size());
  Tensor out = Tensor::create(DType::f32, {C, T, H, W}).value();
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t c = 0; c < C; ++c) {
      std::copy(frames[t].f32() + c * H * W, frames[t].f32() + (c + 1) * H * W, out.f32() + (c * T + t) * H * W);
    }
  }
  return out;
}

struct DecodeResult {
  Status status;
  Tensor video;                              // [3, T, H, W] clamped
  std::map<std::string, std::vector<Tensor>> stages;  // name -> frames
  Tensor stage(const std::string& name) const { return stack_frames(stages.at(name)); }
};

// Decodes z with any decoder that has VaeDecoder's decode() (the CPU one, or the CUDA one), keeping the frames
// (and, with keep_stages, every stage's output).
template <class Decoder>
DecodeResult decode_all(Decoder& dec, const Tensor& z, int64_t tile = 0, bool keep_stages = false) {
  DecodeResult r;
  std::vector<Tensor> frames;
  VaeDecodeOptions o;
  o.tile = tile;
  if (keep_stages) {
    o.on_stage = [&](const std::string& name, int64_t, const Tensor& x) { r.stages[name].push_back(x.clone().value()); };
  }
  r.status = dec.decode(z, [&](int64_t t, const Tensor& f) {
    if (t != static_cast<int64_t>(frames.size())) return internal_error("frames out of order");
    frames.push_back(f.clone().value());
    return Status::ok();
  }, o);
  if (r.status.is_ok() && !frames.empty()) r.video = stack_frames(frames);
  return r;
}

// Drops a leading batch dimension of 1.
inline Tensor squeeze0(const Tensor& t) {
  if (t.rank() >= 1 && t.dim(0) == 1) {
    Shape s(t.shape().begin() + 1, t.shape().end());
    return t.reshape(s).value();
  }
  return t;
}

}  // namespace vdit::vae_test
