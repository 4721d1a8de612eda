// write_synthetic_paro_plan: orders uniform over the six axis orders, each mask row the diagonal plus
// round(density·nQ) − 1 other blocks drawn without replacement (a fixed-seed PRNG, so runs repeat).
#include "tools/vdit/synthetic_paro_plan.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "attention/block_layout.h"
#include "attention/paro_plan.h"

namespace vdit::cli {

Status write_synthetic_paro_plan(const SyntheticParoPlan& spec, const std::string& path) {
  if (!(spec.density > 0.0 && spec.density <= 1.0)) {
    return invalid_argument(strfmt("PARO density %g: expected a fraction in (0, 1]", spec.density));
  }
  VDIT_TRY(attn::check_block_size(spec.block));
  attn::ParoPlan plan;
  plan.groups = 1;
  plan.layers = spec.layers;
  plan.heads = spec.heads;
  plan.block = spec.block;
  plan.grid = spec.grid;
  plan.text_len = 0;
  plan.steps = 50;
  const int64_t nq = (spec.grid.tokens() + spec.block - 1) / spec.block;
  plan.nq = nq;
  std::mt19937_64 rng(spec.seed);
  plan.order.resize(static_cast<size_t>(spec.layers) * spec.heads);
  for (int32_t& o : plan.order) o = static_cast<int32_t>(rng() % 6);
  VDIT_ASSIGN(plan.block_mask, Tensor::zeros(DType::u8, {1, spec.layers, spec.heads, nq, nq}));
  uint8_t* mask = plan.block_mask.data<uint8_t>();
  const int64_t per_row = std::max<int64_t>(1, std::llround(spec.density * static_cast<double>(nq)));
  std::vector<int64_t> others(static_cast<size_t>(nq > 0 ? nq - 1 : 0));
  for (int64_t m = 0; m < static_cast<int64_t>(spec.layers) * spec.heads; ++m) {
    for (int64_t r = 0; r < nq; ++r) {
      uint8_t* row = mask + (m * nq + r) * nq;
      row[r] = 1;
      std::iota(others.begin(), others.end(), 0);
      for (int64_t i = 0; i < per_row - 1 && i < nq - 1; ++i) {  // partial Fisher-Yates
        std::uniform_int_distribution<int64_t> pick(i, nq - 2);
        std::swap(others[static_cast<size_t>(i)], others[static_cast<size_t>(pick(rng))]);
        const int64_t c = others[static_cast<size_t>(i)];
        row[c < r ? c : c + 1] = 1;  // skip the diagonal
      }
    }
  }
  plan.metadata["source"] = "synthetic (random orders and masks; vdit bench step)";
  plan.metadata["density"] = strfmt("%g", spec.density);
  return attn::save_paro_plan(path, plan);
}

}  // namespace vdit::cli
