"""Flow-matching schedule and samplers as in Wan2.1 (shared/docs/wan.md section 5).

Training: x_t = (1 - s) x0 + s eps, target v = eps - x0, s = shift(u) with u ~ U(0, 1) and the same shift as at
inference; the DiT sees t = int(s * 1000). Inference: the official UniPC grid (linspace(0.999, 0, N+1)[:N],
shifted, 0 appended), UniPC bh2 order 2 with corrector (x0-prediction), or Euler; CFG v = v_u + g (v_c - v_u).
Not here: DPM++ (the C++ pipeline has it; the preview does not need it).
"""
import math

import numpy as np
import torch


def shift_sigma(u, shift):
    """s = shift*u / (1 + (shift-1)*u); works on floats, numpy arrays and tensors."""
    return shift * u / (1 + (shift - 1) * u)


def sample_training_sigmas(batch, shift, device, generator=None):
    """[B] float32 sigmas in (0, 1) drawn uniformly and shifted like the inference grid."""
    u = torch.rand(batch, device=device, generator=generator)
    return shift_sigma(u, shift).clamp(1e-4, 0.9999)


def inference_schedule(steps, shift):
    """Official UniPC grid: (sigmas, timesteps).

    sigmas: N shifted values of linspace(0.999, 0, N+1)[:N] computed in float64, stored as float32, then 0.
    timesteps: int(s * 1000) of the float64 values, truncated (999.8 -> 999), as the official scheduler does.
    """
    base = np.linspace(0.999, 0.0, steps + 1)[:steps]
    sig = shift * base / (1 + (shift - 1) * base)
    return [float(np.float32(s)) for s in sig] + [0.0], [int(s * 1000) for s in sig]


def inference_sigmas(steps, shift):
    return inference_schedule(steps, shift)[0]


def flow_targets(x0, noise, sigmas):
    """Returns (x_t, v) for x0, noise [B, ...] and sigmas [B]."""
    s = sigmas.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - s) * x0 + s * noise, noise - x0


class Euler:
    def __init__(self, sigmas):
        self.sigmas = sigmas

    def step(self, i, x, v):
        return x + (self.sigmas[i + 1] - self.sigmas[i]) * v


class UniPC:
    """UniPC bh2, solver order 2, x0-prediction, corrector on, lower order at the first and last step."""

    def __init__(self, sigmas):
        self.sigmas = sigmas
        self.n = len(sigmas) - 1
        self.x0_hist = []  # x0 predictions, newest last
        self.last_sample = None
        self.this_order = 1
        self.lower_order_nums = 0

    def lam(self, s):
        return math.log(1.0 - s) - math.log(s)

    def step(self, i, x, v):
        """x_i and the guided velocity v_i -> x_{i+1}."""
        sig = self.sigmas
        x0 = x - sig[i] * v  # from the uncorrected sample
        if i > 0 and self.last_sample is not None:
            x = self.correct(i, x0)
        self.x0_hist = (self.x0_hist + [x0])[-2:]
        order = min(2, self.n - i, self.lower_order_nums + 1)
        self.this_order = order
        self.lower_order_nums = min(self.lower_order_nums + 1, 2)
        self.last_sample = x
        return self.predict(i, x, order)

    def correct(self, i, x0_i):
        sig, m0 = self.sigmas, self.x0_hist[-1]
        h = self.lam(sig[i]) - self.lam(sig[i - 1])
        hh = -h
        phi1 = math.expm1(hh)
        bh = math.expm1(hh)
        b1 = (phi1 / hh - 1) / bh
        alpha = 1.0 - sig[i]
        corr = 0.0
        if self.this_order == 2:
            r = (self.lam(sig[i - 2]) - self.lam(sig[i - 1])) / h
            b2 = 2 * ((phi1 / hh - 1) / hh - 0.5) / bh
            rho0, rho_last = (float(v) for v in np.linalg.solve(np.array([[1.0, 1.0], [r, 1.0]]), np.array([b1, b2])))
            corr = rho0 * (self.x0_hist[-2] - m0) / r
        else:
            rho_last = 0.5
        x_ = (sig[i] / sig[i - 1]) * self.last_sample - alpha * phi1 * m0
        return x_ - alpha * bh * (corr + rho_last * (x0_i - m0))

    def predict(self, i, x, order):
        sig, m0 = self.sigmas, self.x0_hist[-1]
        if sig[i + 1] == 0.0:
            return m0  # lambda = +inf: the last step returns x0
        h = self.lam(sig[i + 1]) - self.lam(sig[i])
        phi1 = bh = math.expm1(-h)
        alpha = 1.0 - sig[i + 1]
        x_ = (sig[i + 1] / sig[i]) * x - alpha * phi1 * m0
        if order == 2:
            r = (self.lam(sig[i - 1]) - self.lam(sig[i])) / h
            x_ = x_ - alpha * bh * 0.5 * (self.x0_hist[-2] - m0) / r
        return x_


def make_solver(name, sigmas):
    if name == "unipc":
        return UniPC(sigmas)
    if name == "euler":
        return Euler(sigmas)
    raise ValueError(f"unknown sampler {name!r} (unipc or euler)")


@torch.no_grad()
def sample(dit, noise, ctx_cond, ctx_uncond, steps, shift, guidance, sampler="unipc", autocast_dtype=None):
    """Denoises noise [B, 16, F, H, W] with CFG. ctx_* [B, text_len, text_dim] padded T5 outputs."""
    sigmas, ts = inference_schedule(steps, shift)
    solver = make_solver(sampler, sigmas)
    b = noise.shape[0]
    ctx = dit.embed_text(torch.cat([ctx_cond, ctx_uncond]))  # constant over the steps
    x = noise.float()
    for i, t in enumerate(ts):
        tt = torch.full((2 * b,), t, dtype=torch.long, device=x.device)
        with torch.autocast(device_type=x.device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            v2 = dit(torch.cat([x, x]), tt, ctx, context_embedded=True).float()
        v_c, v_u = v2[:b], v2[b:]
        x = solver.step(i, x, v_u + guidance * (v_c - v_u))
    return x
