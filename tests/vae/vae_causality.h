// The causality check shared by the CPU and CUDA VAE decoder tests: adding 0.5 to latent frame 2 must leave
// video frames 0..4 (decoded from latent frames 0 and 1) bit-identical and change every later frame.
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "tests/vae/vae_test_util.h"

namespace vdit::vae_test {

// `z` [C, F, h, w] with F >= 3 latent frames (the tiny golden's in.z decodes to 9 video frames).
template <class Decoder>
void expect_causal(Decoder& dec, const Tensor& z) {
  Tensor z2 = z.clone().value();
  const int64_t F = z.dim(1), HW = z.dim(2) * z.dim(3);
  for (int64_t c = 0; c < z.dim(0); ++c) {
    for (int64_t i = 0; i < HW; ++i) z2.f32()[(c * F + 2) * HW + i] += 0.5f;
  }
  DecodeResult a = decode_all(dec, z), b = decode_all(dec, z2);
  ASSERT_TRUE(a.status.is_ok() && b.status.is_ok()) << a.status.to_string() << b.status.to_string();
  const int64_t T = a.video.dim(1), plane = a.video.dim(2) * a.video.dim(3);
  ASSERT_EQ(T, 9);
  for (int64_t t = 0; t < T; ++t) {
    bool same = true;
    for (int64_t c = 0; c < 3; ++c) {
      same &= std::memcmp(a.video.f32() + (c * T + t) * plane, b.video.f32() + (c * T + t) * plane,
                          static_cast<size_t>(plane) * sizeof(float)) == 0;
    }
    if (t <= 4) EXPECT_TRUE(same) << "frame " << t << " changed";
    else EXPECT_FALSE(same) << "frame " << t << " did not change (the perturbation must reach it)";
  }
}

}  // namespace vdit::vae_test
