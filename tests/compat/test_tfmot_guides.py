"""tfmot's guide calls, run on `tfcompress.compat.tfmot`.

One test per section of tfmot's pruning, quantization-aware training and clustering
comprehensive guides and its collaborative-optimization examples. Each makes the calls the
guide makes, with `import tfcompress.compat.tfmot as tfmot` and `keras` for `tf.keras`; the
models and data are tiny (the guides' 20-feature Dense models, one short epoch).
"""

import gzip

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcompress as tc
import tfcompress.compat.tfmot as tfmot

INPUT_DIM = 20


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, INPUT_DIM)).astype("float32")
    return x, rng.integers(0, 10, size=64)


def setup_model():
    return keras.Sequential(
        [keras.layers.Dense(20, input_shape=(INPUT_DIM,)), keras.layers.Flatten()]
    )


def setup_pretrained_model(data):
    keras.utils.set_random_seed(0)
    model = setup_model()
    train(model, data)
    return model


def train(model, data, callbacks=()):
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(*data, batch_size=16, epochs=1, verbose=0, callbacks=list(callbacks))
    return model


def kernel_sparsity(model):
    kernels = [w for w in model.weights if w.path.endswith("kernel")]
    return [float(np.mean(keras.ops.convert_to_numpy(w) == 0)) for w in kernels]


def distinct_kernel_values(model):
    kernels = [w for w in model.weights if w.path.endswith("kernel")]
    return [len(np.unique(keras.ops.convert_to_numpy(w))) for w in kernels]


# Pruning comprehensive guide


def test_pruning_whole_model(data, tmp_path):
    base_model = setup_pretrained_model(data)
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model)
    callbacks = [
        tfmot.sparsity.keras.UpdatePruningStep(),
        tfmot.sparsity.keras.PruningSummaries(log_dir=str(tmp_path)),
    ]
    train(model_for_pruning, data, callbacks)
    assert kernel_sparsity(tfmot.sparsity.keras.strip_pruning(model_for_pruning)) == [0.5]


def test_pruning_some_layers_with_clone_model(data):
    base_model = setup_pretrained_model(data)

    def apply_pruning_to_dense(layer):
        if isinstance(layer, keras.layers.Dense):
            return tfmot.sparsity.keras.prune_low_magnitude(layer)
        return layer

    model_for_pruning = keras.models.clone_model(base_model, clone_function=apply_pruning_to_dense)
    assert [type(layer).__name__ for layer in model_for_pruning.layers] == [
        "PruneLowMagnitude",
        "Flatten",
    ]
    train(model_for_pruning, data, [tfmot.sparsity.keras.UpdatePruningStep()])


def test_pruning_functional_and_sequential(data):
    i = keras.Input(shape=(INPUT_DIM,))
    x = tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(10))(i)
    o = keras.layers.Flatten()(x)
    functional = keras.Model(inputs=i, outputs=o)
    sequential = keras.Sequential(
        [
            tfmot.sparsity.keras.prune_low_magnitude(
                keras.layers.Dense(20, input_shape=(INPUT_DIM,))
            ),
            keras.layers.Flatten(),
        ]
    )
    for model in (functional, sequential):
        train(model, data, [tfmot.sparsity.keras.UpdatePruningStep()])
        assert kernel_sparsity(tfmot.sparsity.keras.strip_pruning(model)) == [0.5]


def test_pruning_custom_layer(data):
    class MyDenseLayer(keras.layers.Dense, tfmot.sparsity.keras.PrunableLayer):
        def get_prunable_weights(self):
            return [self.kernel, self.bias]

    model_for_pruning = keras.Sequential(
        [
            tfmot.sparsity.keras.prune_low_magnitude(MyDenseLayer(20, input_shape=(INPUT_DIM,))),
            keras.layers.Flatten(),
        ]
    )
    train(model_for_pruning, data, [tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
    bias = keras.ops.convert_to_numpy(stripped.layers[0].bias)
    assert kernel_sparsity(stripped) == [0.5] and np.mean(bias == 0) == 0.5


def test_pruning_custom_training_loop(data, tmp_path):
    keras.utils.set_random_seed(0)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        0.0, 0.75, begin_step=0, end_step=3, frequency=1
    )
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(setup_model(), schedule)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam()
    unused_arg = -1
    step_callback = tfmot.sparsity.keras.UpdatePruningStep()
    step_callback.set_model(model_for_pruning)
    log_callback = tfmot.sparsity.keras.PruningSummaries(log_dir=str(tmp_path))
    log_callback.set_model(model_for_pruning)
    x, y = data
    step_callback.on_train_begin()
    for _ in range(2):
        log_callback.on_epoch_begin(epoch=unused_arg)
        for start in range(0, 32, 8):
            step_callback.on_train_batch_begin(batch=unused_arg)
            with tf.GradientTape() as tape:
                logits = model_for_pruning(x[start : start + 8], training=True)
                loss_value = loss(y[start : start + 8], logits)
            variables = model_for_pruning.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss_value, variables), variables))
        step_callback.on_epoch_end(batch=unused_arg)
    assert kernel_sparsity(tfmot.sparsity.keras.strip_pruning(model_for_pruning)) == [0.75]


