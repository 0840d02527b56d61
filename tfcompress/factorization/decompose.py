"""The numpy side of factorization: kernels to factors, factors back to kernels, spectra.

Conv2D kernels are `[kh, kw, in, out]` (Keras' layout).

* Spatial (Jaderberg, Vedaldi and Zisserman 2014, scheme 2): the kernel as the
  matrix `M[(i, c), (j, n)] = W[i, j, c, n]` of shape `[kh * in, kw * out]`; its
  rank-r SVD gives a `kh x 1` convolution to r channels (rows `(i, c)`) and a
  `1 x kw` convolution to `out` channels (columns `(j, n)`). Exact at
  `r = min(kh * in, kw * out)`.
* Channel (Tucker-2 by truncated HOSVD, as in Kim et al. 2016): `U_in`, the
  leading `r_in` left singular vectors of the mode-`in` unfolding `[in, kh*kw*out]`,
  `U_out` those of the mode-`out` unfolding `[out, kh*kw*in]`, and the core
  `G = W x_in U_in^T x_out U_out^T`; `W ~ G x_in U_in x_out U_out` runs as a 1x1
  convolution down to `r_in` channels, a `kh x kw` one to `r_out`, a 1x1 up to
  `out`. Exact at `(r_in, r_out) = (in, out)`; otherwise the squared error is
  `||W||^2 - ||G||^2`, as both projections are orthogonal.
"""

from __future__ import annotations

import numpy as np

from tfcompress.factorization.svd import balanced_factors, singular_values, truncated_svd


def spatial_matrix(kernel: np.ndarray) -> np.ndarray:
    """`[kh, kw, in, out]` -> `[kh * in, kw * out]`, rows `(i, c)`, columns `(j, n)`."""
    kh, kw, cin, cout = kernel.shape
    return np.transpose(kernel, (0, 2, 1, 3)).reshape(kh * cin, kw * cout)


def spatial_factors(kernel: np.ndarray, rank: int, method: str = "auto", seed: int = 0):
    """`(vertical [kh, 1, in, rank], horizontal [1, kw, rank, out])` from the kernel's SVD."""
    kh, kw, cin, cout = kernel.shape
    a, b = balanced_factors(spatial_matrix(kernel), rank, method, seed)
    vertical = a.reshape(kh, cin, rank)[:, None]
    horizontal = np.transpose(b.reshape(rank, kw, cout), (1, 0, 2))[None]
    return vertical, horizontal


def spatial_kernel(vertical: np.ndarray, horizontal: np.ndarray) -> np.ndarray:
    """The `[kh, kw, in, out]` kernel the two convolutions compute together."""
    return np.einsum("icr,jrn->ijcn", vertical[:, 0], horizontal[0], optimize=True)


def _unfold(kernel: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(kernel, axis, 0).reshape(kernel.shape[axis], -1)


def channel_spectra(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values of the input- and output-channel unfoldings of a conv kernel."""
    return singular_values(_unfold(kernel, 2)), singular_values(_unfold(kernel, 3))


def _basis(unfolding: np.ndarray, rank: int, method: str, seed: int) -> np.ndarray:
    """`rank` orthonormal columns: the leading left singular vectors of `unfolding`.

    A rank above the unfolding's own (`r_out > kh * kw * in`, as in a stem conv
    taking 3 channels to 32) is completed by orthonormal vectors the kernel does not
    use, so the factorization stays exact there instead of getting too few columns.
    """
    if rank <= min(unfolding.shape):
        return truncated_svd(unfolding, rank, method, seed)[0]
    return np.linalg.svd(unfolding, full_matrices=True)[0][:, :rank]


def channel_factors(
    kernel: np.ndarray, ranks: tuple[int, int], method: str = "auto", seed: int = 0
):
    """`(down [1, 1, in, r_in], core [kh, kw, r_in, r_out], up [1, 1, r_out, out])` (HOSVD)."""
    w = np.asarray(kernel, dtype=np.float64)
    u_in = _basis(_unfold(w, 2), ranks[0], method, seed)
    u_out = _basis(_unfold(w, 3), ranks[1], method, seed)
    core = np.einsum("ijcn,cr,ns->ijrs", w, u_in, u_out, optimize=True)  # BLAS, not loops
    return u_in[None, None], core, u_out.T[None, None]


def channel_kernel(down: np.ndarray, core: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The `[kh, kw, in, out]` kernel the three convolutions compute together."""
    return np.einsum("cr,ijrs,sn->ijcn", down[0, 0], core, up[0, 0], optimize=True)
