// Radial Attention's static block mask (methods.md §1.3; goldens README §1): the energy-decay rule of the
// reference's gen_log_mask_shrinked at HEAD 72788d4 (or at 04560d1), evaluated per frame-pair tile with
// interval arithmetic instead of token canvases. Deliberate differences from the reference, at any
// resolution: the whole tile is placed even when frames are not block-aligned (the reference drops tile
// parts beyond its canvas), and the last block of a sequence that is not a block multiple is judged on
// the rows it actually has (the reference refuses such lengths). For aligned shapes the masks are identical.
#pragma once

#include <cstdint>
#include <vector>

#include "dit/core/status.h"

namespace vdit::attn {

struct RadialMaskParams {
  int64_t frames = 0;        // F latent frames
  int64_t frame_tokens = 0;  // s = h*w
  int64_t text_len = 0;      // text tokens (rows and columns all on)
  bool text_first = false;   // text before the video instead of after it
  int block = 128;           // 64 | 128; also the window floor and the frame-skip unit (128 in the reference)
  double decay = 0.2;        // γ
  bool sink = true;          // Wan: every query attends all of frame 0; Hunyuan at HEAD: no sink
  bool legacy_04560d1 = false;  // |i-j| = 1 tiles use a half-width s//2 band (Wan, commit 04560d1)

  int64_t seq_len() const { return frames * frame_tokens + text_len; }
};

// The block mask [nB, nB] (nB = ceil(L / block)), 1 = key block kept, shared by all heads. The diagonal is
// always on (it is for every valid input; forced anyway).
Result<std::vector<uint8_t>> radial_block_mask(const RadialMaskParams& p);

}  // namespace vdit::attn
