"""`KernelNode`: one node our delegate could run, whether it claimed it, and the kernel."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class KernelNode:
    """One int8 node a `KernelDelegate` can run, claimed or left to the interpreter.

    Attributes:
        node: Index of the node in the interpreter's execution plan.
        op: `"FULLY_CONNECTED"`, `"CONV_2D"` or `"DEPTHWISE_CONV_2D"` (`n` channels of
            `k` = kernel height x width taps; never block-sparse).
        n: Outputs of the layer as a GEMM (output channels).
        k: Inputs per output (a convolution: kernel height x width x input channels).
        block_density: Fraction of the 16x4 blocks of the `[n][k]` weights holding a non-zero.
        kernel: The kernel it runs, or would run: `"reference"`, `"dense"` or `"sparse"`.
        isa: The packed kernel's path (`avx512vnni`, `avx2`, `neondot`, `portable`);
            None for the reference kernel.
        claimed: Whether the delegate runs it (else the interpreter's own kernels do).
        rows: GEMM rows when the delegate was applied, i.e. at the batch stored in the
            model, before any resize (a convolution: batch x output height x width).
        expected_speedup: The cost model's estimate of the default kernels' time over
            ours on this CPU (`kernel="auto"` claims a node from 1.2; 0 for the
            reference kernel).
    """

    node: int
    op: str
    n: int
    k: int
    block_density: float
    kernel: str
    isa: str | None
    claimed: bool = True
    rows: int = 1
    expected_speedup: float = 0.0

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)
