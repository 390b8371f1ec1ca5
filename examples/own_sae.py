"""A sparse auto-encoder of your own, trained here and watched live in Pinwheel (pinwheel.log).

    pinwheel login http://127.0.0.1:8000          # once (or PINWHEEL_URL / PINWHEEL_TOKEN, or --url/--token)
    python examples/own_sae.py --steps 3000

The model: ReLU encoder z = relu(W_e x + b), decoder x̂ = W_d z with unit-norm columns, loss
½‖x − x̂‖² + λ‖z‖₁, trained with Adam on whitened natural-image patches (the photographs scikit-image
ships, whitened as in pinwheel.data.natural; nothing is downloaded). Its filters (columns of W_d) go
from noise towards localised edge-like atoms (3,000 steps: ~19 of 64 units active a patch, 30 % relative
error at λ 0.5). Cancel on the run's page and the loop stops at its next step.
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import torch

import pinwheel.log
from pinwheel.data.natural import extract_patches, whitened_images


def patches(size: int, count: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = extract_patches(whitened_images(None), size, count, rng)
    return torch.from_numpy(x.reshape(count, -1))


class SparseAutoEncoder(torch.nn.Module):
    def __init__(self, d: int, m: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W_e = torch.nn.Parameter(torch.randn(m, d, generator=g) / math.sqrt(d))
        self.b = torch.nn.Parameter(torch.zeros(m))
        self.W_d = torch.nn.Parameter(self.W_e.detach().T.clone())
        self.normalise()

    @torch.no_grad()
    def normalise(self) -> None:  # unit-norm dictionary atoms: λ‖z‖₁ cannot be dodged by scaling
        self.W_d /= self.W_d.norm(dim=0, keepdim=True) + 1e-8

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.relu(x @ self.W_e.T + self.b)
        return z, z @ self.W_d.T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="the Pinwheel server (default: PINWHEEL_URL or `pinwheel login`)")
    ap.add_argument("--token", help="a member's token (default: PINWHEEL_TOKEN or `pinwheel login`)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--units", type=int, default=64, help="a square number: the filters are drawn on a grid")
    ap.add_argument("--patch", type=int, default=12)
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="own SAE (examples/own_sae.py)")
    ap.add_argument("--min-interval", type=float, default=1.0, help="least seconds between frames sent")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    data = patches(args.patch, 20_000, args.seed)
    probe = data[:64]  # a fixed batch for the panels, so frames compare across steps
    model = SparseAutoEncoder(data.shape[1], args.units, args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    config = {k: v for k, v in vars(args).items() if k not in ("url", "token", "min_interval")}
    run = pinwheel.log.init(args.url, args.token, name=args.name, config=config, total_steps=args.steps,
                            min_interval=args.min_interval)
    print(run.url, flush=True)

    step = 0
    for step in range(args.steps + 1):
        x = data[torch.randint(len(data), (args.batch,))]
        z, x_hat = model(x)
        recon = 0.5 * ((x - x_hat) ** 2).sum(dim=1).mean()
        sparsity = z.abs().sum(dim=1).mean()
        loss = recon + args.lam * sparsity
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.normalise()
        if step % args.log_every == 0 or step == args.steps:
            with torch.no_grad():
                z_p, x_hat_p = model(probe)
            run.log(step, metrics={"loss": loss.item(), "reconstruction": recon.item(), "l1": sparsity.item(),
                                   "l0": (z > 0).float().sum(dim=1).mean().item()},
                    filters=model.W_d.T, layout="grid", codes=z_p, inputs=probe, reconstructions=x_hat_p)
        if run.should_stop:
            print(f"cancelled from the page at step {step}", flush=True)
            break
    status = run.finish(weights={"W_e": model.W_e, "W_d": model.W_d, "b": model.b})
    print(f"{status} at step {step}: {run.url}", flush=True)


if __name__ == "__main__":
    main()
