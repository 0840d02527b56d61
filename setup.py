"""Packaging for tfcompress: Keras 3-native model compression for TFLite/LiteRT."""

import ast
import glob
import os
import subprocess

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext


def kernel_build_flags(path: str = "kernels/flags.bzl") -> dict:
    """The assignments of kernels/flags.bzl, the one list of the kernel library's flags
    (Bazel `load`s the same file)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}


KERNEL_SOURCES = sorted(glob.glob("kernels/src/*.cc"))
_FLAGS = kernel_build_flags()
KERNEL_FLAGS = [
    *_FLAGS["KERNEL_COPTS"],
    "-fPIC",
    "-shared",
    *_FLAGS["KERNEL_LINKOPTS"],
    f"-Wl,--version-script=kernels/{_FLAGS['VERSION_SCRIPT']}",
]
# export_onnx: tf2onnx (Keras' own ONNX export runs it too; 1.17 is the first that accepts
# TensorFlow's protobuf), onnx, and ONNX Runtime to run the result. Tested: 1.17.0, 1.23.2, 1.32.0.
ONNX = ["tf2onnx>=1.17", "onnx>=1.23", "onnxruntime>=1.32"]


class BuildKernels(build_ext):
    """Compiles kernels/src into a plain shared library (no Python C-API) with g++."""

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + ".so"

    def build_extension(self, ext):
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        compiler = os.environ.get("CXX", "g++")
        partial = target + ".partial"
        subprocess.check_call([compiler, *KERNEL_FLAGS, *ext.sources, "-o", partial])
        os.replace(partial, target)


setup(
    name="tfcompress",
    version="0.1.0",
    description=(
        "Pruning, quantization, distillation and factorization for Keras 3, "
        "with TFLite/LiteRT export and measurement."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["tfcompress", "tfcompress.*"]),
    install_requires=[
        "tensorflow>=2.20",
        "keras>=3.12,<4",
        "numpy",
        "absl-py",
        "matplotlib",
        "pyyaml",
    ],
    extras_require={
        "test": ["pytest", "mlxtend", "scikit-learn", "ruff", "cryptography", *ONNX],
        "onnx": ONNX,
        "encryption": ["cryptography"],
        "litert": ["ai-edge-litert"],
        "tfmot": ["tensorflow-model-optimization", "tf-keras"],
        "peers": ["ai-edge-quantizer", "pquant-ml"],
    },
    ext_modules=[Extension("tfcompress.kernels.libtfcompress_kernels", KERNEL_SOURCES)],
    cmdclass={"build_ext": BuildKernels},
    entry_points={"console_scripts": ["tfcompress=tfcompress.cli:run"]},
)
