// vmoba_device.h in builds without CUDA: says what is missing.
#include "attention/cuda/planners/vmoba_device.h"

namespace vdit::attn {
namespace {
Status no_cuda() { return unsupported("VMoBA on the GPU needs a vdit build with CUDA (-DVDIT_CUDA=ON)"); }
}  // namespace

Status VmobaDevicePlanner::plan(const DeviceQKV&, const std::shared_ptr<const VmobaPartition>&, int, int) {
  return no_cuda();
}
Result<VmobaDevicePlan> VmobaDevicePlanner::download(void*) const { return no_cuda(); }
Result<double> VmobaDevicePlanner::element_density(void*) const { return no_cuda(); }
Result<double> VmobaDevicePlanner::block_density(void*) const { return no_cuda(); }
Result<std::vector<double>> VmobaDevicePlanner::profile(const DeviceQKV&, const std::shared_ptr<const VmobaPartition>&,
                                                        int, int, int) {
  return no_cuda();
}
Result<const VmobaDevicePlanner::DevicePartition*> VmobaDevicePlanner::device_partition(
    const std::shared_ptr<const VmobaPartition>&, int) {
  return no_cuda();
}
Status VmobaDevicePlanner::reserve(const DevicePartition&, int, int) { return no_cuda(); }
Status VmobaDevicePlanner::plan_impl(const DeviceQKV&, const std::shared_ptr<const VmobaPartition>&, int, int,
                                     void* const*) {
  return no_cuda();
}

}  // namespace vdit::attn
