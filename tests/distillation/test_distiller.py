"""The Distiller: training, the loss it computes, bad input, saving, labels, caching, teachers."""

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcompress as tc
from tfcompress.distillation import (
    Distiller,
    HardTargetDistillation,
    HintDistillation,
    SoftTargetDistillation,
)


def labels_loss(**kwargs):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, **kwargs)


def agreement(model, teacher, x) -> float:
    ours = model.predict(x, verbose=0).argmax(-1)
    return float(np.mean(ours == teacher.predict(x, verbose=0).argmax(-1)))


def test_trains_the_student_and_predicts_its_outputs(teacher, student, digits):
    x, y = digits.x_train, digits.y_train
    before = agreement(student, teacher, digits.x_test)
    distiller = Distiller(teacher, student, alpha=0.1)
    distiller.compile(keras.optimizers.Adam(1e-2), labels_loss(), metrics=["accuracy"])
    history = distiller.fit(x, y, epochs=4, batch_size=64, verbose=0).history
    assert history["distillation_loss"][-1] < history["distillation_loss"][0] / 2
    assert agreement(student, teacher, digits.x_test) > max(0.8, before + 0.3)
    x = digits.x_test[:8]
    np.testing.assert_allclose(distiller.predict(x, verbose=0), student.predict(x, verbose=0))
    result = distiller.evaluate(digits.x_test, digits.y_test, verbose=0, return_dict=True)
    assert set(result) == {"loss", "accuracy", "student_loss", "distillation_loss"}
    assert distiller.layers == [student]  # callbacks walk the student, not the teacher
    assert distiller.teacher is teacher and not teacher.trainable


def test_loss_equals_keras_distiller_on_the_same_setup(teacher, student, digits):
    x, y = digits.x_train[:64], digits.y_train[:64]
    ours = Distiller(teacher, student, SoftTargetDistillation(4.0), [0.9], alpha=0.1)
    ours.compile("adam", labels_loss())
    reference = keras.distillation.Distiller(
        teacher,
        student,
        keras.distillation.LogitsDistillation(4.0, keras.losses.KLDivergence()),
        student_loss_weight=0.1,
    )
    reference.compile("adam", loss=labels_loss())
    y_pred = student(x)
    value = float(ours.compute_loss(x, y, y_pred, training=False))
    assert value == pytest.approx(float(reference.compute_loss(x, y, y_pred)), rel=1e-4)


def test_bad_input_gets_clear_errors(teacher, student, cnn):
    wide = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match=r"outputs shape \(None, 10\) and student .* \(None, 5\)"):
        Distiller(teacher, wide)
    with pytest.raises(ValueError, match=r"no layer 'fc2'. Its layers: \['conv', 'flatten', 'fc'"):
        Distiller(teacher, student, HintDistillation("fc2", "fc"))
    with pytest.raises(ValueError, match="student model 'student' has no layer 'dense'"):
        Distiller(teacher, student, HintDistillation("fc", "dense"))
    with pytest.raises(ValueError, match="`temperature` must be > 0"):
        Distiller(teacher, student, SoftTargetDistillation(temperature=0.0))
    with pytest.raises(ValueError, match="All loss weights are zero"):
        Distiller(teacher, student, alpha=0.0, distillation_loss_weights=[0.0])
    with pytest.raises(ValueError, match="`teacher_weights` are all zero"):
        Distiller([teacher, teacher], student, teacher_weights=[0, 0])
    with pytest.raises(ValueError, match="one weight per loss"):
        Distiller(teacher, student, distillation_loss_weights=[1.0, 1.0])
    with pytest.raises(TypeError, match="keras.distillation.DistillationLoss"):
        Distiller(teacher, student, distillation_losses=["kl_divergence"])
    with pytest.raises(ValueError, match="`alpha` must be >= 0. Received: alpha=-1"):
        Distiller(teacher, student, alpha=-1)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="subclassed model; wrap it in a functional one"):
        Distiller(teacher, Subclassed())


def test_a_trainable_teacher_is_frozen_with_one_warning(cnn, student):
    thawed = cnn(name="thawed")
    with pytest.warns(UserWarning, match="Teacher 'thawed' was trainable; the Distiller froze it"):
        Distiller(thawed, student)
    assert not thawed.trainable and not thawed.trainable_weights
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        Distiller(thawed, student)  # already frozen: said once


