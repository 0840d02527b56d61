"""scikit-learn's 8x8 digits: 1,797 real images, handy for very fast tests."""

from __future__ import annotations

from tfcompress.datasets.split import Split, missing_extra, stratified_split


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Split:
    """Loads the UCI optdigits 8x8 images with a stratified, seeded split.

    Args:
        seed: Seed of the split and of the sample order.
        test_fraction: Fraction of each class in the test set, in (0, 1).

    Returns:
        A `Split` with `x_*` of shape `(n, 8, 8, 1)`, float32 in [0, 1], and `y_*` int64.

    Raises:
        ImportError: scikit-learn is not installed.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> data.x_train.shape[1:]
        (8, 8, 1)
    """
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as err:
        raise missing_extra("scikit-learn", "load_digits") from err
    bunch = sklearn_load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    return stratified_split(x, bunch.target.astype("int64"), test_fraction, seed)
