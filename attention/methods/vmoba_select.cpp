// VMoBA partition, chunk-mean gates and chunk selection (see vmoba_select.h). Host loops; the gate is the
// only O(C·L·NH·HD) part and runs threaded over (head, chunk).
#include "attention/methods/vmoba_select.h"

#include <algorithm>
#include <numeric>

#include "dit/core/parallel.h"

namespace vdit::attn {
namespace {

constexpr double kEps = 1e-6;  // the reference's eps in every threshold rule

// Index of the first sorted entry whose cumulative share reaches `need`, or the last one if none does.
template <class Value>
size_t threshold_cutoff(const std::vector<int64_t>& sorted, const Value& value, double total, double need) {
  double cum = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    cum += value(sorted[i]);
    if (cum / (total + kEps) >= need) return i;
  }
  return sorted.empty() ? 0 : sorted.size() - 1;
}

}  // namespace

Result<VmobaPartition> vmoba_partition(const VideoGrid& grid, const std::array<int64_t, 3>& box) {
  if (grid.f <= 0 || grid.h <= 0 || grid.w <= 0) {
    return invalid_argument("vmoba: the latent video grid (F, H, W) of the call is needed for the partition");
  }
  if (box[0] < 1 || box[1] < 1 || box[2] < 1) {
    return invalid_argument(strfmt("vmoba: chunk box %lldx%lldx%lld must be positive", (long long)box[0],
                                   (long long)box[1], (long long)box[2]));
  }
  const int64_t dims[3] = {grid.f, grid.h, grid.w};
  int64_t b[3], nb[3];
  for (int a = 0; a < 3; ++a) {
    b[a] = std::min(box[a], dims[a]);
    nb[a] = (dims[a] + b[a] - 1) / b[a];
  }
  VmobaPartition p;
  const int64_t Lv = grid.tokens();
  p.perm.reserve(static_cast<size_t>(Lv));
  p.chunk_of.reserve(static_cast<size_t>(Lv));
  p.cu_chunk.push_back(0);
  int32_t c = 0;
  for (int64_t bt = 0; bt < nb[0]; ++bt) {
    for (int64_t by = 0; by < nb[1]; ++by) {
      for (int64_t bx = 0; bx < nb[2]; ++bx, ++c) {
        for (int64_t t = bt * b[0]; t < std::min(dims[0], (bt + 1) * b[0]); ++t) {
          for (int64_t y = by * b[1]; y < std::min(dims[1], (by + 1) * b[1]); ++y) {
            for (int64_t x = bx * b[2]; x < std::min(dims[2], (bx + 1) * b[2]); ++x) {
              p.perm.push_back(static_cast<int32_t>((t * grid.h + y) * grid.w + x));
              p.chunk_of.push_back(c);
            }
          }
        }
        p.cu_chunk.push_back(static_cast<int64_t>(p.perm.size()));
      }
    }
  }
  return p;
}

VmobaGates vmoba_gates(const VmobaPartition& part, const float* q, const float* k, int64_t Lv, int NH, int HD) {
  VmobaGates g;
  g.C = part.num_chunks();
  g.NH = NH;
  g.HD = HD;
  g.Lv = Lv;
  g.key_gate_weight.assign(static_cast<size_t>(g.C) * NH * HD, 0.f);
  g.gate.assign(static_cast<size_t>(NH) * g.C * Lv, 0.f);
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  parallel_for(static_cast<int64_t>(NH) * g.C, [&](int64_t job) {
    const int h = static_cast<int>(job / g.C), c = static_cast<int>(job % g.C);
    const int64_t n0 = part.cu_chunk[c], n1 = part.cu_chunk[c + 1];
    std::vector<double> mean(static_cast<size_t>(HD), 0.0);
    for (int64_t n = n0; n < n1; ++n) {
      const float* kr = k + part.perm[n] * ld + static_cast<int64_t>(h) * HD;
      for (int d = 0; d < HD; ++d) mean[d] += kr[d];
    }
    float* kgw = g.key_gate_weight.data() + (static_cast<size_t>(c) * NH + h) * HD;  // [HD]
    for (int d = 0; d < HD; ++d) kgw[d] = static_cast<float>(mean[d] / static_cast<double>(n1 - n0));
    float* gate = g.gate.data() + (static_cast<size_t>(h) * g.C + c) * Lv;  // [Lv]
    for (int64_t n = 0; n < Lv; ++n) {
      const float* qr = q + part.perm[n] * ld + static_cast<int64_t>(h) * HD;
      double dot = 0;
      for (int d = 0; d < HD; ++d) dot += static_cast<double>(kgw[d]) * qr[d];
      gate[n] = static_cast<float>(dot);
    }
  });
  return g;
}

