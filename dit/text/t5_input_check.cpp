// Input checks shared by the CPU and GPU T5 encoders (t5_input_check.h).
#include "dit/text/t5_input_check.h"

#include <algorithm>

namespace vdit::text {

Status check_t5_inputs(const T5Config& c, const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask) {
  if (ids.empty()) return invalid_argument("T5 encode: ids is empty; pass at least one token (e.g. </s>)");
  if (!mask.empty() && mask.size() != ids.size()) {
    return invalid_argument(
        strfmt("T5 encode: mask has %zu entries but ids has %zu; give one mask value per id", mask.size(), ids.size()));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= c.vocab) {
      return invalid_argument(
          strfmt("T5 encode: ids[%zu] = %d is outside this encoder's vocabulary [0, %lld); were the "
                 "ids made with another tokenizer?",
                 i, ids[i], static_cast<long long>(c.vocab)));
    }
  }
  if (!mask.empty() && std::none_of(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; })) {
    return invalid_argument("T5 encode: mask is all zeros; at least one token (the </s>) must be valid");
  }
  return Status::ok();
}

Result<int64_t> t5_trimmed_length(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask) {
  if (mask.empty()) return static_cast<int64_t>(ids.size());
  const int64_t len = std::count_if(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; });
  for (int64_t i = 0; i < len; ++i) {
    if (!mask[static_cast<size_t>(i)]) {
      return invalid_argument(
          strfmt("T5 encode_trimmed: mask is not ones-then-zeros (mask[%lld] = 0 before the last "
                 "1); trimming to mask.sum() rows needs a prefix mask, use encode() instead",
                 static_cast<long long>(i)));
    }
  }
  return len;
}

}  // namespace vdit::text
