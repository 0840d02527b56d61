"""TFLiteFile on files from elsewhere: sparse constants (TFLite sparsity, DENSIFY), op names."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.export.flatbuffer import BUILTIN_OPS, TFLiteFile
from tfcompress.export.sparsity import DENSE, SPARSE_CSR, TensorSparsity


def pruned_model() -> keras.Model:
    """conv (unstructured 90% zeros) - dense (1x4 blocks of the [out, in] kernel, 80% zeros)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(8, 3, name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(16, name="fc"),
        ]
    )
    conv = model.get_layer("conv")
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel * (rng.uniform(size=kernel.shape) < 0.1), bias])
    fc = model.get_layer("fc")
    kernel, bias = fc.get_weights()  # [in=128, out=16]; TFLite stores [out, in]
    blocks = (rng.uniform(size=(16, 32)) < 0.2).repeat(4, axis=1).T
    fc.set_weights([kernel * blocks, bias])
    return model


def sparse_tflite(model: keras.Model, mode: str) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    if mode == "float16":
        converter.optimizations.append(tf.lite.Optimize.DEFAULT)
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        rng = np.random.default_rng(1)
        converter.optimizations.append(tf.lite.Optimize.DEFAULT)
        converter.representative_dataset = lambda: (
            [rng.uniform(size=(1, 6, 6, 2)).astype("float32")] for _ in range(8)
        )
    return converter.convert()


@pytest.fixture(scope="module")
def model():
    return pruned_model()


@pytest.fixture(scope="module")
def files(model):
    return {mode: sparse_tflite(model, mode) for mode in ("float32", "float16", "int8")}


def tflite_kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """The Keras kernels in TFLite's layout, `[out, *window, in]` / `[out, in]`."""
    return {
        "conv": np.transpose(model.get_layer("conv").kernel.numpy(), (3, 0, 1, 2)),
        "fc": model.get_layer("fc").kernel.numpy().T,
    }


def weight_of(info: TFLiteFile, op_name: str):
    op = next(op for op in info.ops if op.name == op_name)
    return info.constant(op.inputs[1])


def test_sparse_constants_are_densified(model, files):
    expected = tflite_kernels(model)
    for mode, content in files.items():
        info = TFLiteFile(content)  # raised "cannot reshape array of size ..." before
        sparse = [t for t in info.tensors if t.is_sparse]
        assert len(sparse) >= 2, mode
        for op_name, layer in (("CONV_2D", "conv"), ("FULLY_CONNECTED", "fc")):
            weight = weight_of(info, op_name)  # through DENSIFY (and DEQUANTIZE) ops
            assert weight.is_sparse and weight.data.shape == expected[layer].shape, mode
            assert "SPARSE_CSR" in weight.sparsity.format_names
            if mode == "int8":
                scale = np.asarray(weight.scale).reshape(-1, *[1] * (weight.data.ndim - 1))
                np.testing.assert_allclose(weight.data * scale, expected[layer], atol=scale.max())
            else:
                np.testing.assert_allclose(weight.data, expected[layer], rtol=1e-3, atol=1e-3)
            assert weight.stored_values < weight.data.size / 2
            assert np.count_nonzero(weight.data) <= weight.stored_values
    fc = weight_of(TFLiteFile(files["float32"]), "FULLY_CONNECTED")
    assert fc.sparsity.block_map == (1,) and fc.sparsity.block_shape == (4,)
    assert fc.stored_values == np.count_nonzero(expected["fc"])  # whole 1x4 blocks stored
    assert fc.stored_bytes == 4 * fc.stored_values + fc.sparsity.index_bytes


def test_densify_walks_blocks_and_csr_levels():
    """A 4x6 matrix in 2x3 blocks: block rows dense, block columns CSR, each block dense."""
    dense = np.zeros((4, 6), "float32")
    dense[0:2, 3:6] = np.arange(1, 7).reshape(2, 3)  # block (0, 1)
    dense[2:4, 0:3] = np.arange(7, 13).reshape(2, 3)  # block (1, 0)
    sparsity = TensorSparsity(
        traversal_order=(0, 1, 2, 3),
        block_map=(0, 1),
        formats=(DENSE, SPARSE_CSR, DENSE, DENSE),
        dense_sizes=(2, 0, 2, 3),
        segments=(np.zeros(0), np.array([0, 1, 2]), np.zeros(0), np.zeros(0)),
        indices=(np.zeros(0), np.array([1, 0]), np.zeros(0), np.zeros(0)),
    )
    assert sparsity.stored_values == 12 and sparsity.block_shape == (2, 3)
    np.testing.assert_array_equal(
        sparsity.densify(np.arange(1, 13, dtype="float32"), (4, 6)), dense
    )
    with pytest.raises(ValueError, match="describe 12 stored values, the buffer holds 11"):
        sparsity.densify(np.arange(11, dtype="float32"), (4, 6))


def test_every_builtin_code_has_its_name():
    assert set(BUILTIN_OPS) == set(range(max(BUILTIN_OPS) + 1))
    assert BUILTIN_OPS[70] == "EXPAND_DIMS" and BUILTIN_OPS[119] == "WHILE"
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    assert {code: names[code] for code in BUILTIN_OPS if code in names} == {
        code: name for code, name in BUILTIN_OPS.items() if code in names
    }


def test_expand_dims_and_while_are_named():
    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.float32)])
    def loop(x):
        x = tf.expand_dims(x, 0)
        return tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 2.0), (0, x))[1]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([loop.get_concrete_function()])
    names = [op.name for op in TFLiteFile(converter.convert()).ops]
    assert "EXPAND_DIMS" in names and "WHILE" in names
    assert not [name for name in names if name.startswith("BUILTIN_")]
