"""Finding and loading `libtfcompress_kernels.so`, the C++ delegate library."""

from __future__ import annotations

import ctypes
import functools
import os

LIBRARY_NAME = "libtfcompress_kernels.so"
ENV_VAR = "TFCOMPRESS_KERNELS_LIBRARY"

BUILD_HINT = (
    "Build it with `pip install -e .` (or `pip install .`) from the repository root, which "
    "compiles kernels/src with g++, or with `bazel build //kernels:tfcompress_kernels` and "
    f"`{ENV_VAR}=bazel-bin/kernels/{LIBRARY_NAME}`."
)


class KernelsNotBuiltError(ImportError):
    """The tfcompress kernel library was not built or cannot be found."""


def library_path() -> str:
    """Path of the kernel library: `$TFCOMPRESS_KERNELS_LIBRARY` or the one built by pip.

    Raises:
        KernelsNotBuiltError: No library at that path, with how to build it.
    """
    override = os.environ.get(ENV_VAR)
    path = override or os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)
    if not os.path.isfile(path):
        where = f"`{ENV_VAR}`={override!r}" if override else f"{path!r}"
        raise KernelsNotBuiltError(
            f"The tfcompress kernel library is missing at {where}. {BUILD_HINT}"
        )
    return os.path.abspath(path)


def is_built() -> bool:
    """Whether `library_path()` finds a library."""
    try:
        library_path()
    except KernelsNotBuiltError:
        return False
    return True


class NodeInfo(ctypes.Structure):
    """`TfcNodeInfo` of kernels/src/c_api.h: one node the delegate could run."""

    _fields_ = [
        ("node", ctypes.c_int32),
        ("n", ctypes.c_int32),
        ("k", ctypes.c_int32),
        ("rows", ctypes.c_int32),
        ("claimed", ctypes.c_int32),
        ("block_density", ctypes.c_double),
        ("expected_speedup", ctypes.c_double),
        ("op", ctypes.c_char_p),
        ("kernel", ctypes.c_char_p),
        ("isa", ctypes.c_char_p),
    ]


@functools.cache
def native(path: str) -> ctypes.CDLL:
    """The library at `path` through ctypes, with the `tfc_*` signatures of
    kernels/src/c_api.h declared.

    Raises:
        KernelsNotBuiltError: The library's `TfcNodeInfo` differs from `NodeInfo` (a
            library built from other sources).
    """
    lib = ctypes.CDLL(path)
    lib.tfc_counter_count.restype = ctypes.c_int
    lib.tfc_counter_name.argtypes = [ctypes.c_int]
    lib.tfc_counter_name.restype = ctypes.c_char_p
    lib.tfc_delegate_counter.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.tfc_delegate_counter.restype = ctypes.c_int64
    lib.tfc_node_info_size.restype = ctypes.c_int
    lib.tfc_delegate_node_count.argtypes = [ctypes.c_void_p]
    lib.tfc_delegate_node_count.restype = ctypes.c_int
    lib.tfc_delegate_node.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(NodeInfo)]
    lib.tfc_delegate_node.restype = ctypes.c_int
    lib.tfc_delegate_isa.argtypes = [ctypes.c_void_p]
    lib.tfc_delegate_isa.restype = ctypes.c_char_p
    lib.tfc_best_isa.restype = ctypes.c_char_p
    lib.tfc_host.restype = ctypes.c_char_p
    if lib.tfc_node_info_size() != ctypes.sizeof(NodeInfo):
        raise KernelsNotBuiltError(
            f"The kernel library at {path!r} does not match this tfcompress: its node record "
            f"is {lib.tfc_node_info_size()} bytes, expected {ctypes.sizeof(NodeInfo)}. "
            f"Rebuild it. {BUILD_HINT}"
        )
    return lib


def best_isa(path: str | None = None) -> str:
    """The fastest kernel path this CPU runs: `avx512vnni`, `avx2`, `neondot` or `portable`."""
    return native(path or library_path()).tfc_best_isa().decode()


def host_kind(path: str | None = None) -> str:
    """What the interpreter's default int8 kernels (XNNPACK) can use on this CPU, as the
    kernels' cost model sees it: `avx512vnni+amx`, `avx512vnni`, `avx2` or `other`."""
    return native(path or library_path()).tfc_host().decode()
