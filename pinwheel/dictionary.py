"""Online dictionary learning (Mairal, Bach, Ponce & Sapiro, ICML 2009 / JMLR 2010): the `online`
dictionary update of the sparse-coding form (docs/models.md §3), and the batched FISTA it codes with.

After coding a batch x (B, n) as z (B, m) with the current W (n, m), the sufficient statistics of
every batch so far are updated with forgetting β_t,

    A ← β_t A + zᵀz / B        (m, m)          B ← β_t B + xᵀz / B        (n, m)

and define the surrogate  f̂(W) = ½ Tr(Wᵀ W A) − Tr(Wᵀ B),  the (weighted) mean of ½‖x − W z‖² over
the past batches with their codes held fixed, up to a constant. One sweep of block-coordinate
descent on f̂ over the unit ball ‖w_k‖ ≤ 1, one column at a time in order (Gauss–Seidel):

    u_k = w_k + (b_k − W a_k) / A_kk,          w_k ← u_k / max(1, ‖u_k‖)

In w_k alone f̂ = ½ A_kk ‖w_k‖² − w_kᵀ(b_k − Σ_{j≠k} w_j A_jk) + const is an isotropic quadratic, so
projecting its unconstrained minimiser u_k onto the ball gives its exact minimiser on the ball.

Forgetting, t = 0, 1, … counting batches (batch 0 gets β_0 = 0: the statistics start from it):
    rho = ρ:   β_t = (1 − 1/(t + 1))^ρ        (Mairal et al., JMLR 2010, §3.4: scaling the past data)
so batch s weighs (s + 1)^ρ in A_t: early batches, coded with a poor dictionary, fade; ρ = 0 never
forgets. rho = None: scikit-learn's MiniBatchDictionaryLearning schedule,
    θ_t = (t + 1)·B  for t < B − 1,  else  B² + t + 1 − B;     β_t = (θ_t + 1 − B) / (θ_t + 1)
(≈ ρ = 1 for the first B batches, then far slower forgetting). The model uses ρ = 4
(`online_forgetting`): on whitened 12×12 patches it reaches scikit-learn's schedule's held-out
objective in a third of the time (docs/sparse_coding_speed.md).

Why this beats Adam on W_d (the `adam` update): Adam moves every entry by about lr per step whatever
the gradient's size, so near the optimum, where the mini-batch gradient is mostly noise, the atoms
keep jittering at a radius set by lr (the noise floor where the objective goes flat), and an atom
used rarely moves as fast as one used on every patch. The surrogate's minimiser averages all past
batches (the effective step shrinks like 1/t, so the noise averages out) and divides by the curvature
A_kk of each column (a Newton step per atom): no learning rate at all.

Atoms never used (A_kk ≤ 1e-6) are restarted from the batch patches the dictionary reconstructs worst,
normalised (scikit-learn: a random patch plus noise; worst-fit needs no random state to checkpoint).
Everything stays on the tensors' device with no host synchronisation; on the CPU the sweep runs in
NumPy on views of the same memory (256 small torch calls per sweep cost 6× more than the arithmetic).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

MIN_USAGE = 1e-6  # A_kk below this: the atom is unused (the threshold of scikit-learn and SPAMS)


def forgetting(step: int, batch_size: int, rho: float | None = None) -> float:
    """β_t of the module docstring (step t counts from 0); rho None: scikit-learn's schedule."""
    if rho is not None:
        return (step / (step + 1)) ** rho if step else 0.0
    theta = (step + 1) * batch_size if step < batch_size - 1 else batch_size**2 + step + 1 - batch_size
    return (theta + 1 - batch_size) / (theta + 1)


@torch.no_grad()
def accumulate_(A: torch.Tensor, B: torch.Tensor, x: torch.Tensor, z: torch.Tensor, beta: float) -> None:
    """A ← βA + zᵀz/b, B ← βB + xᵀz/b in place: A (m, m), B (n, m), x (b, n), z (b, m)."""
    b = x.shape[0]
    A.mul_(beta).addmm_(z.T, z, alpha=1.0 / b)
    B.mul_(beta).addmm_(x.T, z, alpha=1.0 / b)


