"""Per-layer notes that techniques leave for the report (why a layer was left as it was)."""

from __future__ import annotations

import weakref

import keras

_NOTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def add_note(layer: keras.layers.Layer, note: str) -> keras.layers.Layer:
    """Attaches `note` to `layer` (after any it has) for `report` to show; returns `layer`."""
    _NOTES[layer] = f"{_NOTES[layer]}; {note}" if layer in _NOTES else note
    return layer


def layer_note(layer: keras.layers.Layer) -> str | None:
    """The notes attached to `layer`, or None."""
    return _NOTES.get(layer)
