"""Target: checked limits, at least one, and a dict round trip."""

import pytest

from tfcompress.planning.target import Target


def test_limits_and_round_trip():
    target = Target(max_gzip_bytes=60_000, max_latency_ms=0.5, max_accuracy_drop=0)
    assert target.limits() == {
        "max_gzip_bytes": 60000,
        "max_latency_ms": 0.5,
        "max_accuracy_drop": 0,
    }
    assert target.resource_limits() == {"max_gzip_bytes": 60000, "max_latency_ms": 0.5}
    assert Target.from_dict(target.to_dict()) == target
    assert (
        str(target)
        == "Target(gzip_bytes <= 60000 bytes, latency_ms <= 0.5 ms, accuracy_drop <= 0 points)"
    )
    assert target.replace(max_macs=1e6).max_macs == 1e6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "at least one limit"),
        ({"max_bytes": 0}, r"`max_bytes` must be a number in \(0, inf\). Received: max_bytes=0"),
        ({"max_latency_ms": -1.0}, r"`max_latency_ms` must be a number"),
        ({"max_macs": float("nan")}, r"`max_macs` must be a number"),
        ({"max_gzip_bytes": "60k"}, r"Received: max_gzip_bytes='60k'"),
        ({"max_accuracy_drop": -0.5}, r"`max_accuracy_drop` must be a number in \[0, inf\)"),
        ({"max_bytes": True}, r"`max_bytes` must be a number"),
    ],
)
def test_bad_limits(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Target(**kwargs)


def test_unknown_key_from_dict():
    with pytest.raises(
        ValueError, match=r"Unknown key `max_gzip`. Did you mean 'max_gzip_bytes'\?"
    ):
        Target.from_dict({"max_gzip": 5})
    with pytest.raises(ValueError, match="`target` must be a mapping"):
        Target.from_dict([5])


def test_from_ratio():
    model = {"float_gzip_bytes": 400_000, "latency_ms": 0.5}
    target = Target.from_ratio(model, gzip=40, latency=2, max_accuracy_drop=1.0)
    assert target.limits() == {
        "max_gzip_bytes": 10_000,
        "max_latency_ms": 0.25,
        "max_accuracy_drop": 1.0,
    }
    with pytest.raises(
        ValueError, match=r"`gzip` must be a number in \(0, inf\). Received: gzip=0"
    ):
        Target.from_ratio(model, gzip=0)
    with pytest.raises(ValueError, match="lacks. Received: latency=2"):
        Target.from_ratio({"float_gzip_bytes": 1}, latency=2)
