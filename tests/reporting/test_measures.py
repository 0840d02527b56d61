"""The one table of summary measures that reports and comparisons render."""

import pytest

from tfcompress.reporting import CompressionReport
from tfcompress.reporting.measures import MEASURES, select_measures, summary_rows


def test_one_row_per_key():
    keys = [m.key for m in MEASURES]
    assert len(keys) == len(set(keys))
    assert all(m.change in ("ratio", "points", None) for m in MEASURES)


def test_summary_rows_follow_the_table_order():
    summary = {"latency_ms": 0.123456, "params": 1234, "sparsity": 0.5}
    assert summary_rows(summary) == [
        ["parameters", "1,234"],
        ["kernel sparsity", "50.0%"],
        ["latency median (ms)", "0.1235"],
    ]


def test_cell_of_a_missing_key_is_a_dash():
    (params,) = select_measures("params")
    assert params.cell({}) == "-" and params.cell({"params": 10}) == "10"


def test_measures_rejects_an_unknown_key():
    with pytest.raises(ValueError, match="parms"):
        select_measures("params", "parms")


def test_comparison_leaves_out_single_report_measures():
    before = CompressionReport("a", summary={"float32_bytes": 400, "params": 100})
    after = CompressionReport("b", summary={"float32_bytes": 200, "params": 50})
    comparison = before.compare(after)
    assert "bytes as float32" in before.to_text()
    assert "bytes as float32" not in comparison.to_text()
    assert comparison.to_dict()["ratios"] == {"params": 2.0}
