// Wan2.1 DiT tensor names: the expected official key set for a config, the one official -> diffusers
// renaming table (diffusers' convert_wan_to_diffusers.py, applied in order, with its norm2/norm3 swap),
// layout detection, and exact matching of a file's key set (no missing, no unexpected, right shapes).
// Works on names and shapes only, so full-size manifests can be checked without their data.
// Does not cover i2v/flf2v tensors (img_emb, k_img/v_img): those files are rejected as unsupported.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "dit/model/wan_config.h"

namespace vdit::model {

enum class WanLayout { official, diffusers };
const char* wan_layout_name(WanLayout layout);  // "official", "diffusers"

// The official name's spelling in `layout` (identity for official).
std::string wan_tensor_name(const std::string& official_name, WanLayout layout);

// Every tensor of a t2v DiT with `config`, in official names and the official state_dict order.
std::vector<std::pair<std::string, Shape>> wan_dit_expected_tensors(const WanDitConfig& config);

// Official or diffusers, from marker tensors. A file of another model gets a message that says what it
// looks like (VAE, T5 text encoder, image-to-video DiT) and what to pass instead; `what` names the file.
Result<WanLayout> detect_wan_dit_layout(const TensorShapes& shapes, const std::string& what);

// One entry per expected tensor: official name -> its name in the file.
using WanTensorNames = std::vector<std::pair<std::string, std::string>>;

// Checks that `shapes` holds exactly the tensors of `config` in `layout` with the right shapes. Errors name
// the missing, unexpected or mis-shaped tensors (up to a few of each, with the total count).
Result<WanTensorNames> match_wan_dit_tensors(const WanDitConfig& config, const TensorShapes& shapes, WanLayout layout,
                                             const std::string& what);

}  // namespace vdit::model
