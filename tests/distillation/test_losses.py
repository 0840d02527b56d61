"""Soft targets, hard targets and hints: the formulas, validation and configs."""

import keras
import numpy as np
import pytest

from tfcompress.distillation import HardTargetDistillation, HintDistillation, SoftTargetDistillation


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 10)).astype("float32") * 3, rng.normal(size=(16, 10)).astype(
        "float32"
    )


def hinton(teacher, student, temperature):
    """T^2 * KL(softmax(t / T) || softmax(s / T)), averaged over the batch, in numpy."""

    def softmax(z):
        e = np.exp(z / temperature - (z / temperature).max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    p, q = softmax(teacher.astype("float64")), softmax(student.astype("float64"))
    return float((p * np.log(p / q)).sum(axis=-1).mean() * temperature**2)


@pytest.mark.parametrize("temperature", [1.0, 4.0, 10.0])
def test_soft_targets_are_hintons_loss_and_keras_with_a_kl_instance(logits, temperature):
    teacher, student = logits
    ours = float(SoftTargetDistillation(temperature).compute_loss(teacher, student))
    assert ours == pytest.approx(hinton(teacher, student, temperature), rel=1e-5)
    kl = keras.losses.KLDivergence()  # the default "kl_divergence" skips the softmax
    keras_loss = keras.distillation.LogitsDistillation(temperature, loss=kl)
    assert ours == pytest.approx(float(keras_loss.compute_loss(teacher, student)), rel=1e-4)
    assert float(SoftTargetDistillation(temperature).compute_loss(teacher, teacher)) < 1e-6


def test_temperature_schedule_follows_the_step(logits):
    teacher, student = logits
    schedule = keras.optimizers.schedules.PolynomialDecay(8.0, 100, end_learning_rate=2.0)
    loss = SoftTargetDistillation(schedule)
    for step, temperature in ((0, 8.0), (50, 5.0), (100, 2.0), (500, 2.0)):
        value = float(loss.compute_loss(teacher, student, step=step))
        assert value == pytest.approx(hinton(teacher, student, temperature), rel=1e-4)


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match=f"`temperature` must be > 0. .*temperature={temperature}"):
        SoftTargetDistillation(temperature)
    zero_start = keras.optimizers.schedules.PolynomialDecay(0.0, 10, 1.0)
    with pytest.raises(ValueError, match="at step 0 is 0.0"):
        SoftTargetDistillation(zero_start)
    with pytest.raises(TypeError, match="number or a keras.optimizers.schedules"):
        SoftTargetDistillation("4")


def test_hard_targets_are_cross_entropy_on_the_teachers_argmax(logits):
    teacher, student = logits
    labels = teacher.argmax(axis=-1)
    log_q = student - np.log(np.exp(student).sum(axis=-1, keepdims=True))
    expected = -log_q[np.arange(len(labels)), labels].mean()
    value = float(HardTargetDistillation().compute_loss(teacher, student))
    assert value == pytest.approx(expected, rel=1e-5)


def test_hint_arguments_are_checked():
    with pytest.raises(ValueError, match="`student_layer_name` must be a layer name"):
        HintDistillation("fc", None)
    with pytest.raises(ValueError, match="`adapter` must be one of .*adapter='dense'"):
        HintDistillation("fc", "fc", adapter="dense")
    with pytest.raises(ValueError, match="teacher_index=-1"):
        HintDistillation("fc", "fc", teacher_index=-1)


def test_configs_round_trip():
    schedule = keras.optimizers.schedules.PolynomialDecay(8.0, 100, 2.0)
    for loss in (
        SoftTargetDistillation(schedule),
        SoftTargetDistillation(3.0),
        HardTargetDistillation(),
        HintDistillation("fc", "dense", loss="mae", adapter="always", teacher_index=1),
    ):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(restored) is type(loss)
        assert keras.saving.serialize_keras_object(restored) == keras.saving.serialize_keras_object(
            loss
        )
    hint = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert (hint.adapter, hint.teacher_index, hint.student_layer_name) == ("always", 1, "dense")
