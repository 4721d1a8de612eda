// The CPU backend of WanDit (internal: reached through load_wan_dit / create_wan_dit in wan_dit.h).
// f32 weights and activations; GEMMs through dit/ops (BLAS), element-wise kernels threaded.
#pragma once

#include <memory>

#include "dit/model/wan_dit.h"
#include "dit/model/wan_weights.h"

namespace vdit::model {

// `file` owns the memory that f32 weights map into; it is kept alive by the model.
std::unique_ptr<WanDit> make_wan_dit_cpu(std::shared_ptr<const TensorFile> file, const WanDitConfig& config,
                                         WanDitWeights weights);

}  // namespace vdit::model
