"""Convolutional group-sparse auto-encoders, L2 pooling and greedy stacking (docs/models.md §4).

One layer, input h (B, C, H, W), K feature maps, kernels k×k ("same" padding):

    z = g ⊙ ReLU(W_e ∗ h + b)                      (B, K, H, W); g: learned per-map scale
    ĥ = W_d ∗ᵀ z                                   linear transposed convolution (the adjoint of W_d ∗ ·)
    e_j(p) = Σ_{Δ∈N} Σ_{i∈P_j} w_ji z_i(p + Δ)²    energy of group j around position p (N: nb×nb)
    L(h) = ½‖h − ĥ‖² + λ Σ_{j,p} sqrt(e_j(p)),     ‖W_d[i]‖ ≤ 1

Groups P_j are sets of feature maps at one position (blocks or sliding windows over maps),
optionally widened to a small spatial neighbourhood N. After training, the same groups make the
L2-pooling layer p_j(p) = sqrt(e_j(s·p)), subsampled by the stride s: features invariant to
which map in a group fires (and to small shifts). Layer l+1 is trained on layer l's pooled
output with every layer below frozen (greedy layer-wise, switched by step within one run).
The frozen stack is then read by a linear probe (logistic regression), next to raw pixels.

The probe (features of a few thousand examples and a scikit-learn fit, seconds) runs off the
training thread: at a frame where it is due, the loop only clones the stack's weights (a few
thousand numbers) and a background thread ("pinwheel-probe") fits on that copy; frames carry the latest finished
result, so the probe shown lags the frame by at most one probe interval. If a fit is still
running when the next one is due, the loop waits for it (as it waits for a full frame queue).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..configs.conv_stack import ConvLayerConfig, ConvStackConfig
from ..groups import GroupStructure, build_groups
from .base import PinwheelModel, to_numpy

EPS = 1e-8


class ConvGroupSparseLayer(nn.Module):
    def __init__(self, config: ConvLayerConfig, in_channels: int, generator: torch.Generator):
        super().__init__()
        self.config = config
        k, maps = config.kernel, config.maps
        w = torch.randn(maps, in_channels, k, k, generator=generator)
        w /= w.flatten(1).norm(dim=1)[:, None, None, None]
        self.W_e = nn.Parameter(w.clone())  # (K, C, k, k)
        self.W_d = nn.Parameter(w.clone())  # (K, C, k, k): conv_transpose2d weight, K in → C out
        self.b = nn.Parameter(torch.zeros(maps))  # (K,)
        self.g = nn.Parameter(torch.ones(maps))  # (K,) per-map scale
        self.groups: GroupStructure = build_groups(config.groups, maps)
        self.register_buffer("group_weights", self.groups.weights)  # (G, K)

    @torch.no_grad()
    def init_from_(self, h: torch.Tensor, generator: torch.Generator, from_data: bool) -> None:
        """Start the layer on its own input h (B, C, H, W), before its first step.

        from_data: W_e = W_d = the more energetic half of 2K random k×k patches of h
        (unit norm, plus 1 % noise so no two start equal); else keep the Gaussian filters.
        Either way g is then set to the least-squares scale c = ⟨h, ĥ⟩/⟨ĥ, ĥ⟩ of the first
        reconstruction: with unit-norm k×k filters ĥ sums ~k² overlapping copies, so at g = 1 it is
        ~k²× too large, the first Adam steps drive every b negative and most maps die (noise filters
        that never move). ReLU is positively homogeneous, so scaling g scales ĥ exactly by c.
        """
        k, maps = self.config.kernel, self.config.maps
        if from_data:  # device-side only (no read-back): the meta-device step check runs this at step 0
            patches = F.unfold(h, k, padding=k // 2).transpose(1, 2).reshape(-1, h.shape[1] * k * k)  # (B·H·W, C·k²)
            candidates = torch.randint(0, patches.shape[0], (2 * maps,), generator=generator).to(h.device)
            energy = patches[candidates].norm(dim=1)
            pick = candidates[energy.topk(maps).indices]  # the more energetic half of 2K random patches
            noise = torch.randn(maps, patches.shape[1], generator=generator).to(h.device)
            w = patches[pick] + 0.01 * energy.max() * noise
            w = (w / w.norm(dim=1, keepdim=True).clamp_min(EPS)).view_as(self.W_d).to(self.W_d)
            self.W_e.copy_(w)
            self.W_d.copy_(w)
        self.b.zero_()
        self.g.fill_(1.0)
        recon = self.decode(self.encode(h))
        self.g.copy_(((h * recon).sum() / recon.pow(2).sum().clamp_min(EPS)).expand_as(self.g))

    def conv(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(h, w, padding=self.config.kernel // 2)  # (B, C, H, W) → (B, K, H, W)

    def conv_t(self, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(z, w, padding=self.config.kernel // 2)  # (B, K, H, W) → (B, C, H, W)

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        return self.g[:, None, None] * torch.relu(self.conv(h, self.W_e) + self.b[:, None, None])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_t(z, self.W_d)

    def group_energy(self, z: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """e_j(p) = Σ_Δ Σ_{i∈P_j} w_ji z_i(p+Δ)²: (B, K, H, W) → (B, G, H', W'), H' = ⌊(H−1)/stride⌋ + 1."""
        e = torch.einsum("gk,bkhw->bghw", self.group_weights, z.pow(2))
        nb = self.config.neighbourhood
        if nb == 1 and stride == 1:
            return e
        return F.avg_pool2d(e, nb, stride=stride, padding=nb // 2, count_include_pad=True) * nb * nb

    def penalty(self, z: torch.Tensor) -> torch.Tensor:
        """Σ_{j,p} sqrt(e_j(p)) per example: (B,)."""
        return torch.sqrt(self.group_energy(z) + EPS).sum(dim=(1, 2, 3))

    def pool(self, z: torch.Tensor) -> torch.Tensor:
        """The L2-pooling layer: p_j = sqrt(e_j), subsampled by pool_stride."""
        return torch.sqrt(self.group_energy(z, self.config.pool_stride) + EPS)


class ConvStack(PinwheelModel):
    panel_kinds = ("filter_grid",)

    def __init__(self, config: ConvStackConfig, input_shape: tuple[int, int], generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        layers, channels = [], 1
        for lc in config.layers:
            layers.append(ConvGroupSparseLayer(lc, channels, generator))
            channels = layers[-1].groups.n_groups  # the next layer reads the pooled groups
        self.layers = nn.ModuleList(layers)
        self._step = 0
        self._probes = AsyncProbe()
        self._init_generator = generator

    def train_step(self, x, y, step: int, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        cur = self.current_layer(step)
        if step == cur * self.config.steps_per_layer:  # the layer's first step: start it on its own input
            h = self.features(x, cur)[-1] if cur else self._image(x)
            self.layers[cur].init_from_(h, self._init_generator, self.config.init == "data")
        return super().train_step(x, y, step, optimizer)

    def current_layer(self, step: int) -> int:
        return min(step // self.config.steps_per_layer, len(self.layers) - 1)

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1, 1, *self.input_shape)  # (B, n) → (B, 1, H, W)

    @torch.no_grad()
    def features(self, x: torch.Tensor, depth: int) -> list[torch.Tensor]:
        """Pooled outputs p^1 … p^depth of the frozen stack for a batch (each (B, G_l, H_l, W_l))."""
        h, out = self._image(x), []
        for layer in self.layers[:depth]:
            h = layer.pool(layer.encode(h))
            out.append(h)
        return out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x, len(self.layers))[-1].flatten(1)

    def loss(self, x, y, step):
        self._step = step
        cur = self.current_layer(step)
        h = self.features(x, cur)[-1] if cur else self._image(x)  # frozen layers below: no gradient
        layer = self.layers[cur]
        z = layer.encode(h)  # (B, K, H, W)
        recon = 0.5 * (h - layer.decode(z)).pow(2).sum(dim=(1, 2, 3)).mean()
        sparsity = layer.penalty(z).mean()
        since = step - cur * self.config.steps_per_layer
        warm = min(1.0, since / self.config.lam_warmup_steps) if self.config.lam_warmup_steps else 1.0
        return recon + warm * layer.config.lam * sparsity, {
            "reconstruction": recon.detach(), "group_sparsity": sparsity.detach(),
            "active_fraction": (z > 0).float().mean().detach(), "layer": z.new_full((), cur + 1.0)}

    @torch.no_grad()
    def project_(self) -> None:
        for layer in self.layers:
            w = layer.W_d
            w.div_(w.flatten(1).norm(dim=1).clamp_min(1.0)[:, None, None, None])

    @torch.no_grad()
    def _stack_features(self, x: torch.Tensor, chunk: int = 512) -> list[torch.Tensor]:
        """Flattened pooled features of every layer for many examples, computed in chunks."""
        parts = [[f.flatten(1) for f in self.features(x[i:i + chunk], len(self.layers))]
                 for i in range(0, len(x), chunk)]
        return [torch.cat(per_layer) for per_layer in zip(*parts)]

    @torch.no_grad()
    def probe_accuracies(self, dataset, train_size: int | None = None) -> dict[str, float]:
        """Linear probes (logistic regression) on raw pixels and on the frozen stack's pooled features."""
        n = min(train_size or self.config.probe_train, len(dataset.x))
        train, test = self.probe_features(dataset.x[:n]), self.probe_features(dataset.x_test)
        y_train, y_test = to_numpy(dataset.y[:n]).astype(int), to_numpy(dataset.y_test).astype(int)
        return {f"probe_{name}": _probe(train[name], y_train, test[name], y_test) for name in train}

    @torch.no_grad()
    def probe_features(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """Raw pixels and every layer's flattened pooled features (and all layers together) for x."""
        stacked = [to_numpy(f) for f in self._stack_features(x)]
        out = {"pixels": to_numpy(x), **{f"layer{d}": f for d, f in enumerate(stacked, start=1)}}
        if len(stacked) > 1:
            out["all_layers"] = np.concatenate(stacked, axis=1)
        return out

    @torch.no_grad()
    def frame_metrics(self, dataset) -> dict[str, float]:
        """The latest finished probe; a new one starts on the probe thread when due (see module doc)."""
        if dataset.y is None or dataset.x_test is None:
            return {}
        return self._probes.frame(self, dataset, self._step, self.config.probe_every_steps)

    def filter_bank(self) -> dict:
        """Layer 1's decoder kernels (K, k, k) as the bank; with more layers, `layers` lists every
        layer's, labelled: a layer-l kernel spans the C pooled group maps of layer l−1, drawn as C
        k×k blocks side by side (K, k, C·k)."""
        def layout_of(layer: ConvGroupSparseLayer) -> dict:
            g = layer.config.groups
            if g.kind == "blocks_1d":
                return {"type": "grid", "rows": layer.config.maps // g.size, "cols": g.size}
            return {"type": "list"}

        first = self.layers[0]
        w = to_numpy(first.W_d)[:, 0]  # (K, k, k)
        out = {"filters": w, "layout": layout_of(first)}
        if len(self.layers) > 1:
            k = first.config.kernel
            out["layers"] = [{"label": f"layer 1 · {len(w)} maps · {k}×{k} on the image",
                              "filters": w, "layout": layout_of(first), "channels": 1}]
            for i, layer in enumerate(self.layers[1:], start=2):
                wd = to_numpy(layer.W_d)  # (K, C, k, k)
                maps, channels, k, _ = wd.shape
                out["layers"].append({
                    "label": f"layer {i} · {maps} maps · {k}×{k} on each of the {channels} pooled groups of layer {i - 1}",
                    "filters": wd.transpose(0, 2, 1, 3).reshape(maps, k, channels * k),
                    "layout": layout_of(layer), "channels": channels})
        return out

    def weights(self) -> dict[str, np.ndarray]:
        out = {"input_shape": np.asarray(self.input_shape, dtype=np.int64)}
        for i, layer in enumerate(self.layers, start=1):
            out.update({f"W_e_{i}": to_numpy(layer.W_e), f"W_d_{i}": to_numpy(layer.W_d), f"b_{i}": to_numpy(layer.b),
                        f"g_{i}": to_numpy(layer.g), f"group_weights_{i}": to_numpy(layer.group_weights)})
        return out


_PROBE_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pinwheel-probe")


class AsyncProbe:
    """A model's probes, fitted on the probe thread from a copy of its weights (a plain attribute, not a module)."""

    def __init__(self):
        self.net: ConvStack | None = None  # the probe thread's own copy of the stack
        self.job: Future | None = None
        self.result: dict[str, float] = {}
        self.step = -1  # step of the last probe started

    def frame(self, model: ConvStack, dataset, step: int, every: int) -> dict[str, float]:
        if self.step < 0 or step - self.step >= every:
            if self.job is not None:
                self.result = self.job.result()  # still fitting the previous one: wait (back-pressure)
            if self.net is None:
                self.net = ConvStack(model.config, model.input_shape, torch.Generator())
                self.net.to(next(model.parameters()).device).eval()
            weights = {k: v.detach().clone() for k, v in model.layers.state_dict().items()}
            self.job, self.step = _PROBE_THREAD.submit(self._fit, weights, dataset), step
        if self.job is not None and self.job.done():
            self.result, self.job = self.job.result(), None
        return dict(self.result)

    def _fit(self, weights: dict, dataset) -> dict[str, float]:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        # normal priority, unlike the panel thread: a starved fit would make the next due frame wait for it
        self.net.layers.load_state_dict(weights)
        with threadpool_limits(limits=1, user_api="blas"):
            return self.net.probe_accuracies(dataset)


def _probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a logistic regression fitted on standardised features."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(max_iter=300, C=0.1).fit(scaler.transform(x_train), y_train)
    return float(clf.score(scaler.transform(x_test), y_test))


def probe_over_splits(features: dict[str, np.ndarray], labels: np.ndarray, splits: int = 5, train_size: int = 2000,
                      seed: int = 0) -> dict:
    """Linear-probe accuracy of each feature set over `splits` random splits of the same examples.

    Split s permutes the N examples with seed + s: the first train_size fit the probe, the rest
    score it (disjoint by construction). Every feature set sees the same split, so the gain of a
    set over `features["pixels"]` is a paired difference; reported per split and as mean ± sample
    standard deviation (ddof 1) with min and max. The examples should be ones the stack never
    trained on (its held-out split), so neither the probe nor the stack has seen the scored digits.
    """
    n = len(labels)
    if not 0 < train_size < n:
        raise ValueError(f"train_size: {train_size} leaves no examples to score (of {n})")
    if splits < 2:
        raise ValueError(f"splits: need at least 2 for a spread, got {splits}")
    acc = {name: [] for name in features}
    for s in range(splits):
        order = np.random.default_rng(seed + s).permutation(n)
        tr, te = order[:train_size], order[train_size:]
        for name, f in features.items():
            acc[name].append(_probe(f[tr], labels[tr], f[te], labels[te]))
    out = {"splits": splits, "probe_train": train_size, "probe_test": n - train_size, "accuracy": acc}
    for name in features:
        a = np.asarray(acc[name])
        out[f"{name}_mean"], out[f"{name}_std"] = float(a.mean()), float(a.std(ddof=1))
        if name != "pixels" and "pixels" in features:
            gain = a - np.asarray(acc["pixels"])
            out[f"gain_{name}"] = [float(v) for v in gain]
            out[f"gain_{name}_mean"], out[f"gain_{name}_std"] = float(gain.mean()), float(gain.std(ddof=1))
            out[f"gain_{name}_min"], out[f"gain_{name}_max"] = float(gain.min()), float(gain.max())
    return out


def build(config: ConvStackConfig, dataset, generator: torch.Generator) -> ConvStack:
    return ConvStack(config, dataset.shape, generator)
