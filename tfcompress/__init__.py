"""tfcompress: make Keras 3 models small and fast for phones and edge devices."""

from tfcompress import (
    clustering,
    datasets,
    distillation,
    distribute,
    encryption,
    factorization,
    kernels,
    models,
    planning,
    pruning,
    quantization,
    reporting,
)
from tfcompress.clustering import CentroidInitialization, cluster_weights, strip_clustering
from tfcompress.distillation import Distiller, make_student
from tfcompress.encryption import decrypt_model, encrypt_model
from tfcompress.export import (
    ConversionError,
    TFLiteFile,
    TFLiteModel,
    compare_kernels,
    export_onnx,
    export_tflite,
)
from tfcompress.factorization import FactorizedConv2D, FactorizedDense, factorize
from tfcompress.kernels import KernelDelegate
from tfcompress.planning import (
    CompressionResult,
    InfeasibleTargetError,
    Recipe,
    Sensitivity,
    Target,
    compress,
    plan,
    sensitivity,
)
from tfcompress.pruning import (
    ConstantSparsity,
    PolynomialDecay,
    UpdatePruningStep,
    get_sparsity,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.quantization import (
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_apply,
    quantize_model,
    quantize_scope,
    strip_quantization,
)
from tfcompress.reporting import CompressionReport, ReportComparison, register_layer, report

__version__ = "0.1.0"

__all__ = [
    "CentroidInitialization",
    "cluster_weights",
    "clustering",
    "distillation",
    "distribute",
    "Distiller",
    "decrypt_model",
    "encrypt_model",
    "encryption",
    "make_student",
    "factorization",
    "factorize",
    "kernels",
    "KernelDelegate",
    "compare_kernels",
    "FactorizedConv2D",
    "FactorizedDense",
    "quantization",
    "quantize_annotate_layer",
    "quantize_annotate_model",
    "quantize_apply",
    "quantize_model",
    "quantize_scope",
    "strip_clustering",
    "strip_quantization",
    "CompressionReport",
    "CompressionResult",
    "compress",
    "ConstantSparsity",
    "PolynomialDecay",
    "UpdatePruningStep",
    "get_sparsity",
    "prune_low_magnitude",
    "pruning",
    "strip_pruning",
    "ReportComparison",
    "ConversionError",
    "TFLiteFile",
    "TFLiteModel",
    "datasets",
    "export_onnx",
    "export_tflite",
    "models",
    "planning",
    "plan",
    "InfeasibleTargetError",
    "Recipe",
    "Sensitivity",
    "Target",
    "sensitivity",
    "register_layer",
    "report",
    "reporting",
]
