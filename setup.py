"""Packaging for tfcompress: Keras 3-native model compression for TFLite/LiteRT."""

from setuptools import find_packages, setup

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
    ],
    extras_require={
        "test": ["pytest", "mlxtend", "scikit-learn", "ruff"],
        "litert": ["ai-edge-litert"],
        "tfmot": ["tensorflow-model-optimization", "tf-keras"],
    },
    entry_points={"console_scripts": ["tfcompress=tfcompress.cli:run"]},
)
