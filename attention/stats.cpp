// AttentionStats serialization and the collecting sink.
#include "attention/stats.h"

#include <cmath>

namespace vdit::attn {

namespace {
nlohmann::json num_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }
}  // namespace

nlohmann::json AttentionStats::to_json() const {
  return {{"method", method},   {"layer", layer},           {"step", step},       {"branch", branch},
          {"seq_len", seq_len}, {"num_heads", num_heads},   {"dense", dense},     {"density", density},
          {"seconds", seconds}, {"recall", num_or_null(recall)}, {"rel_error", num_or_null(rel_error)}};
}

StatsSink StatsCollector::sink() {
  return [this](const AttentionStats& s) {
    std::lock_guard<std::mutex> lock(mutex_);
    records_.push_back(s);
  };
}

std::vector<AttentionStats> StatsCollector::records() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_;
}

void StatsCollector::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  records_.clear();
}

nlohmann::json StatsCollector::to_json() const {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json calls = nlohmann::json::array();
  double seconds = 0, density = 0, recall = 0, err = 0;
  int64_t n_recall = 0, n_err = 0, n_dense = 0;
  for (const auto& r : records_) {
    calls.push_back(r.to_json());
    seconds += r.seconds;
    density += r.density;
    n_dense += r.dense ? 1 : 0;
    if (std::isfinite(r.recall)) recall += r.recall, ++n_recall;
    if (std::isfinite(r.rel_error)) err += r.rel_error, ++n_err;
  }
  const double n = records_.empty() ? 1.0 : static_cast<double>(records_.size());
  nlohmann::json summary = {{"calls", records_.size()},
                            {"dense_calls", n_dense},
                            {"seconds", seconds},
                            {"mean_density", density / n},
                            {"mean_recall", n_recall ? nlohmann::json(recall / n_recall) : nlohmann::json(nullptr)},
                            {"mean_rel_error", n_err ? nlohmann::json(err / n_err) : nlohmann::json(nullptr)}};
  return {{"summary", summary}, {"calls", calls}};
}

}  // namespace vdit::attn
