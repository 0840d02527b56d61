"""`KernelDelegate`: our int8 kernels as a TFLite/LiteRT external delegate."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable

from tfcompress.kernels.kernel_node import KernelNode
from tfcompress.kernels.library import NodeInfo, host_kind, library_path, native
from tfcompress.runtime import runtime

KERNELS = ("auto", "dense", "sparse", "reference")
ISAS = ("auto", "portable", "avx2", "avx512vnni", "neondot")
SELECTIONS = ("auto", "all")


class KernelDelegate:
    """Runs int8 FULLY_CONNECTED and CONV_2D nodes with tfcompress's kernels.

    The `.tflite` stays an ordinary model: nodes the delegate does not claim
    (other ops, float layers, non-constant weights, dynamic shapes) run on the
    interpreter's own kernels, and without the delegate the model runs anywhere.
    Pass it in `TFLiteModel(..., delegates=[...])` (or use
    `TFLiteModel(..., use_tfcompress_kernels=True)`), or in
    `experimental_delegates=[...]` of an interpreter of the same runtime
    (`ai_edge_litert.interpreter.Interpreter` or `tf.lite.Interpreter`): it is
    accepted there like the runtime's own delegate objects.

    With `kernel="auto"` the delegate claims a node only where its cost model
    (kernels/src/cost_model.h: shape, batch, block density, our ISA and what the
    default kernels use on this CPU, with constants measured by
    `benchmarks/kernels.py`) expects ours to be at least 1.2x faster than the
    interpreter's default kernels, and layers too small to matter (fewer than 16,384
    multiply-adds) that read or feed a claimed one, so the graph is not split for them;
    the others stay with the default kernels. `nodes="all"` claims
    every node it can run, `nodes=[...]` exactly those (e.g. `autotune`'s choice).

    Args:
        kernel: `"auto"` picks, per layer, the block-sparse kernel when at most
            70% of its 16x4 weight blocks hold a non-zero and the dense kernel
            otherwise; `"dense"`, `"sparse"` or `"reference"` (plain loops, the
            ground truth) force one (and then claim every node it can run).
        num_threads: Threads per layer (1 is steadiest on small shared machines).
        verbose: Print which nodes were claimed and which kernel each runs (to stderr;
            `nodes()` gives the same from Python).
        isa: `"auto"` (the best this CPU runs) or a specific path for testing.
        library: Path of the kernel library (default: `library_path()`).
        backend: Which runtime loads it: `"auto"` (LiteRT if installed, else
            `tf.lite`), `"litert"` or `"tf"`; use the one whose interpreter runs it.
        nodes: Which of the nodes it can run it claims: `"auto"` (as above), `"all"`,
            or execution-plan node indices (`KernelNode.node`; `[]` claims none).

    Example:
        >>> x = tfcompress.datasets.load_digits().x_test[:50]
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
        >>> content = tfcompress.export_tflite(model, mode="int8", representative_data=x)
        >>> delegate = tfcompress.KernelDelegate(nodes="all")
        >>> runner = tfcompress.TFLiteModel(content, delegates=[delegate])
        >>> runner.predict(x).shape
        (50, 10)
        >>> delegate.counters()["nodes_claimed"]
        2
        >>> [node.op for node in delegate.nodes()]
        ['FULLY_CONNECTED', 'FULLY_CONNECTED']
        >>> only_first = tfcompress.KernelDelegate(nodes=[delegate.nodes()[0].node])
        >>> _ = tfcompress.TFLiteModel(content, delegates=[only_first])
        >>> [node.claimed for node in only_first.nodes(claimed_only=False)]
        [True, False]
    """

    def __init__(
        self,
        kernel: str = "auto",
        num_threads: int = 1,
        verbose: bool = False,
        isa: str = "auto",
        library: str | None = None,
        backend: str = "auto",
        nodes: str | Iterable[int] = "auto",
    ):
        if kernel not in KERNELS:
            raise ValueError(f"`kernel` must be one of {KERNELS}. Received: kernel={kernel!r}")
        chosen = runtime(backend)
        if isa not in ISAS:
            raise ValueError(f"`isa` must be one of {ISAS}. Received: isa={isa!r}")
        if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
            raise ValueError(
                f"`num_threads` must be a positive integer. Received: num_threads={num_threads!r}"
            )
        self.library = library or library_path()
        self.options = {
            "kernel": kernel,
            "num_threads": str(num_threads),
            "verbose": "true" if verbose else "false",
            "isa": isa,
            "nodes": _nodes_option(nodes),
        }
        self._native = native(self.library)
        self.backend = chosen.name
        self.delegate = chosen.load_delegate(self.library, self.options)

    def _get_native_delegate_pointer(self) -> int:
        """The `TfLiteDelegate*`: the name the interpreters of both runtimes call on each of
        their `experimental_delegates`."""
        return self.delegate._get_native_delegate_pointer()

    @property
    def isa(self) -> str:
        """The kernel path in use: `avx512vnni`, `avx2`, `neondot` or `portable`."""
        return self._native.tfc_delegate_isa(self._get_native_delegate_pointer()).decode()

    @property
    def host(self) -> str:
        """What the default kernels use on this CPU, as the cost model sees it:
        `avx512vnni+amx`, `avx512vnni`, `avx2` or `other`."""
        return host_kind(self.library)

    def counters(self) -> dict[str, int]:
        """Nodes claimed, declined (cannot run) and left (could run, not chosen),
        partitions, invocations, and kernels chosen so far."""
        lib, pointer = self._native, self._get_native_delegate_pointer()
        return {
            lib.tfc_counter_name(i).decode(): int(lib.tfc_delegate_counter(pointer, i))
            for i in range(lib.tfc_counter_count())
        }

    def nodes(self, claimed_only: bool = True) -> list[KernelNode]:
        """The nodes claimed so far (or, with `claimed_only=False`, every node it could
        run, claimed or not), in the order the library saw them: op, weight shape, block
        density, rows, the kernel and ISA, and the cost model's expected speed-up. A node
        appears again each time the interpreter re-applies the delegate (as `counters()`
        counts it again)."""
        lib, info, out = self._native, NodeInfo(), []
        pointer = self._get_native_delegate_pointer()
        for i in range(lib.tfc_delegate_node_count(pointer)):
            if lib.tfc_delegate_node(pointer, i, ctypes.byref(info)) != 0:
                raise RuntimeError(f"The kernel library has no node {i}")
            out.append(
                KernelNode(
                    node=info.node,
                    op=info.op.decode(),
                    n=info.n,
                    k=info.k,
                    block_density=info.block_density,
                    kernel=info.kernel.decode(),
                    isa=info.isa.decode() if info.isa else None,
                    claimed=bool(info.claimed),
                    rows=info.rows,
                    expected_speedup=info.expected_speedup,
                )
            )
        return [node for node in out if node.claimed or not claimed_only]


def _nodes_option(nodes: str | Iterable[int]) -> str:
    """The library's `nodes` option: "auto", "all", "none" or indices joined by commas."""
    if isinstance(nodes, str) and nodes in SELECTIONS:
        return nodes
    if isinstance(nodes, str) or not isinstance(nodes, Iterable):
        raise ValueError(
            f"`nodes` must be one of {SELECTIONS} or a list of node indices. "
            f"Received: nodes={nodes!r}"
        )
    indices = list(nodes)
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices):
        raise ValueError(
            f"`nodes` must hold non-negative integer node indices. Received: nodes={nodes!r}"
        )
    return ",".join(str(i) for i in sorted(set(indices))) or "none"


def load_delegate(**options) -> KernelDelegate:
    """`KernelDelegate(**options)`: the external delegate with our int8 kernels, ready for an
    interpreter's `experimental_delegates=[...]` like `tf.lite.experimental.load_delegate`'s.

    Example:
        >>> x = tfcompress.datasets.load_digits().x_test[:50]
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        >>> content = tfcompress.export_tflite(model, mode="int8", representative_data=x)
        >>> delegate = tfcompress.kernels.load_delegate(backend="tf", nodes="all")
        >>> interpreter = tf.lite.Interpreter(
        ...     model_content=content, experimental_delegates=[delegate])
        >>> interpreter.allocate_tensors()
        >>> delegate.counters()["nodes_claimed"]
        1
    """
    return KernelDelegate(**options)
