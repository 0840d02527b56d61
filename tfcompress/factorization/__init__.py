"""Low-rank factorization: Dense and Conv2D layers replaced by products of smaller ones,
initialised from the truncated SVD (or HOSVD) of the trained kernels."""

from tfcompress.factorization.factorize import factorize
from tfcompress.factorization.factorized_conv2d import FactorizedConv2D
from tfcompress.factorization.factorized_dense import FactorizedDense
from tfcompress.factorization.registration import register
from tfcompress.factorization.summary import FactorizationSummary, factorization_summary
from tfcompress.factorization.svd import energy_rank, randomized_svd, truncated_svd

register()

__all__ = [
    "FactorizationSummary",
    "FactorizedConv2D",
    "FactorizedDense",
    "energy_rank",
    "factorization_summary",
    "factorize",
    "randomized_svd",
    "truncated_svd",
]
