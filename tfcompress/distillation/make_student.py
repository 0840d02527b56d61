"""`make_student`: a thinner (and optionally shallower) copy of a teacher architecture."""

from __future__ import annotations

import keras

from tfcompress.utils.surgery import is_graph_model

# The constructor argument that sets each kind of layer's width.
WIDTH_ARGUMENTS = (
    ((keras.layers.Dense, keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU), "units"),
    (
        (
            keras.layers.Conv1D,
            keras.layers.Conv2D,
            keras.layers.Conv3D,
            keras.layers.Conv1DTranspose,
            keras.layers.Conv2DTranspose,
            keras.layers.Conv3DTranspose,
            keras.layers.SeparableConv1D,
            keras.layers.SeparableConv2D,
        ),
        "filters",
    ),
    ((keras.layers.Embedding,), "output_dim"),
)


def _width_argument(layer: keras.layers.Layer) -> str | None:
    return next((arg for kinds, arg in WIDTH_ARGUMENTS if isinstance(layer, kinds)), None)


def _inputs(layer: keras.layers.Layer) -> list:
    return list(layer.input) if isinstance(layer.input, (list, tuple)) else [layer.input]


def _graph(model: keras.Model) -> dict[int, keras.layers.Layer]:
    """Output tensor id -> the layer that produces it (each layer called once)."""
    producers = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"make_student works on flat Sequential or functional models; teacher "
                f"{model.name!r} nests model {layer.name!r}."
            )
        try:
            producers[id(layer.output)] = layer
        except (AttributeError, ValueError) as err:
            raise ValueError(
                f"make_student: layer {layer.name!r} of teacher {model.name!r} is called more "
                "than once; each layer must be used once."
            ) from err
    return producers


def _output_layers(model: keras.Model, producers: dict) -> set[int]:
    """The width layers nearest each output (through activations, dropout, merges...): kept."""
    kept, seen = set(), set()
    stack = [producers[id(t)] for t in model.outputs if id(t) in producers]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if _width_argument(layer) is not None:
            kept.add(id(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            stack.extend(producers[id(t)] for t in _inputs(layer) if id(t) in producers)
    return kept


def make_student(
    teacher: keras.Model,
    width: float = 0.5,
    depth: float = 1.0,
    name: str | None = None,
) -> keras.Model:
    """A freshly initialised copy of a teacher's architecture with fewer units and filters.

    Every Dense, convolution, recurrent and Embedding layer gets
    `max(1, round(width * n))` units/filters, except the layers that produce
    the model's outputs (through activations, dropout or merges), which keep
    theirs, so teacher and student outputs compare element by element. Other
    layers (pooling, normalisation, dropout, depthwise convolutions) are
    copied from their configs. Parameters shrink about with `width^2`.

    Args:
        teacher: A built, flat Sequential or functional model.
        width: Fraction of units/filters kept, in (0, 1].
        depth: Fraction kept of the teacher's removable layers: width layers
            whose output shape equals their input shape (such as the second of
            two Dense(64) layers), so that skipping them leaves the graph
            valid. The deepest go first. 1.0 keeps every layer.
        name: The student's name (default: `<teacher name>_student`).

    Returns:
        A new, uncompiled model of the same kind (Sequential or functional).

    Raises:
        ValueError: `width` or `depth` outside (0, 1], `depth` < 1 for a
            teacher without removable layers, nested or shared layers.

    Example:
        >>> student = tfcompress.make_student(tfcompress.models.small_cnn(), width=0.25)
        >>> student.get_layer("fc1").units
        32
    """
    if not isinstance(teacher, keras.Model) or not is_graph_model(teacher):
        raise ValueError(
            "`teacher` must be a built Sequential or functional keras.Model. "
            f"Received: {getattr(teacher, 'name', type(teacher).__name__)!r}"
        )
    for argument, value in (("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f"`{argument}` must be in (0, 1]. Received: {argument}={value!r}")
    producers = _graph(teacher)
    kept = _output_layers(teacher, producers)
    removable = [
        layer
        for layer in teacher.layers
        if _width_argument(layer) is not None
        and id(layer) not in kept
        and len(_inputs(layer)) == 1
        and tuple(layer.input.shape) == tuple(layer.output.shape)
    ]
    if depth < 1 and not removable:
        raise ValueError(
            f"depth={depth} removes layers, but teacher {teacher.name!r} has none that can go "
            "(a Dense/Conv layer whose output shape equals its input shape)."
        )
    dropped = {id(layer) for layer in removable[int(depth * len(removable) + 0.5) :]}
    name = name or f"{teacher.name}_student"

    def thin(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = {**layer.get_config(), "trainable": True}  # a frozen teacher's layers say False
        argument = _width_argument(layer)
        if argument is not None and id(layer) not in kept:
            config[argument] = max(1, int(config[argument] * width + 0.5))
        return layer.__class__.from_config(config)

    if isinstance(teacher, keras.Sequential):
        first = teacher.inputs[0]
        layers = [thin(layer) for layer in teacher.layers if id(layer) not in dropped]
        student = keras.Sequential(
            [keras.Input(shape=first.shape[1:], dtype=first.dtype), *layers], name=name
        )
    else:
        student = _clone(teacher, thin, dropped, name)
    return student


def _clone(teacher: keras.Model, thin, dropped: set[int], name: str) -> keras.Model:
    """The functional teacher cloned through `thin`, with the `dropped` layers skipped."""
    skipped = set()

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        new = thin(layer)
        if id(layer) in dropped:
            skipped.add(id(new))
        return new

    def call(layer, *args, **kwargs):
        return args[0] if id(layer) in skipped else layer(*args, **kwargs)

    copied = keras.models.clone_model(teacher, clone_function=clone, call_function=call)
    return keras.Model(copied.input, copied.output, name=name)
