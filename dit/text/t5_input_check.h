// Input checks of a T5 encode call, shared by the CPU and GPU encoders: ids in [0, vocab), one mask value per
// id, at least one valid token; and the length of the trimmed output (mask.sum(), which must be a
// ones-then-zeros prefix).
#pragma once

#include <cstdint>
#include <vector>

#include "dit/core/status.h"
#include "dit/text/t5_config.h"

namespace vdit::text {

Status check_t5_inputs(const T5Config& config, const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask);

// mask.sum() (ids.size() when the mask is empty), or invalid_argument when the mask is not a prefix.
Result<int64_t> t5_trimmed_length(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask);

}  // namespace vdit::text