def test_saves_and_loads_as_keras(teacher, student, digits, reload):
    schedule = keras.optimizers.schedules.PolynomialDecay(6.0, 100, 2.0)
    losses = [SoftTargetDistillation(schedule), HardTargetDistillation()]
    losses.append(HintDistillation("fc", "fc"))
    distiller = Distiller(teacher, student, losses, [1.0, 0.2, 0.1], alpha=0.3)
    distiller.compile(keras.optimizers.Adam(1e-2), labels_loss(), metrics=["accuracy"])
    distiller.fit(digits.x_train[:256], digits.y_train[:256], epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no freeze nor optimizer-state warning
        loaded = reload(distiller)
    assert isinstance(loaded, Distiller) and not loaded.teacher.trainable
    assert json.dumps(loaded.get_config()) == json.dumps(distiller.get_config())  # tuples: lists
    x = digits.x_test[:16]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), distiller.predict(x, verbose=0))
    for ours, theirs in zip(loaded.adapters[0].weights, distiller.adapters[0].weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert int(loaded.optimizer.iterations) == int(distiller.optimizer.iterations) == 8
    loaded.fit(digits.x_train[:64], digits.y_train[:64], epochs=1, verbose=0)  # compiled: resumes


def test_learns_from_the_teacher_alone_without_labels(teacher, student, digits):
    distiller = Distiller(teacher, student, alpha=0.0)
    distiller.compile(keras.optimizers.Adam(1e-2))  # a transfer set needs no label loss
    distiller.fit(digits.x_train, epochs=4, batch_size=64, verbose=0)
    assert agreement(student, teacher, digits.x_test) > 0.8
    labelled = Distiller(teacher, student, alpha=0.5)
    labelled.compile("adam")
    with pytest.raises(ValueError, match="`compile` got no `loss`"):
        labelled.fit(digits.x_train[:64], digits.y_train[:64], verbose=0)


def test_partly_labelled_data_uses_the_labels_it_has(teacher, student, digits):
    x, y = digits.x_train[:128], digits.y_train[:128].copy()
    distiller = Distiller(teacher, student, alpha=1.0)
    distiller.compile("adam", labels_loss(ignore_class=-1))
    y[64:] = -1  # second batch without labels
    y_pred = student(x[64:])
    unlabelled = distiller.compute_loss(x[64:], y[64:], y_pred, training=False)
    no_labels = distiller.compute_loss(x[64:], None, y_pred, training=False)
    assert float(unlabelled) == pytest.approx(float(no_labels))
    history = distiller.fit(x, y, batch_size=64, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["student_loss"][0] > 0


def test_cached_teacher_outputs_run_the_teacher_once_per_sample(teacher, student, cnn, digits):
    x, y = digits.x_train[:192], digits.y_train[:192]
    calls = []

    def counted(batch):
        calls.append(len(batch))
        return keras.ops.convert_to_numpy(teacher(batch))

    cached = Distiller(counted, student, cache_teacher_outputs=True)
    cached.compile("adam", labels_loss())
    calls.clear()  # the construction probe
    cached.fit(x, y, batch_size=64, epochs=2, verbose=0)
    cached.fit(x[::-1], y[::-1], batch_size=64, epochs=1, verbose=0)  # same samples, new order
    assert sum(calls) == len(x)

    live = Distiller(counted, cnn(4, 8), cache_teacher_outputs=False)
    live.compile("adam", labels_loss())
    calls.clear()
    live.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert sum(calls) == len(x)  # and again in every epoch


def test_cached_and_live_teacher_give_the_same_training(teacher, cnn, digits):
    x, y = digits.x_train[:256], digits.y_train[:256]
    losses = [SoftTargetDistillation(), HintDistillation("fc", "fc")]
    histories, weights = [], []
    for cache in (True, False):
        keras.utils.set_random_seed(3)
        distiller = Distiller(teacher, cnn(4, 8), losses, [1.0, 0.1], cache_teacher_outputs=cache)
        distiller.compile(keras.optimizers.Adam(1e-2), labels_loss())
        histories.append(distiller.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0))
        weights.append(distiller.student.get_weights())
    cached, live = (h.history["loss"] for h in histories)
    np.testing.assert_allclose(cached, live, rtol=1e-4)
    for from_cache, from_teacher in zip(*weights):
        np.testing.assert_allclose(from_cache, from_teacher, atol=1e-4)
    distiller = Distiller(teacher, cnn(4, 8), cache_teacher_outputs=True)
    distiller.compile("adam", labels_loss())
    with pytest.raises(ValueError, match="needs `x` as one array"):
        distiller.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), verbose=0)


