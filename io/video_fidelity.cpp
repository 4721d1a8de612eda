// compare_videos: PSNR in double over all samples; SSIM per frame on BT.601 luma with separable Gaussian
// sums of y, y², x, x², x·y (valid positions only), averaged over positions, then over frames.
#include "io/video_fidelity.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace vdit {
namespace {

constexpr int kWin = 11;
constexpr double kSigma = 1.5;

// Luma of one frame, [H, W].
std::vector<double> luma(const uint8_t* rgb, int64_t pixels) {
  std::vector<double> y(static_cast<size_t>(pixels));
  for (int64_t i = 0; i < pixels; ++i) {
    y[static_cast<size_t>(i)] = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
  }
  return y;
}

// Valid-region Gaussian filter of a [H, W] plane: [H - 10, W - 10].
std::vector<double> gauss_valid(const std::vector<double>& x, int W, int H, const double (&w)[kWin]) {
  const int Wo = W - kWin + 1, Ho = H - kWin + 1;
  std::vector<double> rows(static_cast<size_t>(H) * Wo), out(static_cast<size_t>(Ho) * Wo);
  for (int r = 0; r < H; ++r) {
    for (int c = 0; c < Wo; ++c) {
      double s = 0;
      for (int k = 0; k < kWin; ++k) s += w[k] * x[static_cast<size_t>(r) * W + c + k];
      rows[static_cast<size_t>(r) * Wo + c] = s;
    }
  }
  for (int r = 0; r < Ho; ++r) {
    for (int c = 0; c < Wo; ++c) {
      double s = 0;
      for (int k = 0; k < kWin; ++k) s += w[k] * rows[static_cast<size_t>(r + k) * Wo + c];
      out[static_cast<size_t>(r) * Wo + c] = s;
    }
  }
  return out;
}

double frame_ssim(const uint8_t* a, const uint8_t* b, int W, int H, const double (&w)[kWin]) {
  const int64_t n = static_cast<int64_t>(W) * H;
  const std::vector<double> x = luma(a, n), y = luma(b, n);
  std::vector<double> xx(x.size()), yy(x.size()), xy(x.size());
  for (size_t i = 0; i < x.size(); ++i) xx[i] = x[i] * x[i], yy[i] = y[i] * y[i], xy[i] = x[i] * y[i];
  const std::vector<double> mx = gauss_valid(x, W, H, w), my = gauss_valid(y, W, H, w);
  const std::vector<double> sxx = gauss_valid(xx, W, H, w), syy = gauss_valid(yy, W, H, w),
                            sxy = gauss_valid(xy, W, H, w);
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  double sum = 0;
  for (size_t i = 0; i < mx.size(); ++i) {
    const double vx = sxx[i] - mx[i] * mx[i], vy = syy[i] - my[i] * my[i], cxy = sxy[i] - mx[i] * my[i];
    sum += ((2 * mx[i] * my[i] + c1) * (2 * cxy + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
  }
  return sum / static_cast<double>(mx.size());
}

}  // namespace

Result<VideoFidelity> compare_videos(const std::vector<uint8_t>& test, const std::vector<uint8_t>& ref, int width,
                                     int height, int frames) {
  if (width <= 0 || height <= 0 || frames <= 0) {
    return invalid_argument(strfmt("compare_videos: bad size %dx%d, %d frames", width, height, frames));
  }
  const size_t frame_bytes = static_cast<size_t>(width) * height * 3;
  if (test.size() != frame_bytes * frames || ref.size() != frame_bytes * frames) {
    return invalid_argument(strfmt("compare_videos: %zu and %zu bytes for %d frames of %dx%d (expected %zu each)",
                                   test.size(), ref.size(), frames, width, height, frame_bytes * frames));
  }
  if (width < kWin || height < kWin) {
    return invalid_argument(strfmt("compare_videos: %dx%d frames are smaller than the %dx%d SSIM window", width,
                                   height, kWin, kWin));
  }
  double w[kWin], wsum = 0;
  for (int k = 0; k < kWin; ++k) {
    const double d = k - (kWin - 1) / 2.0;
    wsum += (w[k] = std::exp(-d * d / (2 * kSigma * kSigma)));
  }
  for (double& v : w) v /= wsum;

  VideoFidelity f;
  double se = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    const int d = static_cast<int>(test[i]) - static_cast<int>(ref[i]);
    se += static_cast<double>(d) * d;
    f.max_abs_diff = std::max(f.max_abs_diff, std::abs(d));
  }
  const double mse = se / static_cast<double>(test.size());
  f.psnr_db = mse > 0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : std::numeric_limits<double>::infinity();
  double ssim = 0;
  for (int t = 0; t < frames; ++t) {
    ssim += frame_ssim(test.data() + frame_bytes * t, ref.data() + frame_bytes * t, width, height, w);
  }
  f.ssim = ssim / frames;
  return f;
}

}  // namespace vdit
