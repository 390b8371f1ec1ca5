"""Sparse inference: ISTA, FISTA and the learned encoder LISTA (docs/models.md §1).

    E(x, z) = ½‖x − W_d z‖² + λ‖z‖₁                       energy, x ∈ R^n, z ∈ R^m, W_d (n×m)
    ISTA:   z ← h_{λ/L}(z − (1/L)·W_dᵀ(W_d z − x)),       L ≥ λ_max(W_dᵀW_d) = ‖W_d‖₂²
    FISTA:  z^k = h_{λ/L}(y^k − (1/L)·W_dᵀ(W_d y^k − x)),
            t_{k+1} = (1 + sqrt(1 + 4 t_k²))/2,  y^{k+1} = z^k + ((t_k − 1)/t_{k+1})(z^k − z^{k−1})
            (Beck & Teboulle 2009; y¹ = z⁰, t₁ = 1)
    LISTA:  z¹ = h_θ(W_e x);  z^{k+1} = h_θ(W_e x + S z^k),  k = 1…T−1   (Gregor & LeCun 2010)
            initialised from ISTA: W_e = W_dᵀ/L, S = I − W_dᵀW_d/L, θ = λ/L

h is shrink_θ(u) = sign(u)·max(|u| − θ, 0) or, for non-negative codes, ReLU(u − θ). Started from
z⁰ = 0, one ISTA step is h(W_dᵀx/L), so a T-step LISTA at its initialisation *is* T steps of ISTA:
"T iterations" means the same amount of computation for all three.

The proximal-gradient loop is generic (`proximal_gradient`): the group-sparse coder passes the
prox of λΩ instead of soft thresholding. Everything is batched, x: (B, n) → z: (B, m), and runs on
whatever device the tensors are on.

Step size without a host synchronisation. `lipschitz` (exact, an SVD read back as a float) is for
analysis and initialisation; a training step uses `lipschitz_bound`, a 0-dim tensor on W's device:
with G = W_dᵀW_d (or W_dW_dᵀ, whichever is smaller; the same non-zero eigenvalues λ_1 ≥ λ_2 ≥ …),
    λ_1^(2^k) = λ_max(G^(2^k)) ≤ ‖G^(2^k)‖_F = (Σ_i λ_i^(2^(k+1)))^(1/2)
so U_k = ‖G^(2^k)‖_F^(2^-k) ≥ λ_1 = L, and U_k/L ≤ r^(2^-(k+1)) for rank r (≤ 1.05 for r ≤ 1000 at
k = 6; 1.000x for the dictionaries here, whose top eigenvalue stands out). G^(2^k) by k squarings,
each renormalised to unit Frobenius norm (c_i), U_k = Π_i c_i^(2^-i): no overflow, no SVD, no sync.
A step 1/U_k ≤ 1/L keeps ISTA/FISTA's convergence guarantee.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Prox = Callable[[torch.Tensor, float], torch.Tensor]  # (v, step t) ↦ prox_{t·penalty}(v)


def shrink(u: torch.Tensor, theta) -> torch.Tensor:
    """Soft thresholding sign(u)·max(|u| − θ, 0); θ a scalar or a (m,) tensor."""
    return torch.sign(u) * torch.relu(u.abs() - theta)


def shrink_nonneg(u: torch.Tensor, theta) -> torch.Tensor:
    """Prox of θ‖z‖₁ + indicator(z ≥ 0): ReLU(u − θ)."""
    return torch.relu(u - theta)


def lipschitz(W_d: torch.Tensor) -> float:
    """L = ‖W_d‖₂², the largest eigenvalue of W_dᵀW_d (the gradient's Lipschitz constant)."""
    return float(torch.linalg.matrix_norm(W_d.detach().float(), ord=2) ** 2)


def lipschitz_bound(W_d: torch.Tensor, squarings: int = 6) -> torch.Tensor:
    """An upper bound U ≥ ‖W_d‖₂² within a factor rank^(2^-(squarings+1)), as a 0-dim tensor (see top)."""
    w = W_d.detach()
    g = w @ w.T if w.shape[0] < w.shape[1] else w.T @ w  # (r, r), r = min(n, m)
    c = torch.linalg.matrix_norm(g).clamp_min(1e-30)  # Frobenius
    a, log_u = g / c, c.log()
    for i in range(1, squarings + 1):
        a = a @ a
        c = torch.linalg.matrix_norm(a).clamp_min(1e-30)
        a, log_u = a / c, log_u + c.log() / 2**i
    return log_u.exp() * (1 + 1e-5)  # the margin covers float32 rounding where λ_1 dominates (U_k ≈ L)


def energy(x: torch.Tensor, W_d: torch.Tensor, z: torch.Tensor, lam: float) -> torch.Tensor:
    """E(x, z) per example: (B, n), (n, m), (B, m) → (B,)."""
    return 0.5 * (x - z @ W_d.T).pow(2).sum(dim=1) + lam * z.abs().sum(dim=1)


def l1_prox(lam: float, nonneg: bool = False) -> Prox:
    h = shrink_nonneg if nonneg else shrink
    return lambda v, t: h(v, lam * t)


def proximal_iterates(x: torch.Tensor, W_d: torch.Tensor, prox: Prox, steps: int, *, accelerate: bool = True,
                      L: float | torch.Tensor | None = None, z0: torch.Tensor | None = None):
    """Yield z^1 … z^steps of ISTA (accelerate=False) or FISTA on ½‖x − W_d z‖² + g(z); g enters by its prox.
    L: a float, a 0-dim tensor (`lipschitz_bound`: no host sync), or None for the exact ‖W_d‖₂² (an SVD)."""
    W_d = W_d.detach()
    if L is None:
        L = max(lipschitz(W_d), 1e-12)
    elif isinstance(L, torch.Tensor):
        L = L.clamp_min(1e-12)
    else:
        L = max(L, 1e-12)
    gram = W_d.T @ W_d  # (m, m)
    wx = x @ W_d  # (B, m): W_dᵀx for every example
    z = torch.zeros(x.shape[0], W_d.shape[1], dtype=x.dtype, device=x.device) if z0 is None else z0.clone()
    y, t, step = z, 1.0, 1.0 / L
    for _ in range(steps):
        grad = y @ gram - wx  # (B, m): W_dᵀ(W_d y − x)
        z_next = prox(y - grad / L, step)
        if accelerate:
            t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
            y = z_next + ((t - 1.0) / t_next) * (z_next - z)
            t = t_next
        else:
            y = z_next
        z = z_next
        yield z


def proximal_gradient(x, W_d, prox: Prox, steps: int, *, accelerate: bool = True, L: float | torch.Tensor | None = None,
                      z0: torch.Tensor | None = None) -> torch.Tensor:
    """The last iterate of `proximal_iterates` (z0, or zeros, when steps = 0)."""
    z = torch.zeros(x.shape[0], W_d.shape[1], dtype=x.dtype, device=x.device) if z0 is None else z0
    for z in proximal_iterates(x, W_d, prox, steps, accelerate=accelerate, L=L, z0=z0):
        pass
    return z


@torch.no_grad()
def ista(x, W_d, lam: float, steps: int, *, nonneg: bool = False, L: float | torch.Tensor | None = None, z0=None) -> torch.Tensor:
    return proximal_gradient(x, W_d, l1_prox(lam, nonneg), steps, accelerate=False, L=L, z0=z0)


@torch.no_grad()
def fista(x, W_d, lam: float, steps: int, *, nonneg: bool = False, L: float | torch.Tensor | None = None, z0=None) -> torch.Tensor:
    return proximal_gradient(x, W_d, l1_prox(lam, nonneg), steps, accelerate=True, L=L, z0=z0)


class LISTA(nn.Module):
    """T unrolled, learned ISTA steps. Parameters W_e (m×n), S (m×m), θ (m,) — one threshold per unit."""

    def __init__(self, W_d: torch.Tensor, lam: float, steps: int, *, nonneg: bool = False, L: float | None = None):
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps: LISTA needs at least one step, got {steps}")
        W_d = W_d.detach()
        L = lipschitz(W_d) if L is None else L
        m = W_d.shape[1]
        self.steps, self.nonneg = steps, nonneg
        self.W_e = nn.Parameter(W_d.T / L)  # (m, n)
        self.S = nn.Parameter(torch.eye(m, dtype=W_d.dtype, device=W_d.device) - W_d.T @ W_d / L)  # (m, m)
        self.theta = nn.Parameter(torch.full((m,), lam / L, dtype=W_d.dtype, device=W_d.device))  # (m,)

    def h(self, u: torch.Tensor) -> torch.Tensor:
        return shrink_nonneg(u, self.theta) if self.nonneg else shrink(u, self.theta)

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        b = x @ self.W_e.T  # (B, m)
        z = self.h(b)  # z¹
        for _ in range((steps or self.steps) - 1):
            z = self.h(b + z @ self.S.T)  # (B, m)
        return z


def iterations_to_match(target: torch.Tensor, x: torch.Tensor, W_d: torch.Tensor, lam: float, max_steps: int,
                        *, nonneg: bool = False, accelerate: bool = True, tolerance: float = 0.05) -> int | None:
    """Fewest FISTA (or ISTA) iterations whose mean energy is within `tolerance` of `target` (a mean energy).

    Returns None if even max_steps iterations do not get there.
    """
    with torch.no_grad():
        its = proximal_iterates(x, W_d, l1_prox(lam, nonneg), max_steps, accelerate=accelerate)
        for k, z in enumerate(its, start=1):
            if float(energy(x, W_d, z, lam).mean()) <= float(target) * (1.0 + tolerance):
                return k
    return None
