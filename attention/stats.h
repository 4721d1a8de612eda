// Per-call attention statistics (density, time, optional recall and error against dense) and a sink the
// pipeline or the CLI installs to read them. Recording costs nothing unless a sink is set; recall and
// relative error need an extra dense pass and are computed only when quality statistics are switched on.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vdit::attn {

struct AttentionStats {
  std::string method;
  int layer = 0, step = 0, branch = 0;
  int64_t seq_len = 0;   // L
  int num_heads = 0;     // NH
  bool dense = false;    // the schedule (or the method) ran this call dense
  double density = 1.0;  // listed blocks / all blocks (1 for dense calls)
  double seconds = 0.0;  // wall time of the call (without the quality pass)
  // Quality (NaN unless enabled): recall = mean over (head, query) of the dense softmax mass inside the
  // layout = mean exp(LSE_layout - LSE_dense); rel_error = ||O - O_dense||₂ / ||O_dense||₂ over the call.
  double recall = std::numeric_limits<double>::quiet_NaN();
  double rel_error = std::numeric_limits<double>::quiet_NaN();

  nlohmann::json to_json() const;  // NaN fields are written as null
};

using StatsSink = std::function<void(const AttentionStats&)>;

// A thread-safe sink that keeps every record (for `vdit generate --attention-stats` and the CLI).
class StatsCollector {
 public:
  StatsSink sink();
  std::vector<AttentionStats> records() const;
  nlohmann::json to_json() const;  // {"calls": [...], "summary": {mean density, total seconds, ...}}
  void clear();

 private:
  mutable std::mutex mutex_;
  std::vector<AttentionStats> records_;
};

}  // namespace vdit::attn
