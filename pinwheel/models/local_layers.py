"""The two locally connected layers of the local-filter model (docs/models.md §5); nothing is shared:

- `LocallyConnected`: units on a grid of integer field positions (several units may share one), each with
  its own k×k weights; unfold / fold and batched products do all units at once.
- `RetinotopicLayer`: sub-pixel retinotopy, every unit its own field centre and a fixed Gaussian envelope
  on its own window; encoding and decoding are one dense matrix product each.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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

    def encoder_filters(self) -> torch.Tensor:
        """(U, k²): what each unit applies to its field."""
        return self.W_e

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


def retinotopic_fields(image_side: int, grid: int, k: int, sigma: float, wrap: bool = True,
                       cut: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel retinotopy: unit (i, j) of the grid×grid units has its own field centre c = (i, j)·H/grid
    (pixels, H/grid apart), a k×k window of the pixels nearest c and on it the envelope
    E_u(p) = exp(−|p − c|²/2σ²), p the window's pixels unwrapped round c, and 0 where |p − c| > cut·σ (`cut`: a
    round field; none: the whole window). On a periodic image (`wrap`) the window wraps round; on a plain one its
    pixels beyond the edges get envelope 0 (the field is cut there).
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
    if cut is not None:  # 0 beyond cut·σ: exp(−d²/2σ²) < exp(−cut²/2) there
        d2 = (pix - centre[:, None]) ** 2  # (G, k)
        envelope = envelope * (d2[:, None, :, None] + d2[None, :, None, :] <= (cut * sigma) ** 2)
    return pixel.reshape(grid * grid, k * k), envelope.reshape(grid * grid, k * k).float()


class RetinotopicLayer(nn.Module):
    """Locally connected layer with sub-pixel retinotopy (no sharing): unit u's encoder and decoder are its own
    weights times its fixed envelope on its own window, E_u ⊙ W_e[u] and E_u ⊙ W_d[u]; no two units see the
    same weighted input, and grid neighbours' fields are H/grid pixels apart. Each step scatters them into
    dense (U, H·W) matrices, D[u, pixel(u, i)] = E_u[i] W[u, i], so encoding and decoding are one matrix
    product each; the scatter's gradient is a gather, so a weight's gradient comes only from its own unit."""

    def __init__(self, image_shape: tuple[int, int], k: int, grid: int, envelope_sigma: float,
                 generator: torch.Generator, wrap: bool = True, cut: float | None = None):
        super().__init__()
        self.image_shape, self.k, self.side = tuple(image_shape), k, grid
        pixel, envelope = retinotopic_fields(image_shape[0], grid, k, envelope_sigma, wrap, cut)
        self.register_buffer("pixel", pixel, persistent=False)  # (U, k²)
        self.register_buffer("envelope", envelope, persistent=False)  # (U, k²)
        units = grid * grid
        # raw weights start inside the envelope, a unit Gaussian vector times E_u (as the topographic preset's
        # windows start): small where E_u is small, so the first Adam steps overwrite the random start. Drawn as
        # w / ‖E ⊙ w‖ (atoms of norm 1, raw weights ≈ 0.3 out to the window's edge) the maps organised about 3×
        # slower (seed 2: smoothness 0.51 against 0.72 at 5,000 steps, docs/pinwheels.md)
        w = torch.randn(units, k * k, generator=generator)
        w = w / w.norm(dim=1, keepdim=True) * envelope  # (U, k²); atoms E ⊙ w of norm < 1
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

    def encoder_filters(self) -> torch.Tensor:
        """(U, k²): what each unit applies to its window, E_u ⊙ W_e[u]."""
        return self.W_e * self.envelope

    @torch.no_grad()
    def project_(self) -> None:
        w = self.W_d
        w.div_((w * self.envelope).norm(dim=1, keepdim=True).clamp_min(1.0))  # ‖E_u ⊙ W_d[u]‖ ≤ 1

    def positions(self) -> np.ndarray:
        """Top-left pixel (row, col) of every unit's window, wrapped into the image → (U, 2)."""
        first = self.pixel[:, 0]
        return torch.stack([first // self.image_shape[1], first % self.image_shape[1]], dim=1).cpu().numpy()
