// Position and time encodings of the Wan2.1 DiT, in float64 as the official code computes them:
// the sinusoidal timestep embedding (cos half first, then sin) and the 3D RoPE angles (head_dim/2 complex
// pairs split c - 2(c//3), c//3, c//3 over frame, height, width; theta 10000). Also the token <-> latent
// layout (patchify / unpatchify, threaded over tokens). Tables are small; RoPE is applied in wan_cpu_kernels.h.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace vdit::model {

// [freq_dim]: emb[j] = cos(t·ω_j), emb[half+j] = sin(t·ω_j), ω_j = 10000^(−j/half), half = freq_dim/2.
std::vector<double> timestep_sinusoid(int64_t freq_dim, double t);

// Complex pairs per axis (frame, height, width) for a head of `head_dim`: {c − 2(c//3), c//3, c//3}, c = head_dim/2.
std::array<int64_t, 3> rope_axis_pairs(int64_t head_dim);

// Rotation angle of pair j (0 <= j < pairs[axis]) at position `pos` along `axis`:
// pos · 10000^(−2j / (2·pairs[axis])), exactly as the official rope_params.
double rope_angle(int64_t pos, int64_t j, int64_t axis_pairs);

// The official freqs table: angles [max_pos, head_dim/2] with pair j of every row using its axis' position
// = row index (the three axis tables side by side). For tests against the golden.
std::vector<double> rope_angle_table(int64_t head_dim, int64_t max_pos);

// cos/sin of every (position, pair) per axis for one grid, so applying RoPE is a table lookup.
struct RopeTables {
  std::array<int64_t, 3> pairs{};               // pairs per axis
  std::array<int64_t, 3> extent{};              // grid size per axis (f, h, w)
  std::array<std::vector<double>, 3> cos, sin;  // [extent[a], pairs[a]] each
};
RopeTables make_rope_tables(int64_t head_dim, int64_t f, int64_t h, int64_t w);

// tokens[L, C·pt·ph·pw] from latent x[C, F, H, W] (L = (F/pt)(H/ph)(W/pw), token (fi·h + hi)·w + wi; each
// token vector ordered (c, kt, kh, kw) to match the Conv3d kernel flattened).
void patchify(float* tokens, const float* x, int64_t C, int64_t F, int64_t H, int64_t W,
              const std::array<int64_t, 3>& patch);

// out[C, F, H, W] from y[L, pt·ph·pw·C] (each token vector ordered (kt, kh, kw, c), c fastest: official unpatchify).
void unpatchify(float* out, const float* y, int64_t C, int64_t F, int64_t H, int64_t W,
                const std::array<int64_t, 3>& patch);

}  // namespace vdit::model
