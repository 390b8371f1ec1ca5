"""Sparse inference: ISTA, FISTA and the learned encoder LISTA (docs/models.md §1).

    E(x, z) = ½‖x − W_d z‖² + λ‖z‖₁                       energy, x ∈ R^n, z ∈ R^m, W_d (n×m)
    ISTA:   z ← h_{λ/L}(z − (1/L)·W_dᵀ(W_d z − x)),       L ≥ λ_max(W_dᵀW_d) = ‖W_d‖₂²
    FISTA:  z^k = h_{λ/L}(y^k − (1/L)·W_dᵀ(W_d y^k − x)),
            t_{k+1} = (1 + sqrt(1 + 4 t_k²))/2,  y^{k+1} = z^k + ((t_k − 1)/t_{k+1})(z^k − z^{k−1})
            (Beck & Teboulle 2009; y¹ = z⁰, t₁ = 1)
    LISTA:  z¹ = h_θ(W_e x);  z^{k+1} = h_θ(W_e x + S z^k),  k = 1…T−1   (Gregor & LeCun 2010)
            initialised from ISTA: W_e = W_dᵀ/L, S = I − W_dᵀW_d/L, θ = λ/L; untied: W_e^k, S^k, θ^k per step
    LISTA-CP / ALISTA (`CoupledLISTA`), z⁰ = 0, k = 0…T−1:
            z^{k+1} = h^{ss(p_k)}_{θ_k}(z^k + γ_k W_kᵀ(x − W_d z^k))
            the weights coupled to W_d (S_k = I − γ_k W_kᵀW_d: Chen et al. 2018's necessary condition for
            convergence); LISTA-CP learns W_k (n×m) and θ_k (m,) per layer, γ_k = 1, init W_k = W_d/L,
            θ_k = λ/L; ALISTA (Liu et al. 2019) fixes W to the analytic
            w_i = (W_dW_dᵀ)⁻¹d_i / (d_iᵀ(W_dW_dᵀ)⁻¹d_i) = argmin ‖WᵀW_d‖_F s.t. diag(WᵀW_d) = 1
            and learns only the scalars γ_k, θ_k (ridge ρ > 0: (W_dW_dᵀ + ρI)⁻¹, see analytic_weight).
            Support selection h^{ss(p)}: the fraction p of each
            code's largest |u_i| pass unshrunk, p_k = min((k+1)·p, 10·p) (0: plain shrinkage).

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


def shrink_support(u: torch.Tensor, theta, keep: float, nonneg: bool = False) -> torch.Tensor:
    """h^{ss}: soft thresholding, except that each row's fraction `keep` of largest |u_i| pass unshrunk
    (support selection, Chen et al. 2018: entries that are surely in the support are not biased)."""
    h = shrink_nonneg(u, theta) if nonneg else shrink(u, theta)
    if keep <= 0:
        return h
    k = min(max(1, int(round(keep * u.shape[1]))), u.shape[1])
    score = u if nonneg else u.abs()
    kth = score.detach().topk(k, dim=1).values[:, -1:]  # (B, 1): the k-th largest of each row
    passed = torch.relu(u) if nonneg else u
    return torch.where(score >= kth, passed, h)


class LISTA(nn.Module):
    """T unrolled, learned ISTA steps. Tied: W_e (m×n), S (m×m), θ (m,) — one threshold per unit;
    untied (tied=False): W_e (T, m, n), S (T−1, m, m), θ (T, m), a set per step, each initialised from ISTA."""

    def __init__(self, W_d: torch.Tensor, lam: float, steps: int, *, nonneg: bool = False, L: float | None = None,
                 tied: bool = True):
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps: LISTA needs at least one step, got {steps}")
        W_d = W_d.detach()
        L = lipschitz(W_d) if L is None else L
        m = W_d.shape[1]
        self.steps, self.nonneg, self.tied = steps, nonneg, tied
        W_e = W_d.T / L  # (m, n)
        S = torch.eye(m, dtype=W_d.dtype, device=W_d.device) - W_d.T @ W_d / L  # (m, m)
        theta = torch.full((m,), lam / L, dtype=W_d.dtype, device=W_d.device)  # (m,)
        if not tied:
            W_e, S, theta = W_e.repeat(steps, 1, 1), S.repeat(max(steps - 1, 1), 1, 1), theta.repeat(steps, 1)
        self.W_e, self.S, self.theta = nn.Parameter(W_e), nn.Parameter(S), nn.Parameter(theta)

    def h(self, u: torch.Tensor, k: int = 0) -> torch.Tensor:
        theta = self.theta if self.tied else self.theta[k]
        return shrink_nonneg(u, theta) if self.nonneg else shrink(u, theta)

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        steps = steps or self.steps
        if not self.tied and steps > self.steps:
            raise ValueError(f"steps: an untied LISTA has {self.steps} steps, asked for {steps}")
        if self.tied:
            b = x @ self.W_e.T  # (B, m)
            z = self.h(b)  # z¹
            for _ in range(steps - 1):
                z = self.h(b + z @ self.S.T)  # (B, m)
            return z
        z = self.h(x @ self.W_e[0].T, 0)
        for k in range(1, steps):
            z = self.h(x @ self.W_e[k].T + z @ self.S[k - 1].T, k)  # (B, m)
        return z


def analytic_weight(W_d: torch.Tensor, ridge: float | torch.Tensor = 0.0) -> torch.Tensor:
    """ALISTA's W (n×m): argmin ‖WᵀW_d‖²_F + ρ‖W‖²_F subject to diag(WᵀW_d) = 1, column by column in closed
    form (Lagrange: w_i ∝ (W_dW_dᵀ + ρI)⁻¹d_i). ρ = 0 is the paper's; ρ > 0 keeps W off the directions the
    atoms barely span (ρ → ∞: w_i ∝ d_i, ISTA's direction). ρ = 0 needs W_dW_dᵀ invertible."""
    W_d = W_d.detach().double()
    g = W_d @ W_d.T + ridge * torch.eye(W_d.shape[0], dtype=W_d.dtype, device=W_d.device)  # (n, n)
    if not isinstance(ridge, torch.Tensor) and ridge <= 0 and torch.linalg.matrix_rank(g) < g.shape[0]:
        raise ValueError("W_d: the atoms do not span the input space; ALISTA's analytic weight needs W_dW_dᵀ invertible")
    v = torch.linalg.solve(g, W_d)  # (n, m): (W_dW_dᵀ)⁻¹d_i
    return v / (W_d * v).sum(dim=0, keepdim=True)


class CoupledLISTA(nn.Module):
    """LISTA-CP (weights="coupled") and ALISTA (weights="analytic"); equations at the top of the module.
    Parameters: coupled — W (T, n, m), θ (T, m); analytic — γ (T,), θ (T,) with the fixed W (n, m) a buffer."""

    def __init__(self, W_d: torch.Tensor, lam: float, steps: int, *, weights: str = "coupled", support: float = 0.0,
                 nonneg: bool = False, L: float | None = None, ridge: float = 0.0):
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps: LISTA needs at least one step, got {steps}")
        if weights not in ("coupled", "analytic"):
            raise ValueError(f"weights: 'coupled' or 'analytic', got {weights!r}")
        if not 0 <= support < 0.1:
            raise ValueError(f"support: the support-selection fraction lies in [0, 0.1), got {support}")
        W_d = W_d.detach()
        L = lipschitz(W_d) if L is None else L
        m, kw = W_d.shape[1], {"dtype": W_d.dtype, "device": W_d.device}
        self.steps, self.weights, self.support, self.nonneg = steps, weights, support, nonneg
        self.register_buffer("W_d", W_d.clone())  # (n, m): the dictionary the codes are for
        if weights == "coupled":
            self.W = nn.Parameter((W_d / L).repeat(steps, 1, 1))  # (T, n, m)
            self.theta = nn.Parameter(torch.full((steps, m), lam / L, **kw))  # (T, m)
        else:
            self.ridge = ridge
            self.register_buffer("W_analytic", torch.empty_like(W_d))  # (n, m)
            self.set_dictionary(W_d)
            L_w = float(torch.linalg.matrix_norm(self.W_analytic.T @ W_d, ord=2))  # a stable first step size
            self.gamma = nn.Parameter(torch.full((steps,), 1.0 / L_w, **kw))  # (T,)
            self.theta = nn.Parameter(torch.full((steps,), lam / L, **kw))  # (T,)

    @torch.no_grad()
    def set_dictionary(self, W_d: torch.Tensor) -> None:
        """Follow a dictionary that is still being learned (and, for ALISTA, recompute W from it). ALISTA's
        ridge is relative: ρ = ridge · tr(W_dW_dᵀ)/n, the mean eigenvalue of W_dW_dᵀ."""
        self.W_d.copy_(W_d.detach())
        if self.weights == "analytic":
            rho = self.ridge * W_d.detach().pow(2).sum() / W_d.shape[0] if self.ridge > 0 else 0.0  # no host sync
            self.W_analytic.copy_(analytic_weight(W_d, rho).to(W_d.dtype))

    def layer(self, z: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
        """z^{k+1} from z^k: (B, m), (B, n) → (B, m)."""
        residual = x - z @ self.W_d.T  # (B, n)
        if self.weights == "coupled":
            u = z + residual @ self.W[k]
        else:
            u = z + self.gamma[k] * (residual @ self.W_analytic)
        keep = min((k + 1) * self.support, 10 * self.support)
        return shrink_support(u, self.theta[k], keep, self.nonneg)

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        steps = steps or self.steps
        if steps > self.steps:
            raise ValueError(f"steps: this encoder has {self.steps} layers, asked for {steps}")
        z = torch.zeros(x.shape[0], self.W_d.shape[1], dtype=x.dtype, device=x.device)
        for k in range(steps):
            z = self.layer(z, x, k)
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


@torch.no_grad()
def accuracy_gap(x: torch.Tensor, W_d: torch.Tensor, lam: float, z: torch.Tensor, z_star: torch.Tensor,
                 measure: str = "energy") -> float:
    """How far codes z (B, m) are from the optimum z* (B, m): "energy" — mean E(x, z) − mean E(x, z*);
    "code" — relative squared distance Σ‖z − z*‖² / Σ‖z*‖² (the literature's NMSE)."""
    if measure == "energy":
        return float(energy(x, W_d, z, lam).mean() - energy(x, W_d, z_star, lam).mean())
    if measure == "code":
        return float((z - z_star).pow(2).sum() / z_star.pow(2).sum().clamp_min(1e-30))
    raise ValueError(f"measure: 'energy' or 'code', got {measure!r}")


@torch.no_grad()
def iterations_to_accuracy(x: torch.Tensor, W_d: torch.Tensor, lam: float, target: float, z_star: torch.Tensor, *,
                           measure: str = "energy", max_steps: int = 1000, accelerate: bool = True,
                           nonneg: bool = False, L: float | None = None) -> int | None:
    """Fewest FISTA (accelerate) or ISTA iterations k whose `accuracy_gap` is ≤ target (the first k that gets
    there; FISTA's energy is not monotone), or None if max_steps do not."""
    its = proximal_iterates(x, W_d.detach(), l1_prox(lam, nonneg), max_steps, accelerate=accelerate, L=L)
    for k, z in enumerate(its, start=1):
        if accuracy_gap(x, W_d, lam, z, z_star, measure) <= target:
            return k
    return None