std::vector<uint8_t> vmoba_select(const VmobaPartition& part, const VmobaGates& g, const VmobaSelection& rule) {
  const int C = g.C, NH = g.NH;
  const int64_t Lv = g.Lv;
  std::vector<uint8_t> sel(static_cast<size_t>(C) * NH * Lv, 0);  // [C, NH, Lv]
  auto at = [&](int c, int h, int64_t n) -> uint8_t& { return sel[(static_cast<size_t>(c) * NH + h) * Lv + n]; };
  for (int h = 0; h < NH; ++h)
    for (int64_t n = 0; n < Lv; ++n) at(part.chunk_of[n], h, n) = 1;
  if (C <= 1) return sel;
  auto gate = [&](int h, int c, int64_t n) -> double {
    return g.gate[(static_cast<size_t>(h) * C + c) * Lv + n];
  };

  if (rule.pool == VmobaPool::query_head) {
    const int k_other = std::min(rule.topk, C) - 1;
    parallel_for((static_cast<int64_t>(NH) * Lv + 255) / 256, [&](int64_t job) {
      std::vector<int64_t> others;
      for (int64_t e = job * 256; e < std::min<int64_t>(NH * Lv, (job + 1) * 256); ++e) {
        const int h = static_cast<int>(e / Lv);
        const int64_t n = e % Lv;
        const int self = part.chunk_of[n];
        others.clear();
        for (int c = 0; c < C; ++c)
          if (c != self) others.push_back(c);
        auto desc = [&](int64_t a, int64_t b) {
          const double ga = gate(h, static_cast<int>(a), n), gb = gate(h, static_cast<int>(b), n);
          return ga > gb || (ga == gb && a < b);
        };
        if (rule.select == VmobaSelect::topk) {
          if (k_other <= 0) continue;
          std::partial_sort(others.begin(), others.begin() + k_other, others.end(), desc);
          for (int i = 0; i < k_other; ++i) at(static_cast<int>(others[i]), h, n) = 1;
          continue;
        }
        double mn = gate(h, 0, n), mx = mn;
        for (int c = 1; c < C; ++c) {
          mn = std::min(mn, gate(h, c, n));
          mx = std::max(mx, gate(h, c, n));
        }
        const double denom = mx - mn <= kEps ? 1.0 : mx - mn;
        auto norm = [&](int64_t c) { return (gate(h, static_cast<int>(c), n) - mn) / denom; };
        double total = 0;
        for (int c = 0; c < C; ++c) total += norm(c);
        const double need = std::max(rule.threshold - norm(self) / (total + kEps), 0.0);
        std::sort(others.begin(), others.end(), desc);
        const size_t cut = threshold_cutoff(others, norm, total, need);
        for (size_t i = 0; i <= cut; ++i) at(static_cast<int>(others[i]), h, n) = 1;
      }
    });
    return sel;
  }

  // head_global: one pool per head over all (chunk, query) pairs; flat index c·Lv + n.
  parallel_for(NH, [&](int64_t hh) {
    const int h = static_cast<int>(hh);
    std::vector<int64_t> others;
    others.reserve(static_cast<size_t>((C - 1) * Lv));
    for (int c = 0; c < C; ++c)
      for (int64_t n = 0; n < Lv; ++n)
        if (part.chunk_of[n] != c) others.push_back(static_cast<int64_t>(c) * Lv + n);
    auto flat_gate = [&](int64_t f) { return gate(h, static_cast<int>(f / Lv), f % Lv); };
    auto desc = [&](int64_t a, int64_t b) {
      const double ga = flat_gate(a), gb = flat_gate(b);
      return ga > gb || (ga == gb && a < b);
    };
    if (rule.select == VmobaSelect::topk) {
      // The reference ranks self entries first (+1e9) and keeps k·Lv entries: all Lv self entries plus the
      // (k − 1)·Lv best others.
      const int64_t k_other = std::min<int64_t>((std::min(rule.topk, C) - 1) * Lv, static_cast<int64_t>(others.size()));
      if (k_other <= 0) return;
      std::nth_element(others.begin(), others.begin() + (k_other - 1), others.end(), desc);
      for (int64_t i = 0; i < k_other; ++i) at(static_cast<int>(others[i] / Lv), h, others[i] % Lv) = 1;
      return;
    }
    double mn = gate(h, 0, 0), mx = mn;
    for (int c = 0; c < C; ++c)
      for (int64_t n = 0; n < Lv; ++n) {
        mn = std::min(mn, gate(h, c, n));
        mx = std::max(mx, gate(h, c, n));
      }
    const double denom = mx - mn <= kEps ? 1.0 : mx - mn;
    auto norm = [&](int64_t f) { return (flat_gate(f) - mn) / denom; };
    double total = 0, self_sum = 0;
    for (int c = 0; c < C; ++c)
      for (int64_t n = 0; n < Lv; ++n) {
        const double v = norm(static_cast<int64_t>(c) * Lv + n);
        total += v;
        if (part.chunk_of[n] == c) self_sum += v;
      }
    const double need = std::max(rule.threshold - self_sum / (total + kEps), 0.0);
    std::sort(others.begin(), others.end(), desc);
    const size_t cut = threshold_cutoff(others, norm, total, need);
    for (size_t i = 0; i <= cut && i < others.size(); ++i) at(static_cast<int>(others[i] / Lv), h, others[i] % Lv) = 1;
  });
  return sel;
}

}  // namespace vdit::attn
