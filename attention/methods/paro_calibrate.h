// PARO calibration: a plan (attention/paro_plan.h) from recorded dense q/k per (step, layer), in two passes
// over the same calls: (1) each head takes the axis order whose top ⌈density·nQ²⌉ blocks hold the largest
// share of its post-softmax video-video attention ("block concentration", mean over calls); (2) each (step
// group, layer, head) mask keeps the diagonal, the last block row/column, then the heaviest blocks of the
// summed block mass up to the target density. No model code: callers replay their recorded calls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "attention/attention.h"
#include "attention/paro_plan.h"

namespace vdit::attn {

struct ParoCalibrationOptions {
  VideoGrid grid;             // latent grid of the calibration calls
  int64_t text_len = 0;       // text tokens in the self-attention sequence
  bool text_first = false;    // text before the video
  int layers = 1, heads = 1;  // of the model
  int block = 64;             // mask block size (64 or 128)
  int groups = 1;             // step groups (masks per layer and head)
  int num_steps = 1;          // steps of the sampling run: step s belongs to group ⌊s·groups/num_steps⌋
  double density = 0.5;       // kept fraction of the nQ x nQ blocks per mask, in (0, 1]
};

// One recorded dense call: q, k [L, NH, HD] f32 in the original token order.
struct ParoCall {
  int step = 0, layer = 0;
  const float* q = nullptr;
  const float* k = nullptr;
  int64_t L = 0;
  int NH = 0, HD = 0;
};

class ParoCalibrator {
 public:
  static Result<std::unique_ptr<ParoCalibrator>> create(const ParoCalibrationOptions& options);

  // Pass 1: order statistics of one call.
  Status add_order_call(const ParoCall& call);
  // Ends pass 1: picks every head's order (needs at least one call per layer).
  Status choose_orders();
  // Pass 2: block masses of one call in the chosen orders.
  Status add_mask_call(const ParoCall& call);
  // add_order_call() before choose_orders(), add_mask_call() after.
  Status add_call(const ParoCall& call) { return orders_chosen_ ? add_mask_call(call) : add_order_call(call); }
  bool orders_chosen() const { return orders_chosen_; }
  const ParoCalibrationOptions& options() const { return opt_; }
  // The plan (needs at least one pass-2 call per step group and layer).
  Result<ParoPlan> finish() const;

  // [layers, heads, 6]: mean share of the video-video attention mass inside the top blocks, per order.
  const std::vector<double>& order_scores() const { return order_score_; }
  const std::vector<int32_t>& orders() const { return order_; }  // [layers, heads], after choose_orders()

 private:
  explicit ParoCalibrator(const ParoCalibrationOptions& o);
  Status check_call(const ParoCall& call) const;
  // dst[o][nq²] (+)= block masses of head h in orders `orders` (one entry per order).
  void block_mass(std::vector<std::vector<double>>* dst, const ParoCall& call, int h,
                  const std::vector<int>& orders) const;

  ParoCalibrationOptions opt_;
  int64_t nq_ = 0, keep_ = 0;
  std::vector<std::vector<int32_t>> blk_;  // [6][Lv] block of each video token in each order
  std::vector<double> order_score_;        // [layers, heads, 6] sums, then means
  std::vector<int64_t> order_calls_;       // [layers]
  std::vector<int32_t> order_;             // [layers, heads]
  std::vector<float> mass_;                // [groups, layers, heads, nq²]
  std::vector<int64_t> mask_calls_;        // [groups, layers]
  bool orders_chosen_ = false;
};

// The self-attention of a calibration run (pass it to the DiT for both passes): exact dense attention, so
// the run is unchanged, and every call also goes to `calibrator->add_call()` (both CFG branches count).
// A call whose step count or shape disagrees with the calibration options is an error.
class ParoCalibrationAttention final : public SelfAttention {
 public:
  explicit ParoCalibrationAttention(ParoCalibrator* calibrator) : calibrator_(calibrator) {}
  Status forward(const AttentionCall& call, const float* q, const float* k, const float* v, int64_t L, int NH, int HD,
                 float* out) override;
  const char* name() const override { return "paro-calibration"; }

 private:
  ParoCalibrator* calibrator_;
};

// Runs both passes: `replay(sink)` must feed every recorded call to `sink` (it is called twice).
using ParoCallSink = std::function<Status(const ParoCall&)>;
Result<ParoPlan> calibrate_paro_plan(const ParoCalibrationOptions& options,
                                     const std::function<Status(const ParoCallSink&)>& replay);

}  // namespace vdit::attn