def test_pruning_checkpoint_and_deserialize(data, tmp_path):
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(setup_pretrained_model(data))
    train(model_for_pruning, data, [tfmot.sparsity.keras.UpdatePruningStep()])
    keras_model_file = str(tmp_path / "pruned.h5")
    model_for_pruning.save(keras_model_file, include_optimizer=True)
    with tfmot.sparsity.keras.prune_scope():
        loaded_model = keras.models.load_model(keras_model_file)
    train(loaded_model, data, [tfmot.sparsity.keras.UpdatePruningStep()])
    assert kernel_sparsity(tfmot.sparsity.keras.strip_pruning(loaded_model)) == [0.5]


def test_pruning_deploy_with_size_compression(data, tmp_path):
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(
        setup_pretrained_model(data),
        pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.8, begin_step=0),
    )
    train(model_for_pruning, data, [tfmot.sparsity.keras.UpdatePruningStep()])
    model_for_export = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
    sizes = []
    for name, model in (("dense", setup_pretrained_model(data)), ("pruned", model_for_export)):
        keras_file = tmp_path / f"{name}.h5"
        keras.models.save_model(model, str(keras_file), include_optimizer=False)
        sizes.append(len(gzip.compress(keras_file.read_bytes())))
    assert sizes[1] < sizes[0]


def test_pruning_hardware_specific_block_size(data):
    pruning_params = {"block_size": [1, 16]}
    # Unsupported: tfmot pads a weight the block does not divide (the guide's 20 inputs);
    # tfcompress refuses it, naming the layer.
    with pytest.raises(ValueError, match="does not divide"):
        tfmot.sparsity.keras.prune_low_magnitude(setup_model(), **pruning_params)
    base_model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(20)])
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model, **pruning_params)
    train(
        model_for_pruning,
        (data[0][:, :16].repeat(2, axis=1), data[1]),
        [tfmot.sparsity.keras.UpdatePruningStep()],
    )
    kernel = tfmot.sparsity.keras.strip_pruning(model_for_pruning).layers[0].kernel
    blocks = (keras.ops.convert_to_numpy(kernel) == 0).reshape(2, 16, 20)  # [in, out] tiles
    assert np.all(blocks.all(axis=1) | ~blocks.any(axis=1)) and blocks.mean() == 0.5


def test_pruning_sparsity_2_by_4(data):
    model = tfmot.sparsity.keras.prune_low_magnitude(
        setup_pretrained_model(data), sparsity_m_by_n=(2, 4)
    )
    train(model, data, [tfmot.sparsity.keras.UpdatePruningStep()])
    kernel = keras.ops.convert_to_numpy(tfmot.sparsity.keras.strip_pruning(model).layers[0].kernel)
    assert np.all(np.sum(kernel.reshape(-1, 4, 20) != 0, axis=1) <= 2)


# Quantization-aware training comprehensive guide


def test_qat_whole_model(data):
    quant_aware_model = tfmot.quantization.keras.quantize_model(setup_pretrained_model(data))
    train(quant_aware_model, data)
    assert tc.quantization.is_quantized(quant_aware_model)


def test_qat_some_layers_with_clone_model(data):
    base_model = setup_pretrained_model(data)

    def apply_quantization_to_dense(layer):
        if isinstance(layer, keras.layers.Dense):
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer

    annotated_model = keras.models.clone_model(
        base_model, clone_function=apply_quantization_to_dense
    )
    quant_aware_model = tfmot.quantization.keras.quantize_apply(annotated_model)
    names = [type(layer).__name__ for layer in quant_aware_model.layers]
    assert names == ["InputLayer", "QuantizeLayer", "QuantizeWrapper", "Flatten"]
    train(quant_aware_model, data)


