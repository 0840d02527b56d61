"""`tfcompress.compat.tfmot` has tfmot's namespaces and stays a leaf of tfcompress."""

import ast
import pathlib

import pytest

import tfcompress as tc
import tfcompress.compat.tfmot as tfmot
from tfcompress.compat.tfmot.clustering import keras as clustering
from tfcompress.compat.tfmot.quantization import keras as quantization
from tfcompress.compat.tfmot.sparsity import keras as sparsity

PACKAGE = pathlib.Path(tc.__file__).parent

NAMES = {
    sparsity: [
        "ConstantSparsity",
        "PolynomialDecay",
        "PrunableLayer",
        "PruningSchedule",
        "PruningSummaries",
        "UpdatePruningStep",
        "prune_low_magnitude",
        "prune_scope",
        "strip_pruning",
    ],
    quantization: [
        "Default8BitClusterPreserveQuantizeScheme",
        "Default8BitPrunePreserveQuantizeScheme",
        "QuantizeConfig",
        "QuantizeScheme",
        "QuantizeWrapper",
        "default_8bit",
        "quantize_annotate_layer",
        "quantize_annotate_model",
        "quantize_apply",
        "quantize_model",
        "quantize_scope",
        "quantizers",
    ],
    clustering: [
        "CentroidInitialization",
        "ClusterableLayer",
        "cluster_scope",
        "cluster_weights",
        "strip_clustering",
    ],
}


@pytest.mark.parametrize("module", list(NAMES), ids=lambda m: m.__name__)
def test_namespace_has_tfmot_names(module):
    assert sorted(module.__all__) == sorted(NAMES[module])
    for name in NAMES[module]:
        assert getattr(module, name) is not None


def test_attribute_and_from_imports_agree():
    assert tfmot.sparsity.keras is sparsity
    assert tfmot.quantization.keras is quantization
    assert tfmot.clustering.keras is clustering
    assert tfmot.sparsity.keras.strip_pruning is tc.strip_pruning
    assert tfmot.clustering.keras.CentroidInitialization is tc.CentroidInitialization
    assert sorted(tfmot.quantization.keras.quantizers.__all__) == [
        "AllValuesQuantizer",
        "LastValueQuantizer",
        "MovingAverageQuantizer",
        "Quantizer",
    ]


def test_schemes_map_onto_ours():
    combine = tfmot.experimental.combine
    scheme = tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    assert (scheme.weight_bits, scheme.preserve_sparsity, scheme.preserve_clusters) == (
        8,
        False,
        False,
    )
    assert combine.Default8BitPrunePreserveQuantizeScheme().preserve_sparsity
    cqat = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
    assert cqat.preserve_clusters and not cqat.preserve_sparsity


def test_asymmetric_weight_quantizer_is_refused():
    quantizer = tfmot.quantization.keras.quantizers.LastValueQuantizer(
        num_bits=8, per_axis=False, symmetric=False, narrow_range=False
    )
    with pytest.raises(ValueError, match="symmetric=True"):
        quantizer.weights()


def _imported_modules(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_compat_is_a_leaf():
    compat = PACKAGE / "compat"
    for path in PACKAGE.rglob("*.py"):
        imported = _imported_modules(path)
        if compat in path.parents:
            assert not any(
                name.split(".")[0] in ("tensorflow_model_optimization", "tf_keras")
                for name in imported
            ), path
        else:
            assert not any(name.startswith("tfcompress.compat") for name in imported), path
