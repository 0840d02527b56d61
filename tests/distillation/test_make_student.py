"""make_student: thinner, freshly initialised copies of Sequential and functional teachers."""

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.distillation import make_student


def widths(model: keras.Model) -> dict[str, int]:
    return {
        layer.name: layer.get_config().get("filters") or layer.get_config().get("units")
        for layer in model.layers
        if "filters" in layer.get_config() or "units" in layer.get_config()
    }


def test_small_cnn_student_of_a_fiftieth():
    teacher = tc.models.small_cnn()
    student = make_student(teacher, width=0.14)
    assert widths(student) == {"conv1": 4, "conv2": 9, "fc1": 18, "logits": 10}
    assert 48 < teacher.count_params() / student.count_params() < 52
    assert student.name == "small_cnn_student" and student.output.shape == (None, 10)
    assert [type(layer) for layer in student.layers] == [type(layer) for layer in teacher.layers]
    assert student.predict(np.zeros((2, 28, 28, 1)), verbose=0).shape == (2, 10)


def test_fresh_trainable_weights_even_from_a_frozen_teacher(teacher):
    student = make_student(teacher, width=1.0)
    assert widths(student) == widths(teacher)
    assert len(student.trainable_weights) == len(teacher.weights) == 6
    for ours, theirs in zip(student.get_weights(), teacher.get_weights()):
        if theirs.ndim > 1:
            assert not np.allclose(ours, theirs)


def test_sequential_depth_and_outputs_through_activations():
    teacher = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(32, activation="relu", name="a"),
            keras.layers.Dense(32, activation="relu", name="b"),
            keras.layers.Dense(32, activation="relu", name="c"),
            keras.layers.Dense(4, name="out"),
            keras.layers.Softmax(name="probs"),
        ],
        name="mlp",
    )
    student = make_student(teacher, width=0.25, depth=0.5)
    assert isinstance(student, keras.Sequential)
    assert widths(student) == {"a": 8, "b": 8, "out": 4}  # c (32 -> 32) dropped; out kept
    assert student.outputs[0].shape == (None, 4)


def test_functional_depth_rewires_around_dropped_layers():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    for i in range(3):
        x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name=f"block{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    teacher = keras.Model(inputs, keras.layers.Dense(5, name="head")(x))
    student = make_student(teacher, width=0.5, depth=1 / 3)
    assert widths(student) == {"stem": 8, "block0": 8, "head": 5}
    assert student.predict(np.zeros((1, 6, 6, 3)), verbose=0).shape == (1, 5)


def test_merges_before_the_output_keep_their_producers():
    inputs = keras.Input((10,))
    a = keras.layers.Dense(6, name="a")(inputs)
    b = keras.layers.Dense(6, name="b")(inputs)
    teacher = keras.Model(inputs, keras.layers.Add(name="add")([a, b]), name="merge")
    assert widths(make_student(teacher, 0.5)) == {"a": 6, "b": 6}


def test_bad_arguments():
    teacher = tc.models.lenet_300_100()
    for argument in ("width", "depth"):
        for value in (0, 1.5, "half"):
            with pytest.raises(ValueError, match=f"`{argument}` must be in \\(0, 1\\]"):
                make_student(teacher, **{argument: value})
    with pytest.raises(ValueError, match="has none that can go"):
        make_student(teacher, depth=0.5)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)], name="inner")
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)], name="outer")
    with pytest.raises(ValueError, match="nests model 'inner'"):
        make_student(outer)
