// Radial Attention (methods.md §1): a static energy-decay block mask shared by all heads, layers and steps,
// built once per shape (radial_mask.h) and cached; dense warm-up steps and dense layers from the common
// schedule. Text tokens (Hunyuan-style) are dense rows/columns of the same layout rather than a separate
// LSE-merged pass; that gives the same attention without padded-text masking (not needed here).
// GPU (forward_device): the same host-built layout, uploaded once per shape and reused for every call.
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "attention/methods/method.h"
#include "attention/radial_mask.h"

namespace vdit::attn {
namespace {

class RadialMethod : public AttentionMethod {
 public:
  nlohmann::json preset(const ModelInfo& model) const override {
    // methods.md §1.4 / §7: Wan2.1 (14B script; 1.3B uses the same code): 12 of 50 steps dense, the first
    // block dense, decay 0.2. HunyuanVideo: 12 dense steps, no dense layer, decay 0.95, no sink.
    // Step counts other than 50 keep the same share of dense steps.
    const int steps = model.num_steps > 0 ? model.num_steps : 50;
    const int dense_steps = static_cast<int>(std::lround(12.0 * steps / 50.0));
    if (model.family == "hunyuan") {
      return {{"dense_steps", dense_steps}, {"dense_layers", 0}, {"decay", 0.95}, {"model", "hunyuan"}};
    }
    return {{"dense_steps", dense_steps}, {"dense_layers", 1}, {"decay", 0.2}, {"model", "wan"}};
  }

  bool static_layout() const override { return true; }

 protected:
  // One device layout per shape: no per-call planning on the GPU.
  std::string device_layout_key(const AttentionCall& call, const DeviceQKV& qkv) const override {
    return strfmt("%lld,%lld,%lld,%lld,%d,%d", static_cast<long long>(call.grid.f), static_cast<long long>(call.grid.h),
                  static_cast<long long>(call.grid.w), static_cast<long long>(call.text_len), call.text_first ? 1 : 0,
                  qkv.NH);
  }

  Status configure_method(ConfigReader& cfg) override {
    model_kind_ = model_.family == "hunyuan" ? "hunyuan" : "wan";
    VDIT_TRY(cfg.get_string("model", &model_kind_, {"wan", "hunyuan"}));
    sink_ = model_kind_ == "wan";
    VDIT_TRY(cfg.get_bool("sink", &sink_));
    VDIT_TRY(cfg.get_double("decay", &decay_, 0.0, 1000.0, /*lo_open=*/true));
    VDIT_TRY(cfg.get_string("mask_version", &mask_version_, {"72788d4", "04560d1"}));
    return Status::ok();
  }

  nlohmann::json describe_method() const override {
    return {{"decay", decay_}, {"sink", sink_}, {"model", model_kind_}, {"mask_version", mask_version_}};
  }

  Result<std::shared_ptr<const BlockLayout>> plan(const AttentionCall& call, const QKV& in) override {
    if (call.grid.f <= 0 || call.grid.h * call.grid.w <= 0) {
      return invalid_argument("radial attention needs the latent video grid (F, H, W) of the call");
    }
    RadialMaskParams p;
    p.frames = call.grid.f;
    p.frame_tokens = call.grid.h * call.grid.w;
    p.text_len = call.text_len;
    p.text_first = call.text_first;
    p.block = schedule_.block;
    p.decay = decay_;
    p.sink = sink_;
    p.legacy_04560d1 = mask_version_ == "04560d1" && model_kind_ == "wan";
    const auto key = std::make_tuple(p.frames, p.frame_tokens, p.text_len, p.text_first, in.NH);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    VDIT_ASSIGN(std::vector<uint8_t> mask, radial_block_mask(p));
    VDIT_ASSIGN(BlockLayout layout, layout_from_block_states(mask, 1, in.NH, p.seq_len(), p.block));
    auto shared = std::make_shared<const BlockLayout>(std::move(layout));
    cache_[key] = shared;
    return shared;
  }

 private:
  std::string model_kind_ = "wan";
  bool sink_ = true;
  double decay_ = 0.2;
  std::string mask_version_ = "72788d4";
  std::mutex mutex_;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool, int>, std::shared_ptr<const BlockLayout>> cache_;
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(radial, "Radial Attention: static energy-decay block mask (Wan sink)",
                               vdit::attn::RadialMethod);
