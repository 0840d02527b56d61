"""The report's plots: drawn from the numbers given, valid non-blank PNGs, clear errors."""

import math
import os
import re

import matplotlib
import matplotlib.image
import numpy as np
import pytest

from tfcompress.reporting.choices_plot import choice_series
from tfcompress.reporting.plots import (
    plot_choices,
    plot_layer_latency,
    plot_sensitivity,
    plot_tradeoff,
)
from tfcompress.reporting.sensitivity_plot import sensitivity_series

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path) -> np.ndarray:
    """The decoded image at `path`, after checking it is a PNG of some size with content."""
    content = open(path, "rb").read()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 5000, len(content)
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 400, pixels.shape
    assert pixels[..., :3].var() > 1e-3  # not a blank canvas
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]
    return pixels


def option(kind, structure=None, sparsity=None, bits=None, rank=None, energy=None):
    key = {"prune": f"prune:{structure}:{sparsity}", "bits": f"bits:{bits}", "rank": f"rank:{rank}"}
    return {
        "kind": kind,
        "structure": structure,
        "sparsity": sparsity,
        "bits": bits,
        "rank": rank,
        "energy": energy,
        "key": key[kind],
    }


def entry(layer, opt, drop, kl):
    costs = {"params": 100, "nonzeros": 50, "macs": 100, "bytes": 120, "gzip_bytes": 90}
    return {
        "layer": layer,
        "option": opt,
        "accuracy_drop": drop,
        "kl": kl,
        "agreement": 1 - kl,
        **costs,
        "latency_ms": 0.1,
        "latency_ms_kernels": None,
    }


@pytest.fixture
def sensitivity_json():
    rng = np.random.default_rng(0)
    entries = [entry("fc2", None, 0.0, 0.0), entry("fc1", None, 0.0, 0.0)]  # baselines
    for layer in ("fc2", "fc1"):  # listed in reverse: `layers` gives the model order
        for sparsity in (0.9, 0.5, 0.7):  # unsorted: each series comes back sorted by x
            opt = option("prune", "16x4", sparsity)
            entries.append(entry(layer, opt, float(rng.uniform(0, 5)), float(rng.uniform(0, 1))))
        entries.append(entry(layer, option("prune", "2:4", 0.5), 0.3, 0.01))
        for bits in (8, 4):
            entries.append(entry(layer, option("bits", bits=bits), 0.1 * (9 - bits), 0.02))
    entries.append(entry("fc1", option("rank", rank=4, energy=0.75), 1.5, 0.2))
    entries.append(entry("fc1", option("rank", rank=12, energy=0.99), 0.2, 0.05))
    return {
        "model": {"name": "mlp", "cpu": "test CPU"},
        "layers": ["fc1", "fc2"],
        "entries": entries,
    }


def test_plot_sensitivity_draws_the_entries(sensitivity_json, tmp_path):
    rc_before = dict(matplotlib.rcParams)
    path = tmp_path / "sensitivity.png"
    data = plot_sensitivity(sensitivity_json, path)
    check_png(path)
    assert dict(matplotlib.rcParams) == rc_before  # no global matplotlib state changed
    assert data["metric"] == "accuracy_drop"
    assert [p["name"] for p in data["panels"]] == ["prune 16x4", "prune 2:4", "bits", "rank"]
    assert [p["x"] for p in data["panels"]] == ["sparsity", "sparsity", "bits", "energy"]
    assert [s["layer"] for s in data["panels"][0]["series"]] == ["fc1", "fc2"]
    # every drawn point is an input entry's numbers (baselines are not drawn)
    by_key = {
        (e["layer"], e["option"]["key"]): e for e in sensitivity_json["entries"] if e["option"]
    }
    drawn = 0
    for panel in data["panels"]:
        for s in panel["series"]:
            assert s["x"] == sorted(s["x"])
            for x, y, key in zip(s["x"], s["y"], s["keys"]):
                e = by_key[(s["layer"], key)]
                assert y == e["accuracy_drop"] and x == e["option"][panel["x"]]
                drawn += 1
    assert drawn == len(by_key)
    # without labels the curves show KL (the same data, not drawn again)
    for e in sensitivity_json["entries"]:
        e["accuracy_drop"] = None
    data = sensitivity_series(sensitivity_json)
    assert data["metric"] == "kl"
    assert data["panels"][0]["series"][1]["y"] == [
        e["kl"]
        for e in sorted(sensitivity_json["entries"][2:5], key=lambda e: e["option"]["sparsity"])
    ]
    with pytest.raises(ValueError, match="metric='kl'"):
        sensitivity_series(sensitivity_json, metric="accuracy_drop")


