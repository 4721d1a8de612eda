// A PARO plan with random head orders and random block masks at a given density, for timing PARO where no
// calibrated plan exists (`vdit bench step --attention paro` on random weights): the kernel's cost depends on
// the density, the block size and the permutations, not on which blocks a calibration would keep. Never a
// substitute for `vdit calibrate paro` when quality matters.
#pragma once

#include <cstdint>
#include <string>

#include "attention/attention.h"
#include "dit/core/status.h"

namespace vdit::cli {

struct SyntheticParoPlan {
  int layers = 1, heads = 1;
  attn::VideoGrid grid;
  int block = 128;
  double density = 0.3;  // kept blocks per mask row (the diagonal included), as a fraction of nQ
  uint64_t seed = 1;
};

// Writes the plan to `path` (paro_plan.h format, one step group; metadata says it is synthetic).
Status write_synthetic_paro_plan(const SyntheticParoPlan& spec, const std::string& path);

}  // namespace vdit::cli
