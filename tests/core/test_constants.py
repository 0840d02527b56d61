"""The C++ kernels and Python agree on the block geometry and the auto kernel's threshold."""

import re
from pathlib import Path

import pytest

from tfcompress.core.blocks import BLOCK_SHAPE, SPARSE_MAX_DENSITY

HEADER = Path(__file__).resolve().parents[2] / "kernels" / "src" / "constants.h"


def constants() -> dict[str, float]:
    """`name -> value` of every `constexpr int|double kName = <number>;` in constants.h."""
    pattern = r"constexpr\s+(?:int|double)\s+(k\w+)\s*=\s*([0-9.]+)\s*;"
    return {name: float(value) for name, value in re.findall(pattern, HEADER.read_text())}


def test_header_holds_the_shared_constants():
    assert {"kBlockRows", "kBlockCols", "kSparseMaxDensity"} <= set(constants())


@pytest.mark.parametrize(
    "name,python",
    [
        ("kBlockRows", BLOCK_SHAPE[0]),
        ("kBlockCols", BLOCK_SHAPE[1]),
        ("kSparseMaxDensity", SPARSE_MAX_DENSITY),
    ],
)
def test_cpp_and_python_agree(name, python):
    assert constants()[name] == python, f"{HEADER.name}: {name} differs from tfcompress.core"
