"""Model families, keyed by their config's `kind`. A new family adds one entry to MODEL_BUILDERS."""
from __future__ import annotations

from . import conv_stack, group_sparse, lateral, local_filters
from . import drsae, lista  # Science I families
from .base import PinwheelModel

MODEL_BUILDERS = {
    "group_sparse": group_sparse.build,
    "conv_stack": conv_stack.build, "local_filters": local_filters.build, "lateral": lateral.build,
    "drsae": drsae.build,
    "lista": lista.build,
}


def build_model(config, dataset, generator) -> PinwheelModel:
    try:
        builder = MODEL_BUILDERS[config.kind]
    except KeyError:
        raise ValueError(f"model.kind: no model family named {config.kind!r}") from None
    return builder(config, dataset, generator)
