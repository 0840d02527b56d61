"""The loss assembly on its own: comparisons, hint layers, the weighted sum."""

import keras
import numpy as np
import pytest

from tfcompress.distillation import HintDistillation, SoftTargetDistillation
from tfcompress.distillation.loss_terms import (
    Comparison,
    check_losses,
    comparisons,
    distillation_loss,
    hint_layers,
    is_feature_loss,
)

RNG = np.random.default_rng(0)


def _model(width, name):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(width, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden), name=name)


def test_output_losses_compare_every_teacher_with_its_weight():
    teachers, student = [_model(3, "a"), _model(3, "b")], _model(3, "s")
    pairs = comparisons(SoftTargetDistillation(), teachers, [0.75, 0.25], student)
    assert pairs == [Comparison(0, None, None, 0.75), Comparison(1, None, None, 0.25)]
    assert [p.teacher_key for p in pairs] == ["0", "1"]


def test_hint_compares_two_layers_through_an_adapter_when_widths_differ():
    teachers, student = [_model(3, "a"), _model(5, "b")], _model(2, "s")
    hint = HintDistillation("hidden", "hidden", teacher_index=1)
    assert is_feature_loss(hint) and not is_feature_loss(SoftTargetDistillation())
    (pair,) = comparisons(hint, teachers, [0.5, 0.5], student)
    assert pair == Comparison(1, "hidden", "hidden", 1.0, pair.adapter)
    assert pair.teacher_key == "1:hidden"
    assert pair.adapter.name == "adapter_hidden_to_hidden" and pair.adapter.kernel.shape == (2, 5)
    same = comparisons(HintDistillation("hidden", "hidden"), teachers, [1.0, 0.0], _model(3, "t"))
    assert same[0].adapter is None


def test_hint_layers_are_listed_once_in_order():
    terms = [
        [Comparison(0, None, None, 1.0)],
        [Comparison(1, "x", "p", 1.0)],
        [Comparison(1, "y", "q", 1.0)],
        [Comparison(1, "x", "p", 1.0)],
    ]
    assert hint_layers(terms) == ({1: ["x", "y"]}, ["p", "q"])


def test_weighted_sum_of_losses_over_comparisons():
    soft = SoftTargetDistillation(2.0)
    adapter = keras.layers.Dense(3)
    adapter.build((None, 2))
    teacher = {k: RNG.normal(size=(4, 3)).astype("float32") for k in ("0", "1", "0:h")}
    student = {None: RNG.normal(size=(4, 3)).astype("float32")}
    student["h"] = RNG.normal(size=(4, 2)).astype("float32")
    terms = [
        [Comparison(0, None, None, 0.25), Comparison(1, None, None, 0.75)],
        [Comparison(0, "h", "h", 1.0, adapter)],
    ]
    hint = HintDistillation("h", "h")
    total = distillation_loss([soft, hint], [2.0, 0.5], terms, teacher, student, step=0)
    expected = 2.0 * (
        0.25 * soft.compute_loss(teacher["0"], student[None])
        + 0.75 * soft.compute_loss(teacher["1"], student[None])
    ) + 0.5 * hint.compute_loss(teacher["0:h"], adapter(student["h"]))
    assert float(total) == pytest.approx(float(expected), rel=1e-6)


def test_losses_are_checked():
    assert [type(loss) for loss in check_losses(None)] == [SoftTargetDistillation]
    soft = SoftTargetDistillation()
    assert check_losses(soft) == [soft] and check_losses((soft,)) == [soft]
    with pytest.raises(ValueError, match="`distillation_losses` is empty"):
        check_losses([])
    with pytest.raises(TypeError, match="must be a keras.distillation.DistillationLoss.*'mse'"):
        check_losses(["mse"])