def test_plot_sensitivity_leaves_out_nan_and_none_with_a_warning(sensitivity_json):
    sensitivity_json["entries"][3]["accuracy_drop"] = math.nan  # fc2, prune:16x4:0.5
    sensitivity_json["entries"][4]["accuracy_drop"] = None  # fc2, prune:16x4:0.7
    with pytest.warns(UserWarning) as warned:
        data = sensitivity_series(sensitivity_json)  # the data plot_sensitivity draws
    messages = [str(w.message) for w in warned]
    assert len(messages) == 2
    assert re.search(
        r"\['accuracy_drop'\]=nan; entry 3 \(layer 'fc2', option 'prune:16x4:0.5'\)", messages[0]
    )
    assert messages[1].endswith(
        "['accuracy_drop'] is None (not measured); "
        "entry 4 (layer 'fc2', option 'prune:16x4:0.7') is left out."
    )
    fc2 = data["panels"][0]["series"][1]
    assert fc2["layer"] == "fc2" and fc2["keys"] == ["prune:16x4:0.9"]


def test_plot_choices_from_plan_info_and_recipe_forms(tmp_path):
    def planned(structure, sparsity, bits, rank):  # the fields plan() writes per layer
        costs = {"gzip_bytes": 100, "latency_ms": 0.1, "macs": 10, "bytes": 120}
        return {"choice": "x", "structure": structure, "sparsity": sparsity, "bits": bits,
                "rank": rank, "loss": 0.1, **costs, "reason": "why"}  # fmt: skip

    layers = {
        "conv2": planned("16x4", 0.8, 8, None),
        "fc1": planned("unstructured", 0.95, 4, None),
        "fc2": planned(None, 0.0, 8, 16),
        "logits": planned(None, 0.0, None, None),
    }
    info = {"binding": "max_gzip_bytes", "layers": layers, "predicted": {"gzip_bytes": 1}}
    path = tmp_path / "choices.png"
    data = plot_choices(info, path)
    check_png(path)
    assert data == {
        "layers": ["conv2", "fc1", "fc2", "logits"],
        "sparsity": [0.8, 0.95, 0.0, 0.0],
        "structure": ["16x4", "unstructured", None, None],
        "bits": [8, 4, 8, None],
        "rank": [None, None, 16, None],
        "binding": "max_gzip_bytes",
    }
    # a list of choices with the pruning nested as a Recipe writes it gives the same series
    recipe_form = [
        {"layer": "conv2", "prune": {"structure": "16x4", "sparsity": 0.8}, "bits": 8},
        {"layer": "fc1", "prune": {"structure": "unstructured", "sparsity": 0.95}, "bits": 4},
        {"layer": "fc2", "prune": {"structure": None, "sparsity": 0.0}, "bits": 8, "rank": 16},
        {"layer": "logits", "prune": {"sparsity": 0.0}, "cluster": 16},
    ]
    assert choice_series({"layers": recipe_form}) == {**data, "binding": None}
    with pytest.raises(ValueError, match=r"\['fc1'\]` gives the pruning twice"):
        choice_series({"layers": {"fc1": {"prune": None, "sparsity": 0.5}}})


TRADEOFF_POINTS = [
    {
        "label": "float",
        "kind": "original",
        "gzip_bytes": 980_000,
        "latency_ms": 0.9,
        "accuracy": 0.975,
    },
    {
        "label": "u50",
        "kind": "uniform",
        "gzip_bytes": 120_000,
        "latency_ms": 0.35,
        "accuracy": 0.972,
    },
    {"label": "u90", "kind": "uniform", "gzip_bytes": 35_000, "latency_ms": 0.18, "accuracy": 0.93},
    {
        "label": "planned",
        "kind": "planned",
        "gzip_bytes": 21_000,
        "latency_ms": 0.2,
        "accuracy": 0.968,
    },
]


def test_plot_tradeoff_size_and_latency(tmp_path):
    path = tmp_path / "size.png"
    data = plot_tradeoff(TRADEOFF_POINTS, path, note="CPU: test")
    check_png(path)
    assert data["x"] == "gzip_bytes" and data["y"] == "accuracy" and data["x_scale"] == "log"
    assert [(p["label"], p["kind"], p["x"], p["y"]) for p in data["points"]] == [
        (p["label"], p["kind"], p["gzip_bytes"], p["accuracy"]) for p in TRADEOFF_POINTS
    ]
    points = [dict(p) for p in TRADEOFF_POINTS]
    points[2]["latency_ms"] = math.nan
    del points[1]["latency_ms"]  # not measured
    with pytest.warns(UserWarning) as warned:
        data = plot_tradeoff(points, tmp_path / "latency.png", x="latency_ms")
    assert [str(w.message) for w in warned] == [
        "plot_tradeoff: points[1]['latency_ms'] is None (not measured); point 'u50' is left out.",
        "plot_tradeoff: points[2]['latency_ms']=nan; point 'u90' is left out.",
    ]
    check_png(tmp_path / "latency.png")
    assert data["x_scale"] == "linear" and data["skipped"] == ["u50", "u90"]
    assert [p["x"] for p in data["points"]] == [0.9, 0.2]


def test_plot_layer_latency(tmp_path):
    rows = [
        {"layer": "conv2", "latency_ms": 0.21, "latency_ms_kernels": 0.09, "option": "x"},
        {"layer": "fc1", "latency_ms": 0.05},
        {"layer": "fc2", "latency_ms": 0.02, "latency_ms_kernels": math.inf},
    ]
    path = tmp_path / "latency.png"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="negative"):  # a failed call leaves the file as it was
        plot_layer_latency([{**rows[0], "latency_ms": -1.0}], path)
    assert path.read_bytes() == b"old"
    with pytest.warns(UserWarning, match="kernels' bar of layer 'fc2'"):
        data = plot_layer_latency(rows, path, note="CPU: test")
    check_png(path)
    assert data == {
        "layers": ["conv2", "fc1", "fc2"],
        "latency_ms": [0.21, 0.05, 0.02],
        "latency_ms_kernels": [0.09, None, None],
        "skipped": [],
    }


