// draft_device.h in builds without CUDA: says what is missing.
#include "attention/cuda/planners/draft_device.h"

namespace vdit::attn {
namespace {
Status no_cuda() { return unsupported("DraftAttention on the GPU needs a vdit build with CUDA (-DVDIT_CUDA=ON)"); }
}  // namespace

Status DraftDevicePlanner::prepare(const DraftGeometry&, int, int) { return no_cuda(); }
bool DraftDevicePlanner::prepared_for(const DraftGeometry&, int, int) const { return false; }
Status DraftDevicePlanner::plan(const DeviceQKV&, double) { return no_cuda(); }
DeviceGatheredView DraftDevicePlanner::view() const { return {}; }
Status DraftDevicePlanner::download(std::vector<float>*, std::vector<float>*, Lists*, void*) const { return no_cuda(); }
Result<double> DraftDevicePlanner::block_density(void*) const { return no_cuda(); }
Result<double> DraftDevicePlanner::density(void*) const { return no_cuda(); }
Result<std::vector<std::pair<std::string, double>>> DraftDevicePlanner::profile(const DeviceQKV&, double, int) {
  return no_cuda();
}
Status DraftDevicePlanner::plan_impl(const DeviceQKV&, double, void* const*) { return no_cuda(); }

}  // namespace vdit::attn
