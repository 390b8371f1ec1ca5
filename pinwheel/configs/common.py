"""Training and data settings shared by every model family (torch-free: the backend imports it)."""
from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_INT = 2**53  # the largest integer every client (JavaScript numbers) and store reads back exactly
MAX_SEED = 2**32 - 1  # numpy's and torch's seeders both take it; 2**70 used to fail in the worker
USER_FOLDER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a config must not silently fall back to a default.
    Infinities and NaN are refused (json.loads accepts them; a run would diverge at step 0)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_huge_ints(cls, value):
        """A catch-all bound for integer fields without their own: none answers after 2**53."""
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise ValueError(f"at most 2**53 in absolute value, got a {value.bit_length()}-bit integer")
        return value


def user_folder(value: str | None) -> str | None:
    """A folder under the server's data root, checked at launch (the worker confines it again):
    relative, no '..', no hidden parts, plain characters only."""
    if value is None:
        return None
    if not USER_FOLDER.fullmatch(value) or ".." in value.split("/"):
        raise ValueError("a relative folder under the data root: letters, digits, '_', '-', '.', separated by '/'; "
                         "no leading '/', '.' or '..'")
    return value


UserFolder = Annotated[str | None, Field(max_length=200), AfterValidator(user_folder)]


class NaturalPatchesData(Strict):
    """Random patches of whitened photographs (docs/models.md §8): the training pool from the training region
    of every photograph, `heldout_size` held-out patches (the run's x_test) from its held-out region."""

    kind: Literal["natural_patches"] = "natural_patches"
    patch_size: int = Field(12, ge=4, le=32, description="side of the square patch, pixels")
    pool_size: int = Field(50_000, ge=1_000, le=500_000, description="patches drawn once per run")
    image_folder: UserFolder = Field(
        None, description="folder of the user's own images (under the server's data root); "
        "default: the photographs scikit-image ships")
    heldout_size: int = Field(2_000, ge=10, le=100_000, description="held-out patches, from the last 20 % "
                              "of each photograph's longer side, which training never sees")


class NaturalImagesData(Strict):
    """Whole whitened photographs, cropped to a square (docs/models.md §5); training crops from the training
    region of every photograph, `heldout_size` held-out crops (x_test) from its held-out region."""

    kind: Literal["natural_images"] = "natural_images"
    image_size: int = Field(32, ge=8, le=128, description="side of the square crop, pixels")
    pool_size: int = Field(5_000, ge=100, le=100_000)
    image_folder: UserFolder = None
    heldout_size: int = Field(500, ge=10, le=20_000, description="held-out crops, from the last 20 % "
                              "of each photograph's longer side (at least one crop wide), which training never sees")


class DigitsData(Strict):
    """Labelled digit images: MNIST, Fashion-MNIST or scikit-learn's 8×8 digits."""

    kind: Literal["mnist", "fashion_mnist", "sklearn_digits"] = "mnist"
    source: Literal["auto", "idx_folder", "npm_sample", "download"] = Field(
        "auto", description="where MNIST comes from; 'auto' tries a local IDX folder, then the npm sample")
    idx_folder: UserFolder = Field(None, description="folder of IDX files under the server's data root")
    train_size: int = Field(8_000, ge=10, le=60_000, description="MNIST and Fashion-MNIST have 60,000")
    test_size: int = Field(2_000, ge=10, le=10_000, description="MNIST and Fashion-MNIST have 10,000")

    @model_validator(mode="after")
    def _fits_source(self):
        if self.kind == "sklearn_digits" and self.train_size + self.test_size > SKLEARN_DIGITS:
            raise ValueError(f"train_size: {self.train_size} + test_size {self.test_size} exceeds the "
                             f"{SKLEARN_DIGITS} examples of scikit-learn's digits")
        return self


SKLEARN_DIGITS = 1797


DataConfig = Annotated[Union[NaturalPatchesData, NaturalImagesData, DigitsData], Field(discriminator="kind")]


class TrainConfig(Strict):
    steps: int = Field(3_000, ge=1, le=10_000_000)
    batch_size: int = Field(256, ge=1, le=65_536)
    lr: float = Field(3e-3, gt=0, le=10)
    optimizer: Literal["adam", "sgd"] = "adam"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto' takes CUDA when present")
    frame_every_steps: int = Field(25, ge=1, le=10_000_000, description="a frame at least every K steps")
    frame_every_seconds: float = Field(0.5, gt=0, le=3600, description="and at least every T seconds")
    checkpoint_every_seconds: float = Field(30.0, gt=0, le=7 * 24 * 3600)
    whole_gpu: bool = Field(False, description="a GPU to itself: runs on a GPU worker with no other run on its "
                            "device (workers may share a GPU, PINWHEEL_RUNS_PER_GPU)")
