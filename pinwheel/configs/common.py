"""Training and data settings shared by every model family (torch-free: the backend imports it)."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a config must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid")


class NaturalPatchesData(Strict):
    """Random patches of whitened photographs (science.md §8)."""

    kind: Literal["natural_patches"] = "natural_patches"
    patch_size: int = Field(12, ge=4, le=32, description="side of the square patch, pixels")
    pool_size: int = Field(50_000, ge=1_000, le=500_000, description="patches drawn once per run")
    image_folder: str | None = Field(
        None, description="folder of the user's own images (under the server's data root); "
        "default: the photographs scikit-image ships")


class NaturalImagesData(Strict):
    """Whole whitened photographs, cropped to a square (science.md §5)."""

    kind: Literal["natural_images"] = "natural_images"
    image_size: int = Field(32, ge=8, le=128, description="side of the square crop, pixels")
    pool_size: int = Field(5_000, ge=100, le=100_000)
    image_folder: str | None = None


class DigitsData(Strict):
    """Labelled digit images: MNIST, Fashion-MNIST or scikit-learn's 8×8 digits."""

    kind: Literal["mnist", "fashion_mnist", "sklearn_digits"] = "mnist"
    source: Literal["auto", "idx_folder", "npm_sample", "download"] = Field(
        "auto", description="where MNIST comes from; 'auto' tries a local IDX folder, then the npm sample")
    idx_folder: str | None = None
    train_size: int = Field(8_000, ge=10)
    test_size: int = Field(2_000, ge=10)


DataConfig = Annotated[Union[NaturalPatchesData, NaturalImagesData, DigitsData], Field(discriminator="kind")]


class TrainConfig(Strict):
    steps: int = Field(3_000, ge=1, le=10_000_000)
    batch_size: int = Field(256, ge=1, le=65_536)
    lr: float = Field(3e-3, gt=0, le=10)
    optimizer: Literal["adam", "sgd"] = "adam"
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto' takes CUDA when present")
    frame_every_steps: int = Field(25, ge=1, description="a frame at least every K steps")
    frame_every_seconds: float = Field(0.5, gt=0, description="and at least every T seconds")
    checkpoint_every_seconds: float = Field(30.0, gt=0)
