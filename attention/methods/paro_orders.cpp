// PARO axis-order permutations (see paro_orders.h).
#include "attention/methods/paro_orders.h"

namespace vdit::attn {
namespace {

// Axes per order, slowest first: 0 = F, 1 = H, 2 = W.
constexpr int kAxes[kParoOrders][3] = {{0, 1, 2}, {0, 2, 1}, {1, 2, 0}, {1, 0, 2}, {2, 1, 0}, {2, 0, 1}};

}  // namespace

const char* paro_order_name(int order) {
  static const char* const names[kParoOrders] = {"FHW", "FWH", "HWF", "HFW", "WHF", "WFH"};
  return order >= 0 && order < kParoOrders ? names[order] : "?";
}

std::vector<int32_t> paro_video_perm(const VideoGrid& grid, int order) {
  const int64_t dims[3] = {grid.f, grid.h, grid.w};
  const int* ax = kAxes[order];
  std::vector<int32_t> perm;
  perm.reserve(static_cast<size_t>(grid.tokens()));
  int64_t c[3];
  for (c[ax[0]] = 0; c[ax[0]] < dims[ax[0]]; ++c[ax[0]])
    for (c[ax[1]] = 0; c[ax[1]] < dims[ax[1]]; ++c[ax[1]])
      for (c[ax[2]] = 0; c[ax[2]] < dims[ax[2]]; ++c[ax[2]])
        perm.push_back(static_cast<int32_t>((c[0] * grid.h + c[1]) * grid.w + c[2]));
  return perm;
}

std::vector<int32_t> paro_video_pos(const VideoGrid& grid, int order) {
  const std::vector<int32_t> perm = paro_video_perm(grid, order);
  std::vector<int32_t> pos(perm.size());
  for (size_t n = 0; n < perm.size(); ++n) pos[static_cast<size_t>(perm[n])] = static_cast<int32_t>(n);
  return pos;
}

void paro_sequence_perm(std::vector<int32_t>* perm, std::vector<int32_t>* inv, const VideoGrid& grid, int order,
                        int64_t text_len, bool text_first) {
  const int64_t Lv = grid.tokens(), L = Lv + text_len, vb = text_first ? text_len : 0;
  const std::vector<int32_t> vp = paro_video_perm(grid, order);
  perm->resize(static_cast<size_t>(L));
  inv->resize(static_cast<size_t>(L));
  for (int64_t n = 0; n < L; ++n) (*perm)[static_cast<size_t>(n)] = static_cast<int32_t>(n);
  for (int64_t m = 0; m < Lv; ++m) (*perm)[static_cast<size_t>(vb + m)] = static_cast<int32_t>(vb + vp[m]);
  for (int64_t n = 0; n < L; ++n) (*inv)[static_cast<size_t>((*perm)[n])] = static_cast<int32_t>(n);
}

}  // namespace vdit::attn
