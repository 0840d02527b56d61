"""`compare_kernels` compares like with like: on a model whose unclaimed ops XNNPACK rounds
differently from the reference (int8 MEAN), our bit-exact kernels still read as identical to
the reference, and the deployed view (XNNPACK for the other ops) says it is not."""

from __future__ import annotations

import keras
import numpy as np
from kernel_cases import int8_model

from tfcompress.export import TFLiteFile, TFLiteModel, compare_kernels, format_comparison


def test_like_with_like_and_as_deployed() -> None:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(10)(pooled))
    x = np.random.default_rng(1).normal(size=(200, 8, 8, 3)).astype("float32")
    content = int8_model(model, x)
    assert "MEAN" in [op.name for op in TFLiteFile(content).ops]
    # The premise: XNNPACK's MEAN is not the reference's.
    default = TFLiteModel(content).predict(x)
    assert not np.array_equal(default, TFLiteModel(content, reference_kernels=True).predict(x))

    summary = compare_kernels(content, x, rounds=1, runs=5, kernel_options={"nodes": "all"})
    assert summary["counters"]["nodes_claimed"] == 2
    assert summary["identical_to_reference"] is True
    assert summary["reference_missing"] is None
    assert summary["deployed_identical_to_reference"] is False
    assert summary["default_identical_to_reference"] is False
    assert 0 <= summary["top1_agreement"] <= 1
    text = format_comparison(summary)
    assert "our kernels with reference kernels for the other ops: yes" in text
    assert "as deployed, with XNNPACK for the other ops: NO (default interpreter alone: NO" in text


def test_a_file_the_reference_kernels_cannot_run_is_still_compared() -> None:
    """A DEPTHWISE_CONV_2D with 4-bit weights is an op version TFLite's reference kernels
    lack: the default interpreter and ours are still timed and compared, and the summary
    says why the reference views are missing instead of raising."""
    import tfcompress as tc

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras.layers.DepthwiseConv2D(3, name="dw"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4),
        ]
    )
    qat = tc.quantize_model(model, precision={"dw": 4})
    x = np.random.default_rng(0).random((16, 8, 8, 4), dtype=np.float32)
    qat(x, training=True)  # one batch sets the activation ranges
    content = tc.export_tflite(qat, mode="int8")
    try:
        TFLiteModel(content, reference_kernels=True)
    except ValueError as error:  # the premise
        assert "DEPTHWISE_CONV_2D" in str(error)
    else:
        raise AssertionError("the reference kernels now run 4-bit depthwise convolutions")
    summary = compare_kernels(content, x, rounds=1, runs=5)
    assert "DEPTHWISE_CONV_2D" in summary["reference_missing"]
    assert summary["identical_to_reference"] is None
    assert summary["top1_agreement"] == 1.0
    assert "cannot run it" in format_comparison(summary)
