"""Operations of a functional graph that are not layers (`x + y`, `x * 0.5`, `keras.ops` calls).

A functional model built with operator syntax or `keras.ops` calls holds
stateless `keras.Operation`s between its layers. They have no weights, so
QAT only has to give the int8 model a range where TFLite has a new tensor:
after arithmetic and reductions (ADD, MUL, MEAN...), not after ops that only
move, select or take the maximum of values (RESHAPE, TRANSPOSE, slicing,
MAX), whose output keeps its input's range, nor after the activations whose
int8 range TFLite fixes (LOGISTIC, TANH, SOFTMAX).
"""

from __future__ import annotations

import keras

# Class names of the operations whose output keeps the range of their input.
KEEPS_RANGE = frozenset(
    {
        "Amax",
        "Amin",
        "ArraySplit",
        "BroadcastTo",
        "Copy",
        "DepthToSpace",
        "Dsplit",
        "ExpandDims",
        "Flip",
        "Fliplr",
        "Flipud",
        "GetItem",
        "Hsplit",
        "Max",
        "MaxPool",
        "Min",
        "Moveaxis",
        "Pad",
        "Ravel",
        "Repeat",
        "Reshape",
        "Roll",
        "Rot90",
        "SpaceToDepth",
        "Split",
        "Squeeze",
        "Swapaxes",
        "Take",
        "TakeAlongAxis",
        "Tile",
        "Transpose",
        "Vsplit",
    }
)
# Class names of the operations whose int8 output range TFLite fixes.
FIXED_RANGE = frozenset({"LogSoftmax", "Sigmoid", "Softmax", "Tanh"})
# Class names of the operations TFLite fuses a following ReLU/ReLU6 into.
FUSES_RELU = frozenset({"Add", "Multiply", "Subtract"})


def is_operation(op: object) -> bool:
    """True for a graph operation that is not a layer (from operator syntax or `keras.ops`)."""
    return isinstance(op, keras.Operation) and not isinstance(op, keras.layers.Layer)


def gets_output_range(op: keras.Operation) -> bool:
    """True when the int8 model needs a range of its own for `op`'s (float) output."""
    name = type(op).__name__
    return name not in KEEPS_RANGE and name not in FIXED_RANGE
