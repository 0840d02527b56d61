"""Reading a tf_keras `.h5` file: its model config and each layer's saved arrays."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import h5py
import numpy as np


@dataclass(frozen=True)
class SavedArray:
    """One saved variable: its short name (`kernel`, `mask`...) and whether a wrapper made it."""

    name: str
    value: np.ndarray
    of_wrapper: bool


def read_h5(filepath) -> tuple[dict, dict[str, list[SavedArray]]]:
    """The model config and, by layer name, the layer's saved arrays in saved order.

    A variable belongs to the wrapper when its path starts with the wrapper's
    name (`prune_low_magnitude_fc/mask:0`); the wrapped layer's own variables
    start with its name (`fc/kernel:0`).

    Args:
        filepath: A path or a binary file object of a tf_keras `.h5` model.

    Raises:
        ValueError: The file is not a whole tf_keras model saved as `.h5`.
    """
    shown = os.fspath(filepath) if isinstance(filepath, (str, os.PathLike)) else filepath
    try:
        f = h5py.File(filepath, "r")
    except OSError as err:
        raise ValueError(
            f"`filepath` must be a tf_keras `.h5` model file. Received: filepath={shown!r} ({err})"
        ) from None
    with f:
        if "model_config" not in f.attrs or "model_weights" not in f:
            raise ValueError(
                "`filepath` holds weights only, not a whole model: save it with "
                "`model.save(path)` (tf_keras, `.h5`). Received: "
                f"filepath={shown!r}"
            )
        config = json.loads(_text(f.attrs["model_config"]))
        group = f["model_weights"]
        arrays = {}
        for layer_name in (_text(n) for n in group.attrs["layer_names"]):
            layer_group = group[layer_name]
            arrays[layer_name] = [
                SavedArray(
                    name=path.split("/")[-1].split(":")[0],
                    value=np.asarray(layer_group[path]),
                    of_wrapper=path.startswith(f"{layer_name}/"),
                )
                for path in (_text(n) for n in layer_group.attrs["weight_names"])
            ]
    return config, arrays


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
