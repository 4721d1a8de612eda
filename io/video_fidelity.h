// How close one uint8 RGB video is to a reference of the same size — the numbers a sparse-attention run is
// judged by against the dense run of the same seed: PSNR over every sample, the mean SSIM of the frames'
// luma (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255, over the window
// positions fully inside the frame) and the largest sample difference. Frames are [H, W, 3] interleaved,
// back to back (the FrameSink layout).
#pragma once

#include <cstdint>
#include <vector>

#include "dit/core/status.h"

namespace vdit {

struct VideoFidelity {
  double psnr_db = 0;  // 10·log10(255² / MSE); +inf for identical videos
  double ssim = 0;     // mean over frames, in [-1, 1]; 1 for identical videos
  int max_abs_diff = 0;
};

// `test` and `ref` hold `frames` frames of width x height. Errors: sizes that do not match the buffers,
// or frames smaller than the 11x11 SSIM window.
Result<VideoFidelity> compare_videos(const std::vector<uint8_t>& test, const std::vector<uint8_t>& ref, int width,
                                     int height, int frames);

}  // namespace vdit