def test_tflite_and_callable_teachers(teacher, student, digits, reload, tmp_path):
    path = tmp_path / "teacher.tflite"
    tc.export_tflite(teacher, path)
    x = digits.x_test[:32]
    for source in (path, path.read_bytes(), tc.TFLiteModel(str(path))):
        distiller = Distiller(source, student)
        outputs = distiller.teacher_outputs(x)["0"]
        np.testing.assert_allclose(outputs, teacher.predict(x, verbose=0), atol=1e-4)
    distiller.compile(keras.optimizers.Adam(1e-2), labels_loss())
    assert distiller.jit_compile is False  # tf.numpy_function inside the step
    distiller.fit(digits.x_train, digits.y_train, epochs=4, batch_size=64, verbose=0)
    assert agreement(student, teacher, digits.x_test) > 0.8
    loaded = reload(distiller)  # the .tflite travels inside the .keras file
    np.testing.assert_allclose(loaded.teacher_outputs(x)["0"], outputs)
    with pytest.raises(ValueError, match="jit_compile=True"):
        distiller.compile("adam", labels_loss(), jit_compile=True)

    callable_teacher = Distiller(lambda batch: keras.ops.convert_to_numpy(teacher(batch)), student)
    with pytest.raises(ValueError, match="is a Python callable, which cannot be saved"):
        callable_teacher.get_config()
    with pytest.raises(ValueError, match=r"outputs shape \(None, 3\)"):
        Distiller(lambda batch: np.zeros((len(batch), 3)), student)
    with pytest.raises(ValueError, match="Hints need a Keras teacher"):
        Distiller(path, student, HintDistillation("fc", "fc"))


def test_several_teachers_are_weighted(teacher, student, cnn, digits):
    other = cnn(16, 64, name="other")
    other.trainable = False
    x, y = digits.x_train[:64], digits.y_train[:64]
    y_pred = student(x)
    soft = SoftTargetDistillation(2.0)
    both = Distiller([teacher, other], student, soft, alpha=0.0, teacher_weights=[3, 1])
    expected = 0.75 * soft.compute_loss(teacher(x), y_pred) + 0.25 * soft.compute_loss(
        other(x), y_pred
    )
    assert float(both.compute_loss(x, y, y_pred)) == pytest.approx(float(expected), rel=1e-5)
    assert both.teachers == [teacher, other]
    with pytest.raises(ValueError, match="has 2 teachers; use `.teachers`"):
        both.teacher  # noqa: B018
    hint = HintDistillation("conv", "conv", teacher_index=1)
    outputs = Distiller([teacher, other], student, [soft, hint]).teacher_outputs(x)
    assert sorted(outputs) == ["0", "1", "1:conv"] and outputs["1:conv"].shape == (64, 6, 6, 16)
    with pytest.raises(ValueError, match="teacher_index=2, but there are 2 teachers"):
        Distiller([teacher, other], student, HintDistillation("fc", "fc", teacher_index=2))


def test_hints_get_adapters_where_widths_differ(teacher, student, digits):
    losses = [HintDistillation("fc", "fc"), HintDistillation("conv", "conv")]
    distiller = Distiller(teacher, student, losses, alpha=0.0)
    dense, conv = distiller.adapters
    assert isinstance(dense, keras.layers.Dense) and dense.kernel.shape == (16, 64)
    assert isinstance(conv, keras.layers.Conv2D) and conv.kernel.shape == (1, 1, 8, 16)
    assert distiller.layers == [student, dense, conv]
    before = [w.numpy().copy() for w in (dense.kernel, conv.kernel)]
    distiller.compile(keras.optimizers.Adam(1e-2))
    history = distiller.fit(digits.x_train, epochs=2, batch_size=64, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert all(np.any(w.numpy() != b) for w, b in zip((dense.kernel, conv.kernel), before))
    assert len(student.weights) == 6  # the adapters stay outside the student

    with pytest.raises(ValueError, match=r"widths differ \(student 16, teacher 64\)"):
        Distiller(teacher, student, HintDistillation("fc", "fc", adapter="never"))
    with pytest.raises(ValueError, match="differ beyond the last"):
        Distiller(teacher, student, HintDistillation("conv", "fc"))
    same = Distiller(teacher, student, HintDistillation("logits", "logits", adapter="always"))
    assert same.adapters[0].kernel.shape == (10, 10)


def test_schedules_read_the_optimizer_step(teacher, student, digits):
    ramp = keras.optimizers.schedules.PolynomialDecay(0.0, 10, 1.0)  # alpha 0 -> 1
    distiller = Distiller(teacher, student, alpha=ramp, distillation_loss_weights=[0.0])
    distiller.compile("adam", labels_loss())
    x, y = digits.x_train[:32], digits.y_train[:32]
    y_pred = student(x)
    assert float(distiller.compute_loss(x, y, y_pred)) == 0.0
    distiller.optimizer.iterations.assign(10)
    label = float(labels_loss()(y, y_pred))
    assert float(distiller.compute_loss(x, y, y_pred)) == pytest.approx(label, rel=1e-5)