def test_qat_functional_and_sequential(data):
    i = keras.Input(shape=(INPUT_DIM,))
    x = tfmot.quantization.keras.quantize_annotate_layer(keras.layers.Dense(10))(i)
    o = keras.layers.Flatten()(x)
    functional = keras.Model(inputs=i, outputs=o)
    sequential = keras.Sequential(
        [
            tfmot.quantization.keras.quantize_annotate_layer(
                keras.layers.Dense(20, input_shape=(INPUT_DIM,))
            ),
            keras.layers.Flatten(),
        ]
    )
    for annotated_model in (functional, sequential):
        train(tfmot.quantization.keras.quantize_apply(annotated_model), data)


def test_qat_checkpoint_and_deserialize(data, tmp_path):
    quant_aware_model = tfmot.quantization.keras.quantize_model(setup_pretrained_model(data))
    keras_model_file = str(tmp_path / "qat.h5")
    quant_aware_model.save(keras_model_file)
    with tfmot.quantization.keras.quantize_scope():
        loaded_model = keras.models.load_model(keras_model_file)
    np.testing.assert_allclose(loaded_model(data[0]), quant_aware_model(data[0]), atol=1e-6)


def test_qat_create_and_deploy(data):
    quant_aware_model = tfmot.quantization.keras.quantize_model(setup_pretrained_model(data))
    train(quant_aware_model, data)
    converter = tf.lite.TFLiteConverter.from_keras_model(quant_aware_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    quantized_tflite_model = converter.convert()
    ops = [op.name for op in tc.TFLiteFile(quantized_tflite_model).ops]
    assert "FULLY_CONNECTED" in ops


LastValueQuantizer = tfmot.quantization.keras.quantizers.LastValueQuantizer
MovingAverageQuantizer = tfmot.quantization.keras.quantizers.MovingAverageQuantizer


class DefaultDenseQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    def get_weights_and_quantizers(self, layer):
        quantizer = LastValueQuantizer(
            num_bits=8, symmetric=True, narrow_range=False, per_axis=False
        )
        return [(layer.kernel, quantizer)]

    def get_activations_and_quantizers(self, layer):
        quantizer = MovingAverageQuantizer(
            num_bits=8, symmetric=False, narrow_range=False, per_axis=False
        )
        return [(layer.activation, quantizer)]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def wrapped_config(quant_aware_model):
    wrapper = next(
        layer
        for layer in quant_aware_model.layers
        if isinstance(layer, tc.quantization.QuantizeWrapper)
    )
    return wrapper.quantize_config


def test_qat_custom_keras_layer(data):
    quantize_annotate_layer = tfmot.quantization.keras.quantize_annotate_layer
    quantize_annotate_model = tfmot.quantization.keras.quantize_annotate_model
    quantize_scope = tfmot.quantization.keras.quantize_scope

    class CustomLayer(keras.layers.Dense):
        pass

    model = quantize_annotate_model(
        keras.Sequential(
            [
                quantize_annotate_layer(
                    CustomLayer(20, input_shape=(INPUT_DIM,)), DefaultDenseQuantizeConfig()
                ),
                keras.layers.Flatten(),
            ]
        )
    )
    with quantize_scope(
        {"DefaultDenseQuantizeConfig": DefaultDenseQuantizeConfig, "CustomLayer": CustomLayer}
    ):
        quant_aware_model = tfmot.quantization.keras.quantize_apply(model)
    config = wrapped_config(quant_aware_model)
    assert config.weight_quantizers == {
        "kernel": tc.quantization.WeightQuantizer(per_channel=False)
    }
    assert config.output_quantizer == tc.quantization.ActivationQuantizer()
    train(quant_aware_model, data)


def test_qat_modify_quantization_parameters(data):
    class ModifiedDenseQuantizeConfig(DefaultDenseQuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            quantizer = LastValueQuantizer(
                num_bits=4, symmetric=True, narrow_range=False, per_axis=False
            )
            return [(layer.kernel, quantizer)]

    model = tfmot.quantization.keras.quantize_annotate_model(
        keras.Sequential(
            [
                tfmot.quantization.keras.quantize_annotate_layer(
                    keras.layers.Dense(20, input_shape=(INPUT_DIM,)), ModifiedDenseQuantizeConfig()
                ),
                keras.layers.Flatten(),
            ]
        )
    )
    with tfmot.quantization.keras.quantize_scope(
        {"ModifiedDenseQuantizeConfig": ModifiedDenseQuantizeConfig}
    ):
        quant_aware_model = tfmot.quantization.keras.quantize_apply(model)
    assert wrapped_config(quant_aware_model).weight_quantizers["kernel"].bits == 4
    train(quant_aware_model, data)


def test_qat_modify_parts_of_layer_to_quantize(data):
    class ModifiedDenseQuantizeConfig(DefaultDenseQuantizeConfig):
        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_activations(self, layer, quantize_activations):
            return

    model = tfmot.quantization.keras.quantize_annotate_model(
        keras.Sequential(
            [
                tfmot.quantization.keras.quantize_annotate_layer(
                    keras.layers.Dense(20, input_shape=(INPUT_DIM,)), ModifiedDenseQuantizeConfig()
                ),
                keras.layers.Flatten(),
            ]
        )
    )
    with tfmot.quantization.keras.quantize_scope(
        {"ModifiedDenseQuantizeConfig": ModifiedDenseQuantizeConfig}
    ):
        quant_aware_model = tfmot.quantization.keras.quantize_apply(model)
    assert wrapped_config(quant_aware_model).output_quantizer is None
    train(quant_aware_model, data)


def test_qat_custom_quantization_algorithm_is_refused():
    class FixedRangeQuantizer(tfmot.quantization.keras.quantizers.Quantizer):
        def build(self, tensor_shape, name, layer):
            return {}

        def __call__(self, inputs, training, weights, **kwargs):
            return keras.ops.clip(inputs, -1.0, 1.0)

        def get_config(self):
            return {}

    class ModifiedDenseQuantizeConfig(DefaultDenseQuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, FixedRangeQuantizer())]

    model = tfmot.quantization.keras.quantize_annotate_model(
        keras.Sequential(
            [
                tfmot.quantization.keras.quantize_annotate_layer(
                    keras.layers.Dense(20, input_shape=(INPUT_DIM,)), ModifiedDenseQuantizeConfig()
                ),
                keras.layers.Flatten(),
            ]
        )
    )
    with pytest.raises(ValueError, match="not custom quantizer algorithms"):
        tfmot.quantization.keras.quantize_apply(model)
    annotation = model.layers[0]
    assert isinstance(annotation.quantize_config, ModifiedDenseQuantizeConfig)  # restored


# Weight clustering comprehensive guide

CentroidInitialization = tfmot.clustering.keras.CentroidInitialization
CLUSTERING_PARAMS = {
    "number_of_clusters": 3,
    "cluster_centroids_init": CentroidInitialization.KMEANS_PLUS_PLUS,
}


def test_clustering_whole_model(data):
    clustered_model = tfmot.clustering.keras.cluster_weights(
        setup_pretrained_model(data), **CLUSTERING_PARAMS
    )
    train(clustered_model, data)
    final_model = tfmot.clustering.keras.strip_clustering(clustered_model)
    assert distinct_kernel_values(final_model) == [3]


def test_clustering_some_layers_with_clone_model(data):
    def apply_clustering_to_dense(layer):
        if isinstance(layer, keras.layers.Dense):
            return tfmot.clustering.keras.cluster_weights(layer, **CLUSTERING_PARAMS)
        return layer

    clustered_model = keras.models.clone_model(
        setup_pretrained_model(data), clone_function=apply_clustering_to_dense
    )
    assert type(clustered_model.layers[0]).__name__ == "ClusterWeights"
    train(clustered_model, data)


def test_clustering_functional_and_sequential(data):
    i = keras.Input(shape=(INPUT_DIM,))
    x = tfmot.clustering.keras.cluster_weights(keras.layers.Dense(10), **CLUSTERING_PARAMS)(i)
    functional = keras.Model(inputs=i, outputs=keras.layers.Flatten()(x))
    sequential = keras.Sequential(
        [
            tfmot.clustering.keras.cluster_weights(
                keras.layers.Dense(20, input_shape=(INPUT_DIM,)), **CLUSTERING_PARAMS
            ),
            keras.layers.Flatten(),
        ]
    )
    for model in (functional, sequential):
        train(model, data)
        assert distinct_kernel_values(tfmot.clustering.keras.strip_clustering(model)) == [3]


def test_clustering_custom_layer(data):
    class MyDenseLayer(keras.layers.Dense, tfmot.clustering.keras.ClusterableLayer):
        def get_clusterable_weights(self):
            return [("kernel", self.kernel)]

    model = keras.Sequential(
        [
            tfmot.clustering.keras.cluster_weights(
                MyDenseLayer(20, input_shape=(INPUT_DIM,)), **CLUSTERING_PARAMS
            ),
            keras.layers.Flatten(),
        ]
    )
    train(model, data)
    assert distinct_kernel_values(tfmot.clustering.keras.strip_clustering(model)) == [3]


def test_clustering_checkpoint_and_deserialize(data, tmp_path):
    clustered_model = tfmot.clustering.keras.cluster_weights(
        setup_pretrained_model(data), **CLUSTERING_PARAMS
    )
    keras_model_file = str(tmp_path / "clustered.h5")
    clustered_model.save(keras_model_file)
    with tfmot.clustering.keras.cluster_scope():
        loaded_model = keras.models.load_model(keras_model_file)
    np.testing.assert_allclose(loaded_model(data[0]), clustered_model(data[0]), atol=1e-6)


@pytest.mark.parametrize("init", ["LINEAR", "DENSITY_BASED", "KMEANS_PLUS_PLUS"])
def test_clustering_centroid_initializations(data, init):
    clustered_model = tfmot.clustering.keras.cluster_weights(
        setup_pretrained_model(data),
        number_of_clusters=4,
        cluster_centroids_init=getattr(CentroidInitialization, init),
    )
    assert distinct_kernel_values(tfmot.clustering.keras.strip_clustering(clustered_model)) == [4]


# Collaborative optimization examples


def pruned_model(data):
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(
        setup_pretrained_model(data),
        pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=100),
    )
    train(model_for_pruning, data, [tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(model_for_pruning)


def stripped_qat_sparsity(quant_aware_model):
    return kernel_sparsity(tc.strip_quantization(quant_aware_model))


def test_collaborative_pruning_preserving_qat(data):
    stripped_pruned_model = pruned_model(data)
    quant_aware_annotate_model = tfmot.quantization.keras.quantize_annotate_model(
        stripped_pruned_model
    )
    pqat_model = tfmot.quantization.keras.quantize_apply(
        quant_aware_annotate_model,
        tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme(),
    )
    train(pqat_model, data)
    assert stripped_qat_sparsity(pqat_model) == [0.5]


def test_collaborative_sparsity_preserving_clustering(data):
    stripped_pruned_model = pruned_model(data)
    sparsity_clustered_model = tfmot.clustering.keras.cluster_weights(
        stripped_pruned_model,
        number_of_clusters=4,
        cluster_centroids_init=CentroidInitialization.KMEANS_PLUS_PLUS,
        preserve_sparsity=True,
    )
    train(sparsity_clustered_model, data)
    stripped = tfmot.clustering.keras.strip_clustering(sparsity_clustered_model)
    assert kernel_sparsity(stripped) == [0.5]


def test_collaborative_clustering_preserving_qat(data):
    clustered_model = tfmot.clustering.keras.cluster_weights(
        setup_pretrained_model(data), **CLUSTERING_PARAMS
    )
    stripped_clustered_model = tfmot.clustering.keras.strip_clustering(clustered_model)
    quant_aware_annotate_model = tfmot.quantization.keras.quantize_annotate_model(
        stripped_clustered_model
    )
    cqat_model = tfmot.quantization.keras.quantize_apply(
        quant_aware_annotate_model,
        tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(),
    )
    train(cqat_model, data)
    assert distinct_kernel_values(tc.strip_quantization(cqat_model)) == [3]


def test_collaborative_pruning_clustering_preserving_qat(data):
    sparsity_clustered_model = tfmot.clustering.keras.cluster_weights(
        pruned_model(data), number_of_clusters=4, preserve_sparsity=True
    )
    train(sparsity_clustered_model, data)
    stripped = tfmot.clustering.keras.strip_clustering(sparsity_clustered_model)
    quant_aware_annotate_model = tfmot.quantization.keras.quantize_annotate_model(stripped)
    pcqat_model = tfmot.quantization.keras.quantize_apply(
        quant_aware_annotate_model,
        tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True),
    )
    train(pcqat_model, data)
    final = tc.strip_quantization(pcqat_model)
    assert kernel_sparsity(final) == [0.5] and distinct_kernel_values(final)[0] <= 4