def _sens(**changes):
    base = {"layer": "fc1", "option": option("prune", "16x4", 0.5), "accuracy_drop": 1.0, "kl": 0.1}
    return {"entries": [{**base, **changes}]}


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda p: plot_sensitivity("{}", p), TypeError, r"json.loads"),
        (lambda p: plot_sensitivity({"layers": []}, p), TypeError, r"'entries' list.*\['layers'\]"),
        (lambda p: plot_sensitivity({"entries": []}, p), ValueError, r"non-empty list"),
        (
            lambda p: plot_sensitivity(_sens(option={"kind": "cut"}), p),
            ValueError,
            r"\[0\]\['option'\]` \(layer 'fc1'\).*'cut'",
        ),
        (lambda p: plot_sensitivity(_sens(option=None), p), ValueError, r"only baselines"),
        (
            lambda p: plot_sensitivity(_sens(option={"kind": "prune", "structure": "16x4"}), p),
            ValueError,
            r"\[0\]\['option'\]\['sparsity'\]` is missing",
        ),
        (
            lambda p: plot_sensitivity(_sens(kl="high"), p, metric="kl"),
            TypeError,
            r"\['entries'\]\[0\]\['kl'\].*'high'",
        ),
        (lambda p: plot_sensitivity(_sens(), p, metric="loss"), ValueError, r"metric.*'loss'"),
        (lambda p: plot_choices({"choices": []}, p), TypeError, r"'layers'.*\['choices'\]"),
        (lambda p: plot_choices({"layers": []}, p), ValueError, r"empty"),
        (
            lambda p: plot_choices({"layers": [{"name": "fc1"}]}, p),
            ValueError,
            r"\['layers'\]\[0\].*'layer' name",
        ),
        (
            lambda p: plot_choices({"layers": {"fc1": {"prune": {"sparsity": 80}}}}, p),
            ValueError,
            r"\['fc1'\]\['prune'\]\['sparsity'\].*80",
        ),
        (
            lambda p: plot_choices({"layers": {"fc1": {"bits": "4"}}}, p),
            TypeError,
            r"\['fc1'\]\['bits'\].*'4'",
        ),
        (lambda p: plot_tradeoff([], p), ValueError, r"`points` must be a non-empty list"),
        (
            lambda p: plot_tradeoff(TRADEOFF_POINTS, p, x="size"),
            ValueError,
            r"`x` must be one of .*x='size'",
        ),
        (lambda p: plot_tradeoff(TRADEOFF_POINTS, p, y="loss"), ValueError, r"y='loss'"),
        (
            lambda p: plot_tradeoff([{**TRADEOFF_POINTS[1], "kind": "best"}], p),
            ValueError,
            r"points\[0\]\['kind'\]` \(point 'u50'\).*'best'",
        ),
        (
            lambda p: plot_tradeoff([{**TRADEOFF_POINTS[1], "accuracy": 97.2}], p),
            ValueError,
            r"point 'u50'.*fraction.*97.2",
        ),
        (
            lambda p: plot_tradeoff([{"label": "a", "kind": "planned", "accuracy": 0.9}], p),
            ValueError,
            r"none has finite 'gzip_bytes' and 'accuracy' values. Left out: \['a'\]",
        ),
        (
            lambda p: plot_tradeoff([{**TRADEOFF_POINTS[1], "accuracy": math.nan}], p),
            ValueError,
            r"none has finite.*\['u50'\]",
        ),
        (lambda p: plot_layer_latency([], p), ValueError, r"`rows` must be a non-empty list"),
        (
            lambda p: plot_layer_latency([{"layer": "fc1"}], p),
            ValueError,
            r"no row has a finite 'latency_ms'. Left out: \['fc1'\]",
        ),
        (
            lambda p: plot_layer_latency([{"layer": "fc1", "latency_ms": -1}], p),
            ValueError,
            r"layer 'fc1'.*negative",
        ),
        (
            lambda p: plot_layer_latency([{"latency_ms": 1}], p),
            ValueError,
            r"rows\[0\].*'layer' name",
        ),
    ],
)
def test_bad_input_names_the_argument_and_value(call, error, match, tmp_path):
    with pytest.raises(error, match=match):
        call(tmp_path / "plot.png")
    assert not list(tmp_path.iterdir())  # nothing written


def test_bad_path(tmp_path):
    with pytest.raises(ValueError, match=r"must end in .png.*plot.jpg"):
        plot_tradeoff(TRADEOFF_POINTS, tmp_path / "plot.jpg")
    with pytest.raises(FileNotFoundError, match="missing folder"):
        plot_tradeoff(TRADEOFF_POINTS, tmp_path / "no" / "plot.png")
