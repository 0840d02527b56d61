import keras
import pytest

from tfcompress.models import lenet_300_100, small_cnn, tiny_mobilenet


def test_lenet_parameter_count_by_hand():
    expected = (784 * 300 + 300) + (300 * 100 + 100) + (100 * 10 + 10)
    assert lenet_300_100().count_params() == expected


def test_small_cnn_parameter_count_by_hand():
    conv1 = 3 * 3 * 1 * 32 + 32
    conv2 = 3 * 3 * 32 * 64 + 64
    fc1 = 12 * 12 * 64 * 128 + 128
    logits = 128 * 10 + 10
    model = small_cnn()
    assert model.count_params() == conv1 + conv2 + fc1 + logits
    assert model.get_layer("fc1").count_params() / model.count_params() > 0.98


def test_tiny_mobilenet_has_depthwise_bn_and_residual():
    model = tiny_mobilenet()
    kinds = {type(layer) for layer in model.layers}
    assert {
        keras.layers.DepthwiseConv2D,
        keras.layers.BatchNormalization,
        keras.layers.Add,
    } <= kinds
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("builder", [lenet_300_100, small_cnn, tiny_mobilenet])
def test_builders_accept_other_inputs(builder):
    model = builder(input_shape=(8, 8, 1), num_classes=5)
    assert model.output_shape == (None, 5)


def test_tiny_mobilenet_rejects_bad_width():
    with pytest.raises(ValueError, match="width=0"):
        tiny_mobilenet(width=0)
