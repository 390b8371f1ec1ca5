"""Locally connected auto-encoder over whole images, no weight sharing (docs/models.md §5).

Units u = 1…U sit on a G×G grid over an H×W image (one every `stride` pixels, or G per side
spread evenly, several units then sharing a field); unit u sees
only its own k×k receptive field R(u) and owns its weights (nothing is shared):

    P = unfold_k,s(x)                                (B, k², U): the patch under every unit
    z_u = ReLU(⟨W_e[u], P[:, :, u]⟩ + b_u)           encoder, W_e: (U, k²)
    x̂ = fold_k,s(W_d[u] z_u)                         decoder: each unit paints its atom back at R(u)
    L(x) = ½‖x − x̂‖² + λ Σ_j sqrt(Σ_{u∈P_j} w_ju z_u²),   ‖W_d[u]‖ ≤ 1

Groups P_j are Gaussian-weighted pool×pool neighbourhoods on the unit grid (one per unit, cut
at the grid's edges: the grid covers an image, not a torus); optionally the Gaussian starts
wide and shrinks over the first steps, as a Kohonen map's neighbourhood does. Neighbours see almost the same
pixels and are pushed to be active together, so they become similar; reconstruction needs
every orientation within each receptive field, so orientation must also change — the
compromise is a continuous orientation map with pin-wheels (Gregor & LeCun 2010).
Unfold / fold and broadcast products do all units at once; there is no loop over units.

Sub-pixel retinotopy (`envelope_sigma`, `RetinotopicLayer`): unit (i, j) of the G×G grid has its own centre
c_u = (i, j)·H/G and its weights act through a fixed envelope, W[u] ⊙ E_u, E_u(p) = exp(−|p − c_u|²/2σ²) on
the k×k window nearest c_u; no two units see the same input (shared fields pushed neighbours apart).
Nothing in a training step leaves the device: the annealed pools are rebuilt there from the grid's
axes (one 1-D kernel per side), and the augmentation's symmetries are drawn with the run's generator (saved in
the checkpoint, so a resumed run is the straight run) and applied as one gather of pixels.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..configs.local_filters import LocalFiltersConfig
from ..data import to_device
from .base import PinwheelModel, to_numpy

EPS = 1e-8


def axis_kernel(axis: torch.Tensor, half: int, sigma: float | None, period: int | None = None) -> torch.Tensor:
    """(n, n): exp(−d²/2σ²) (1 when sigma is None) for units d apart along one side, 0 beyond `half`;
    with a period, d is the distance around the ring (the unit grid is a torus)."""
    d = axis[:, None] - axis[None, :]
    if period is not None:
        d = torch.remainder(d + period / 2, period) - period / 2  # shortest way round: [−n/2, n/2)
    k = torch.exp(-d**2 / (2 * sigma**2)) if sigma is not None else torch.ones_like(d)
    return k * (d.abs() <= half)


def axis_pool(axis: torch.Tensor, pool: int, sigma: float | None, wrap: bool = False) -> torch.Tensor:
    """(n, n) float32: one side's factor of the pools, `axis_kernel` with its rows normalised to sum 1."""
    k = axis_kernel(axis, pool // 2, sigma, len(axis) if wrap else None)
    return (k / k.sum(dim=1, keepdim=True)).float()


def pools_at(rows_axis: torch.Tensor, cols_axis: torch.Tensor, pool: int, sigma: float | None,
             wrap: bool = False) -> torch.Tensor:
    """One group per unit: its pool×pool neighbourhood on the grid (wrapping round a torus with `wrap`) →
    (units, units) float32, built on the axes' device (float64 positions along each side, units row-major).

    Weights are exp(−d²/2σ²) inside the window (flat when sigma is None), normalised to sum 1 per group.
    Window and Gaussian both factor over rows and columns, so the matrix is the Kronecker product of the
    two sides' kernels and its row sums the product of theirs.
    """
    rows, cols = (len(rows_axis), len(cols_axis)) if wrap else (None, None)
    kr, kc = axis_kernel(rows_axis, pool // 2, sigma, rows), axis_kernel(cols_axis, pool // 2, sigma, cols)
    w = torch.kron(kr, kc) / torch.kron(kr.sum(dim=1), kc.sum(dim=1))[:, None]  # Σ_i w_ji = 1
    return w.float()  # (groups, units)


def grid_pools(rows: int, cols: int, pool: int, sigma: float | None, wrap: bool = False) -> torch.Tensor:
    """`pools_at` on a rows×cols grid, on the CPU."""
    axis = lambda n: torch.arange(n, dtype=torch.float64)  # noqa: E731
    return pools_at(axis(rows), axis(cols), pool, sigma, wrap)


def pool_schedule(config: LocalFiltersConfig, step: int) -> tuple[int, float | None]:
    """(window side, σ) of the pools at `step`: σ shrinks linearly from anneal_sigma_from to pool_sigma."""
    if config.anneal_sigma_from is None or step >= config.anneal_steps:
        return config.pool, config.pool_sigma
    t = step / config.anneal_steps
    sigma = (1 - t) * config.anneal_sigma_from + t * config.pool_sigma
    return max(config.pool, 2 * math.ceil(2 * sigma) + 1), sigma


def field_offsets(image_side: int, k: int, stride: int, grid: int | None, wrap: bool = False) -> np.ndarray:
    """Top-left pixel of the receptive fields along one side of the unit grid (on a periodic image every
    pixel can be a top-left corner: fields run over the edge and wrap round)."""
    if wrap:
        count = grid if grid is not None else -(-image_side // stride)
        return np.floor(np.arange(count) * image_side / count + 1e-9).astype(np.int64)  # evenly round the period
    if grid is not None:
        return np.rint(np.linspace(0, image_side - k, grid)).astype(np.int64)
    return np.arange(0, image_side - k + 1, stride, dtype=np.int64)


def unit_positions(offsets: np.ndarray) -> np.ndarray:
    """Top-left pixel (row, col) of every unit's receptive field, row-major on the grid → (U, 2)."""
    return np.stack(np.meshgrid(offsets, offsets, indexing="ij"), axis=-1).reshape(-1, 2)


def periodic_component(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(B, H·W) → (B, H·W): the periodic component p of each image, x = p + s (Moisan 2011).

    s is the smooth image whose discrete Laplacian equals the jumps across opposite edges,
    Δs = v with v = (x_last − x_first) on the first row / column and the opposite on the last, so p has
    no seam when the image is wrapped onto a torus and keeps the image's content elsewhere:
    ŝ(q, r) = v̂(q, r) / (2 cos 2πq/H + 2 cos 2πr/W − 4), ŝ(0, 0) = 0.
    """
    h, w = shape
    img = x.view(-1, h, w)
    v = torch.zeros_like(img)
    v[:, 0, :] += img[:, -1, :] - img[:, 0, :]
    v[:, -1, :] += img[:, 0, :] - img[:, -1, :]
    v[:, :, 0] += img[:, :, -1] - img[:, :, 0]
    v[:, :, -1] += img[:, :, 0] - img[:, :, -1]
    q = torch.arange(h, device=x.device, dtype=x.dtype)[:, None]
    r = torch.arange(w, device=x.device, dtype=x.dtype)[None, :]
    denom = 2 * torch.cos(2 * math.pi * q / h) + 2 * torch.cos(2 * math.pi * r / w) - 4  # (H, W), 0 at (0, 0)
    denom[0, 0] = 1.0
    s_hat = torch.fft.fft2(v) / denom
    s_hat[:, 0, 0] = 0
    return (img - torch.fft.ifft2(s_hat).real).reshape(x.shape)


def dihedral_pixels(shape: tuple[int, int]) -> torch.Tensor:
    """(8, H·W) int64: for each symmetry of the square (rotations by k·90°, then the same flipped), the
    source pixel of every output pixel."""
    src = torch.arange(shape[0] * shape[1]).view(*shape)
    variants = [torch.rot90(src, k, dims=(0, 1)) for k in range(4)]
    return torch.stack(variants + [v.flip(1) for v in variants]).flatten(1)


def dihedral(x: torch.Tensor, shape: tuple[int, int], generator: torch.Generator | None = None,
             pixels: torch.Tensor | None = None) -> torch.Tensor:
    """Each square image of x (B, H·W) under one of the 8 symmetries of the square, drawn uniformly with
    `generator` (a CPU generator: the run's) — the same draws on every device.

    A rotation by 90° sends orientation θ to θ + π/2 and a flip sends θ to −θ, so the batch's
    mean orientation moment E[r·e^{2iθ}] becomes zero whatever the photographs favour.
    pixels: dihedral_pixels(shape) on x's device (built here when not given).
    """
    b = x.shape[0]
    which = to_device(torch.randint(0, 8, (b,), generator=generator), x.device)  # (B,)
    if pixels is None:
        pixels = dihedral_pixels(shape).to(x.device)
    return x.gather(1, pixels[which])  # (B, H·W): a permutation of each image's pixels


class LocallyConnected(nn.Module):
    """Encoder and decoder of a locally connected layer (one k×k filter per unit, no sharing)."""

    def __init__(self, image_shape: tuple[int, int], k: int, stride: int, generator: torch.Generator,
                 grid: int | None = None, wrap: bool = False):
        super().__init__()
        self.image_shape, self.k, self.wrap = tuple(image_shape), k, wrap
        self.offsets = field_offsets(image_shape[0], k, stride, grid, wrap)
        self.side = len(self.offsets)
        units = self.side * self.side
        h = image_shape[0]
        self.n_fields = h if wrap else h - k + 1  # field positions per side at stride 1
        if wrap:  # pixel of the periodic image under every pixel of the padded one, (H+k−1)² → H²
            ring = torch.arange(h + k - 1) % h
            self.register_buffer("wrapped_pixel", (ring[:, None] * h + ring[None, :]).flatten(), persistent=False)
        pos = unit_positions(self.offsets)
        index = pos[:, 0] * self.n_fields + pos[:, 1]
        self.register_buffer("field_index", torch.from_numpy(index))  # (U,)
        self.every_field = bool(np.array_equal(index, np.arange(self.n_fields**2)))  # one unit per field, in order
        # every field position used by the same number of units (`per`): units sorted by field then do all
        # their dot products as one batched matrix product over fields, (B, k²) @ (k², per) for each
        counts = np.bincount(index, minlength=self.n_fields**2)
        self.per_field = int(counts[0]) if counts.min() == counts.max() and counts[0] > 1 else 0
        order = np.argsort(index, kind="stable")  # units field by field
        self.register_buffer("by_field", torch.from_numpy(order), persistent=False)  # (U,)
        self.register_buffer("from_field", torch.from_numpy(np.argsort(order)), persistent=False)  # inverse
        w = torch.randn(units, k * k, generator=generator)
        w /= w.norm(dim=1, keepdim=True)
        self.W_e = nn.Parameter(w.clone())  # (U, k²)
        self.W_d = nn.Parameter(w.clone())  # (U, k²)
        self.b = nn.Parameter(torch.zeros(units))  # (U,)

    def atoms(self) -> torch.Tensor:
        """(U, k²): what each unit paints on its field."""
        return self.W_d

    @torch.no_grad()
    def project_(self) -> None:
        self.W_d.div_(self.W_d.norm(dim=1, keepdim=True).clamp_min(1.0))  # each unit's atom ‖W_d[u]‖ ≤ 1

    def positions(self) -> np.ndarray:
        return unit_positions(self.offsets)

    def fields(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H·W) → (B, k², n_fields²): the pixels under every field position."""
        img = x.view(-1, 1, *self.image_shape)
        if self.wrap:  # fields that run over the right / bottom edge continue at the left / top
            img = F.pad(img, (0, self.k - 1, 0, self.k - 1), mode="circular")  # (B, 1, H+k−1, W+k−1)
        return F.unfold(img, self.k)  # (B, k², n_fields²)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H·W) → (B, k², U): the receptive field of every unit."""
        every = self.fields(x)
        return every if self.every_field else every.index_select(2, self.field_index)

    def _per_field(self, w: torch.Tensor) -> torch.Tensor:
        """(U, k²) weights → (n_fields², per, k²), the units of each field together (still one row per unit)."""
        return w.index_select(0, self.by_field).view(self.n_fields**2, self.per_field, -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_field:  # (F, B, k²) @ (F, k², per) → (F, B, per): several units' weights per field
            p = self.fields(x).permute(2, 0, 1).contiguous()  # (F, B, k²); contiguous: else bmm loops per matrix
            z = torch.bmm(p, self._per_field(self.W_e).transpose(1, 2).contiguous())  # (F, B, per)
            z = z.permute(1, 0, 2).reshape(x.shape[0], -1).index_select(1, self.from_field)  # (B, U), grid order
            return torch.relu(z + self.b)
        # ⟨W_e[u], P[:, :, u]⟩ as a broadcast product and a sum over k²: a batched einsum here would run
        # U separate tiny matrix products
        return torch.relu((self.patches(x) * self.W_e.T).sum(dim=1) + self.b)  # (B, U)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.per_field:  # (F, B, per) @ (F, per, k²): each field's units paint their atoms, summed
            zf = z.index_select(1, self.by_field).view(z.shape[0], self.n_fields**2, self.per_field)
            every = torch.bmm(zf.permute(1, 0, 2).contiguous(), self._per_field(self.W_d)).permute(1, 2, 0)  # (B, k², F)
            return self._fold(every)
        cols = z[:, None, :] * self.W_d.T  # (B, k², U)
        if self.every_field:
            every = cols
        else:
            every = cols.new_zeros(cols.shape[0], cols.shape[1], self.n_fields**2)
            every.index_add_(2, self.field_index, cols)  # units sharing a field add up: (B, k², n_fields²)
        return self._fold(every)

    def _fold(self, every: torch.Tensor) -> torch.Tensor:
        """(B, k², n_fields²) → (B, H·W): every field's pixels added back into the image."""
        if not self.wrap:
            return F.fold(every, self.image_shape, self.k).flatten(1)  # (B, H·W)
        h = self.image_shape[0]
        padded = F.fold(every, (h + self.k - 1, h + self.k - 1), self.k).flatten(1)  # (B, (H+k−1)²)
        return padded.new_zeros(padded.shape[0], h * h).index_add(1, self.wrapped_pixel, padded)  # (B, H·W)


def retinotopic_fields(image_side: int, grid: int, k: int, sigma: float,
                       wrap: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel retinotopy: unit (i, j) of the grid×grid units has its own field centre c = (i, j)·H/grid
    (pixels, H/grid apart), a k×k window of the pixels nearest c and on it the envelope
    E_u(p) = exp(−|p − c|²/2σ²), p the window's pixels unwrapped round c. On a periodic image (`wrap`) the
    window wraps round; on a plain one its pixels beyond the edges get envelope 0 (the field is cut there).
    → (pixel (U, k²) int64: flat index of the window's pixels in the H×H image; envelope (U, k²))."""
    centre = torch.arange(grid, dtype=torch.float64) * image_side / grid  # (G,)
    first = torch.round(centre - (k - 1) / 2).to(torch.int64)  # (G,) window's first pixel, may be < 0
    pix = first[:, None] + torch.arange(k)  # (G, k) unwrapped pixel coordinates
    e1 = torch.exp(-(pix - centre[:, None]) ** 2 / (2 * sigma**2))  # (G, k): the envelope factors per side
    if wrap:
        ring = torch.remainder(pix, image_side)  # (G, k)
    else:  # pixels off the image: weight 0 on the nearest pixel (a zero adds nothing, gets no gradient)
        e1 = e1 * ((pix >= 0) & (pix < image_side))
        ring = pix.clamp(0, image_side - 1)
    pixel = ring[:, None, :, None] * image_side + ring[None, :, None, :]  # (G, G, k, k): row-major in the image
    envelope = e1[:, None, :, None] * e1[None, :, None, :]  # (G, G, k, k)
    return pixel.reshape(grid * grid, k * k), envelope.reshape(grid * grid, k * k).float()


class RetinotopicLayer(nn.Module):
    """Locally connected layer with sub-pixel retinotopy (no sharing): unit u's encoder and decoder are its own
    weights times its fixed envelope on its own window, E_u ⊙ W_e[u] and E_u ⊙ W_d[u]; no two units see the
    same weighted input, and grid neighbours' fields are H/grid pixels apart. Each step scatters them into
    dense (U, H·W) matrices, D[u, pixel(u, i)] = E_u[i] W[u, i], so encoding and decoding are one matrix
    product each; the scatter's gradient is a gather, so a weight's gradient comes only from its own unit."""

    def __init__(self, image_shape: tuple[int, int], k: int, grid: int, envelope_sigma: float,
                 generator: torch.Generator, wrap: bool = True):
        super().__init__()
        self.image_shape, self.k, self.side = tuple(image_shape), k, grid
        pixel, envelope = retinotopic_fields(image_shape[0], grid, k, envelope_sigma, wrap)
        self.register_buffer("pixel", pixel, persistent=False)  # (U, k²)
        self.register_buffer("envelope", envelope, persistent=False)  # (U, k²)
        units = grid * grid
        w = torch.randn(units, k * k, generator=generator)
        w /= (w * envelope).norm(dim=1, keepdim=True)  # every unit's atom E ⊙ w of norm 1
        self.W_e = nn.Parameter(w.clone())  # (U, k²)
        self.W_d = nn.Parameter(w.clone())  # (U, k²)
        self.b = nn.Parameter(torch.zeros(units))  # (U,)

    def dense(self, w: torch.Tensor) -> torch.Tensor:
        """(U, k²) weights → (U, H·W): E_u ⊙ w[u] at its window's pixels, 0 elsewhere."""
        h, w_ = self.image_shape
        return w.new_zeros(w.shape[0], h * w_).scatter_add(1, self.pixel, w * self.envelope)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.dense(self.W_e).T + self.b)  # (B, U)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.dense(self.W_d)  # (B, H·W)

    def atoms(self) -> torch.Tensor:
        """(U, k²): what each unit paints, E_u ⊙ W_d[u] on its window."""
        return self.W_d * self.envelope

    @torch.no_grad()
    def project_(self) -> None:
        w = self.W_d
        w.div_((w * self.envelope).norm(dim=1, keepdim=True).clamp_min(1.0))  # ‖E_u ⊙ W_d[u]‖ ≤ 1

    def positions(self) -> np.ndarray:
        """Top-left pixel (row, col) of every unit's window, wrapped into the image → (U, 2)."""
        first = self.pixel[:, 0]
        return torch.stack([first // self.image_shape[1], first % self.image_shape[1]], dim=1).cpu().numpy()


class LocalFiltersAE(PinwheelModel):
    panel_kinds = ("filter_grid", "topographic_map", "sparsity")

    def __init__(self, config: LocalFiltersConfig, input_shape: tuple[int, int], generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        if config.envelope_sigma is not None:  # sub-pixel retinotopy (the config checks that grid is set)
            self.layer = RetinotopicLayer(input_shape, config.receptive_field, config.grid, config.envelope_sigma,
                                          generator, config.wrap)
        else:
            self.layer = LocallyConnected(input_shape, config.receptive_field, config.stride, generator, config.grid,
                                          config.wrap)
        self.side = self.layer.side
        self.generator = generator  # the run's: the augmentation draws from it (it is in the checkpoint)
        self._pools = pool_schedule(config, 0)
        self.register_buffer("group_weights", grid_pools(self.side, self.side, *self._pools, config.wrap))
        self.register_buffer("axis_pool", axis_pool(torch.arange(self.side, dtype=torch.float64), *self._pools,
                                                    config.wrap), persistent=False)  # (G, G): w = A ⊗ A
        # follow the model to its device; not in the state dict (they are functions of the config)
        self.register_buffer("grid_axis", torch.arange(self.side, dtype=torch.float64), persistent=False)  # (G,)
        self.register_buffer("dihedral_pixels", dihedral_pixels(input_shape), persistent=False)  # (8, H·W)

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """What the units see: with `wrap`, the image's periodic component (no seam on the torus)."""
        return periodic_component(x, self.input_shape) if self.config.wrap else x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer.encode(self.image(x))

    def loss(self, x, y, step):
        if pool_schedule(self.config, step) != self._pools:  # annealing: wide pools first, then narrow
            self._pools = pool_schedule(self.config, step)
            self.group_weights.copy_(pools_at(self.grid_axis, self.grid_axis, *self._pools, self.config.wrap))
            self.axis_pool.copy_(axis_pool(self.grid_axis, *self._pools, self.config.wrap))
        if self.config.augment:
            x = dihedral(x, self.input_shape, self.generator, self.dihedral_pixels)
        x = self.image(x)
        z = self.layer.encode(x)  # (B, U)
        x_hat = self.layer.decode(z)  # (B, H·W)
        recon = 0.5 * (x - x_hat).pow(2).sum(dim=1).mean()
        sparsity = torch.sqrt(self.pooled_energy(z) + EPS).sum(dim=1).mean()  # Ω(z)
        c = self.config
        warmup = min(1.0, step / c.lam_warmup_steps) if c.lam_warmup_steps else 1.0
        return recon + warmup * c.lam * sparsity, {
            "reconstruction": recon.detach(), "group_sparsity": sparsity.detach(),
            "active_fraction": (z > 0).float().mean().detach()}

    def pooled_energy(self, z: torch.Tensor) -> torch.Tensor:
        """(B, U) → (B, groups): Σ_u w_ju z_u², the energy of every pool.

        The weights are a Kronecker product over the grid's two sides, w = A ⊗ A (A: `axis_pool`, rows
        normalised), so with the energies on the grid, E = z² as (B, G, G), the pools are A E Aᵀ:
        B·2G³ operations in place of B·G⁴."""
        energy = z.pow(2).view(-1, self.side, self.side)  # (B, G, G)
        return torch.matmul(self.axis_pool, energy @ self.axis_pool.T).flatten(1)  # (B, G²), unit order

    @torch.no_grad()
    def project_(self) -> None:
        self.layer.project_()

    def positions(self) -> np.ndarray:
        return self.layer.positions()

    def filter_bank(self) -> dict:
        k = self.config.receptive_field
        positions = self.positions()
        # fields at their image positions when each unit has its own; with several units to a field
        # (`grid`) the tiles would cover each other there, so they go on the unit grid instead
        own_fields = len(np.unique(positions, axis=0)) == len(positions)
        return {"filters": to_numpy(self.layer.atoms()).reshape(-1, k, k),
                "layout": {"type": "positions" if own_fields else "grid", "positions": positions.tolist(),
                           "image_shape": list(self.input_shape), "rows": self.side, "cols": self.side,
                           "wrap": self.config.wrap,  # a torus over a periodic image, else edges
                           # where the pools are cut at the edges the map is not valid (topography.valid_region)
                           "border": 0 if self.config.wrap else self.config.pool // 2}}

    def weights(self) -> dict[str, np.ndarray]:
        return {"W_e": to_numpy(self.layer.W_e), "W_d": to_numpy(self.layer.W_d), "b": to_numpy(self.layer.b),
                "grid_shape": np.asarray([self.side, self.side], dtype=np.int64),
                "positions": self.positions().astype(np.int64),
                "receptive_field": np.asarray(self.config.receptive_field, dtype=np.int64),
                "input_shape": np.asarray(self.input_shape, dtype=np.int64),
                "group_weights": to_numpy(self.group_weights)}


def build(config: LocalFiltersConfig, dataset, generator: torch.Generator) -> LocalFiltersAE:
    return LocalFiltersAE(config, dataset.shape, generator)
