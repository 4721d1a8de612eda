// Helpers for the media tests: a synthetic moving-shapes clip, PSNR, and a private temporary folder
// removed at the end of each test.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vdit::test {

// Frame `t` of a clip: a smooth colour gradient with a disc and a square moving across it. Shape edges
// are anti-aliased over about one pixel, like decoded video content (never aliased single-pixel steps).
inline std::vector<uint8_t> moving_shapes_frame(int width, int height, int t) {
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);     // [H, W, 3]
  const double cx = 20 + 4.5 * t, cy = 30 + 1.5 * t, r = 14;             // disc
  const double sx = width - 30 - 3.0 * t, sy = 55 - 1.0 * t, half = 11;  // square
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      double c[3] = {40 + 150.0 * x / width, 60 + 120.0 * y / height, 140 + 60.0 * std::sin(0.3 * t + 0.05 * x)};
      double disc = std::clamp(r + 0.5 - std::hypot(x - cx, y - cy), 0.0, 1.0);
      double sq = std::clamp(half + 0.5 - std::max(std::fabs(x - sx), std::fabs(y - sy)), 0.0, 1.0);
      const double disc_rgb[3] = {230, 70, 40}, sq_rgb[3] = {30, 200, 90};
      for (int k = 0; k < 3; ++k) {
        double v = c[k] * (1 - disc) + disc_rgb[k] * disc;
        v = v * (1 - sq) + sq_rgb[k] * sq;
        rgb[(static_cast<size_t>(y) * width + x) * 3 + k] =
            static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
      }
    }
  }
  return rgb;
}

inline double mse(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return a.empty() ? 0 : s / static_cast<double>(a.size());
}

inline double psnr_from_mse(double m) { return m <= 0 ? INFINITY : 10 * std::log10(255.0 * 255.0 / m); }

// A fresh folder under the system temp dir; removed with its contents when the object goes away.
class TempFolder {
 public:
  TempFolder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "vdit_media_XXXXXX").string();
    path_ = mkdtemp(pattern.data()) ? pattern : "";
  }
  ~TempFolder() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  // Names of everything inside, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

}  // namespace vdit::test
