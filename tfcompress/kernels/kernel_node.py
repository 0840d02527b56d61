"""`KernelNode`: one node our delegate claimed, and the kernel it runs."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class KernelNode:
    """One int8 node claimed by a `KernelDelegate`, as the library set it up.

    Attributes:
        node: Index of the node in the interpreter's execution plan.
        op: `"FULLY_CONNECTED"` or `"CONV_2D"`.
        n: Outputs of the layer as a GEMM (output channels).
        k: Inputs per output (a convolution: kernel height x width x input channels).
        block_density: Fraction of the 16x4 blocks of the `[n][k]` weights holding a non-zero.
        kernel: `"reference"`, `"dense"` or `"sparse"`.
        isa: The packed kernel's path (`avx512vnni`, `avx2`, `neondot`, `portable`);
            None for the reference kernel.
    """

    node: int
    op: str
    n: int
    k: int
    block_density: float
    kernel: str
    isa: str | None

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)
