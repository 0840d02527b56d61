"""`format_comparison` says slower when our kernels are slower, and gives both views of the
outputs (like with like, and as deployed with XNNPACK for the other ops)."""

import pytest

from tfcompress.export.kernel_comparison import format_comparison


def _summary(default_ms: float, kernels_ms: float, left: int = 0) -> dict:
    counters = {"nodes_claimed": 4, "sparse_nodes": 2, "dense_nodes": 2, "nodes_left": left}
    return {
        "isa": "avx2",
        "host": "avx512vnni+amx",
        "counters": counters,
        "samples": 1000,
        "top1_agreement": 1.0,
        "identical_to_reference": True,
        "deployed_identical_to_reference": False,
        "default_identical_to_reference": False,
        "default_top1_agreement_with_reference": 0.99,
        "default_ms": default_ms,
        "kernels_ms": kernels_ms,
        "speedup": default_ms / kernels_ms,
    }


@pytest.mark.parametrize(
    ("default_ms", "kernels_ms", "said"),
    [
        (0.363, 0.135, "(2.69x faster)"),
        (0.069, 0.113, "(1.64x slower)"),
        (0.1, 0.1, "(1.00x faster)"),
    ],
)
def test_speed_is_said_the_right_way_round(default_ms, kernels_ms, said):
    text = format_comparison(_summary(default_ms, kernels_ms))
    assert said in text
    assert ("slower" in text) == (kernels_ms > default_ms)


def test_both_views_of_the_outputs_are_said() -> None:
    text = format_comparison(_summary(0.2, 0.1))
    assert "our kernels with reference kernels for the other ops: yes" in text
    assert "as deployed, with XNNPACK for the other ops: NO" in text
    assert "default interpreter alone: NO, its top-1 99.0% the reference's" in text


def test_layers_left_to_the_default_kernels_are_said() -> None:
    assert "left to" not in format_comparison(_summary(0.2, 0.1))
    text = format_comparison(_summary(0.2, 0.1, left=3))
    assert "4 layers claimed (2 block-sparse, 2 dense); 3 left to the default kernels" in text
    assert "faster on this CPU (avx512vnni+amx)" in text


def test_one_layer_is_singular() -> None:
    summary = _summary(0.2, 0.1)
    summary["counters"] = {**summary["counters"], "nodes_claimed": 1}
    assert "1 layer claimed (" in format_comparison(summary)
