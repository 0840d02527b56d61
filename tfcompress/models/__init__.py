"""Reference architectures (builders, not pretrained weights) for tests, demo and benchmarks."""

from tfcompress.models.lenet import lenet_300_100
from tfcompress.models.mobilenet import tiny_mobilenet
from tfcompress.models.small_cnn import small_cnn

__all__ = ["lenet_300_100", "small_cnn", "tiny_mobilenet"]
