"""Fine-tunes the VAE decoder (decoder + conv2) of a training work folder against its FROZEN encoder.

After a warm start (warm_start.py) the encoder was trained briefly against the shipped decoder, so its
reconstructions are poor (hue shifts) and the DiT learns latents that decode with the wrong colours.
Training the decoder on the encoder's own latents fixes the decoding without moving the latent space the
DiT was trained on: latents.pt and dit.pt stay valid. Rewrites WORK/vae.pt (same format, state kept).
Usage: python3 tools/train/refine_decoder.py --work DIR [--seconds 150]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.add_repo_paths()
import encode_latents  # noqa: E402
import warm_start  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    cfg = common.preset("default")
    log = common.Log(os.path.join(args.work, "train.log"))
    device, amp = common.device_and_autocast()
    path = os.path.join(args.work, "vae.pt")
    ck = common.load_checkpoint(path, device)
    vae = encode_latents.load_vae(args.work, cfg, device)
    refine = warm_start.train_vae_part(cfg, vae, args.seconds, log, device, amp, args.seed,
                                      prefixes=("decoder.", "conv2."))
    state = dict(ck["state"], decoder_refine=refine, val_psnr_db=refine["val_psnr_db"])
    fresh = torch.optim.AdamW(vae.parameters())
    common.save_checkpoint({"vae": vae.state_dict(), "opt": fresh.state_dict(), "state": state}, path)
    log(f"refine_decoder: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
