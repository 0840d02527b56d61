"""Pruned and QAT students train through Distiller.fit, and strip to plain compressed models."""

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.distillation import Distiller, HintDistillation


def labels_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_pruning_callback_drives_the_students_wrappers(teacher, cnn, digits):
    schedule = tc.ConstantSparsity(0.75, begin_step=0, frequency=5)
    pruned = tc.prune_low_magnitude(cnn(8, 32, name="pruned"), schedule, skip=["logits"])
    distiller = Distiller(
        teacher, pruned, [tc.distillation.SoftTargetDistillation(), HintDistillation("fc", "fc")]
    )
    wrappers = tc.pruning.update_pruning_step.collect_wrappers(distiller)
    assert [w.name for w in wrappers] == ["prune_low_magnitude_conv", "prune_low_magnitude_fc"]
    distiller.compile(keras.optimizers.Adam(1e-2), labels_loss())
    with pytest.raises(Exception, match="UpdatePruningStep"):
        distiller.fit(digits.x_train[:64], digits.y_train[:64], verbose=0)
    distiller.fit(
        digits.x_train,
        digits.y_train,
        epochs=4,
        batch_size=64,
        verbose=0,
        callbacks=[tc.UpdatePruningStep()],
    )
    plain = tc.strip_pruning(distiller.student)
    sparsity = tc.get_sparsity(plain)
    assert sparsity["conv/kernel"] == pytest.approx(0.75, abs=0.01)
    assert sparsity["fc/kernel"] == pytest.approx(0.75, abs=0.01)
    assert sparsity["logits/kernel"] == 0.0
    accuracy = np.mean(plain.predict(digits.x_test, verbose=0).argmax(-1) == digits.y_test)
    assert accuracy > 0.8


def test_qat_student_distills_and_exports_int8(teacher, cnn, digits):
    qat = tc.quantize_model(cnn(8, 32, name="qat"))
    distiller = Distiller(
        teacher, qat, [tc.distillation.SoftTargetDistillation(), HintDistillation("fc", "fc")]
    )
    distiller.compile(keras.optimizers.Adam(1e-2), labels_loss())
    distiller.fit(digits.x_train, digits.y_train, epochs=3, batch_size=64, verbose=0)
    content = tc.export_tflite(distiller.student, mode="int8")
    runner = tc.TFLiteModel(content)
    assert runner.input_dtype == np.float32 and b"TFL3" in content[:8]
    keras_top1 = distiller.predict(digits.x_test, verbose=0).argmax(-1)
    tflite_top1 = runner.predict(digits.x_test).argmax(-1)
    assert np.mean(keras_top1 == tflite_top1) > 0.97
    assert np.mean(tflite_top1 == digits.y_test) > 0.8
    plain = tc.strip_quantization(distiller.student)
    assert not any("quant" in layer.name for layer in plain.layers)
