// Launcher of the device-side smooth fill in smooth_fill.cu: spatially correlated q/k for the VMoBA timing
// (a proxy for a trained model, whose neighbouring tokens select similar chunks; random inputs do not).
#pragma once
#include <cstdint>
// dst[t, h, d] (token t = (f·H + y)·W + x of an F×H×W grid, [L, NH, HD] bf16) = √2·sin(a·f + b·y + c·x + φ)
// with per-(h, d) frequencies a, b, c in [−0.3, 0.3] rad per token step and phase φ, plus uniform noise of
// standard deviation `noise`, all from hashes of `seed`; asynchronous on the default stream. 0 on success.
int planners_fill_smooth_bf16(void* dst, int64_t F, int64_t H, int64_t W, int NH, int HD, uint64_t seed, float noise);