@torch.no_grad()
def restart_unused_(W: torch.Tensor, A: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Columns of W (n, m) with A_kk ≤ MIN_USAGE ← the worst-reconstructed patches of x (b, n), unit norm,
    the worst first (cycling if more atoms than patches). Returns the (m,) mask of restarted atoms."""
    unused = A.diagonal() <= MIN_USAGE  # (m,)
    if W.device.type == "cpu" and not bool(unused.any()):  # the usual case; a free check on the CPU only
        return unused
    residual = (x - z @ W.T).pow(2).sum(dim=1)  # (b,)
    worst = residual.argsort(descending=True)  # (b,)
    rank = (unused.cumsum(0) - 1).clamp_min(0) % x.shape[0]  # (m,): k-th unused atom takes the k-th worst patch
    fresh = x[worst[rank]].T  # (n, m)
    fresh = fresh / fresh.norm(dim=0, keepdim=True).clamp_min(1e-12)
    W.copy_(torch.where(unused, fresh, W))
    return unused


@torch.no_grad()
def update_columns_(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, loop: str | None = None) -> None:
    """One Gauss–Seidel sweep of block-coordinate descent on f̂ over the unit ball, in place (see top).
    Columns with A_kk ≤ MIN_USAGE are left as they are (their subproblem is flat). loop: "numpy" (CPU only)
    or "torch"; default NumPy on the CPU, torch elsewhere."""
    m = W.shape[1]
    if (loop or ("numpy" if W.device.type == "cpu" else "torch")) == "numpy":  # rows of Wᵀ are contiguous
        Wt, An, Bt = W.detach().numpy().T.copy(), A.numpy(), B.numpy().T
        for k in range(m):
            a_kk = An[k, k]
            if a_kk > MIN_USAGE:
                u = Wt[k] + (Bt[k] - An[k] @ Wt) / a_kk  # A symmetric: row k is column k
                Wt[k] = u / max(float(np.linalg.norm(u)), 1.0)
        W.copy_(torch.from_numpy(Wt.T))
        return
    for k in range(m):  # on an accelerator: no host read-back, the unused test by torch.where
        a_kk = A[k, k]
        u = W[:, k] + (B[:, k] - W @ A[k]) / a_kk.clamp_min(MIN_USAGE)
        u = u / u.norm().clamp_min(1.0)
        W[:, k] = torch.where(a_kk > MIN_USAGE, u, W[:, k])


Prox = Callable[[torch.Tensor, "float | torch.Tensor"], torch.Tensor]


@torch.no_grad()
def fista_codes(x: torch.Tensor, W: torch.Tensor, steps: int, L: float | torch.Tensor, *, lam: float | None = None,
                prox: Prox | None = None) -> torch.Tensor:
    """FISTA on ½‖x − W z‖² + g(z) from z⁰ = 0: the iterates of inference.proximal_iterates, with the gradient
    step folded into one fused product,  y − ∇/L = y (I − WᵀW/L) + Wᵀx/L,  and the momentum by lerp.
    g = λ‖z‖₁ (lam: soft thresholding) or any g given by its prox (v, t) ↦ prox_{t·g}(v).
    x (b, n), W (n, m) → z (b, m). L ≥ ‖W‖₂²: a float or a 0-dim tensor (no host sync)."""
    step = 1.0 / L
    m = W.shape[1]
    G = torch.eye(m, dtype=W.dtype, device=W.device) - (W.T @ W) * step  # (m, m)
    c = (x @ W) * step  # (b, m)
    if prox is None:
        theta = lam * step
        if isinstance(theta, torch.Tensor):
            threshold = lambda v: v - v.clamp(-theta, theta)  # noqa: E731 — soft thresholding, θ on the device
        else:
            threshold = lambda v: torch.nn.functional.softshrink(v, theta)  # noqa: E731
    else:
        threshold = lambda v: prox(v, step)  # noqa: E731
    z = threshold(c)  # z¹ (from y¹ = z⁰ = 0); its momentum term is 0, so y² = z¹
    y, t = z, (1.0 + 5.0**0.5) / 2.0  # t₂
    for _ in range(steps - 1):
        z_next = threshold(torch.addmm(c, y, G))  # (b, m)
        t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        y = torch.lerp(z, z_next, 1.0 + (t - 1.0) / t_next)  # z_next + ((t − 1)/t_next)(z_next − z)
        z, t = z_next, t_next
    return z
