// Writes a BlockLayout's lists as an uncompressed numpy .npz, the exchange format of `vdit bench attention
// --save-layout` and the PyTorch FlexAttention peer (tools/bench/torch_attention_peer.py --block-lists):
// full_ptr [rows+1] int64, full_idx int32, partial_ptr [rows+1] int64, partial_idx int32 (rows = NH·nQ, or
// nQ for a head-shared layout) and scalars block, seq_len, num_heads. The predicate and permutation are not
// stored (the peer runs partial blocks whole). No reader here (numpy is the reader).
#pragma once

#include <string>

#include "attention/block_layout.h"
#include "dit/core/status.h"

namespace vdit::attn {

Status save_block_lists_npz(const std::string& path, const BlockLayout& layout);

}  // namespace vdit::attn
