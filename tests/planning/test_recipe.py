"""Recipe: defaults, YAML/JSON round trips, hand-written files, and errors that name the key."""

import json
import os

import pytest

from tfcompress.planning.recipe import Recipe
from tfcompress.planning.recipe_sections import LayerRecipe, PruneSpec

FULL = {
    "version": 1,
    "layers": {
        "conv2": {"prune": {"structure": "16x4", "sparsity": 0.8}},
        "fc1": {"prune": {"structure": "unstructured", "sparsity": 0.95}, "bits": 4},
        "fc2": {"rank": 16},
        "fc3": {"cluster": 16},
        "fc4": {"prune": {"structure": "2:4", "sparsity": 0.5}},
    },
    "pruning": {
        "schedule": "constant",
        "initial_sparsity": 0.1,
        "begin_step": 5,
        "end_fraction": 0.75,
        "frequency": 20,
    },
    "fine_tune": {"epochs": 3, "batch_size": 32, "learning_rate": 0.002},
    "distillation": {"teacher": "original", "alpha": 0.25, "temperature": 2.0},
    "clustering": {"epochs": 2, "learning_rate": 0.0002},
    "qat": {"epochs": 0, "learning_rate": 0.0003},
    "export": {"mode": "int8"},
    "kernels": "none",
    "plan": {"binding": "max_gzip_bytes", "predicted": {"gzip_bytes": 1234.0}},
}

HAND_WRITTEN = """\
# written by hand, flow style, `2:4` unquoted and 1e-4 without a dot
layers:
  conv2: {prune: {structure: 16x4, sparsity: 0.8}}
  fc1:   {prune: {structure: 2:4}, bits: 4}
  fc2:   {rank: 16}
fine_tune: {epochs: 1}
distillation: null
qat: {learning_rate: 1e-4}
kernels: all
"""


def test_default_recipe_is_int8_export_only_and_round_trips(tmp_path):
    recipe = Recipe()
    assert recipe.layers == {} and recipe.layer_names() == []
    assert recipe.export.mode == "int8" and recipe.kernels == "auto"
    assert recipe.distillation is None and recipe.plan_info is None
    assert Recipe.from_dict({}) == recipe and Recipe.from_dict(None) == recipe
    assert Recipe.from_text("") == recipe  # an empty file is the default recipe
    for name in ("r.yaml", "r.yml", "r.json"):
        assert Recipe.from_file(recipe.to_file(tmp_path / name)) == recipe


def test_full_recipe_round_trips_and_keeps_key_order(tmp_path):
    recipe = Recipe.from_dict(FULL)
    assert recipe.to_dict() == FULL
    assert list(recipe.to_dict()) == list(FULL)
    assert recipe.layer_names() == ["conv2", "fc1", "fc2", "fc3", "fc4"]
    assert recipe.layers["fc1"] == LayerRecipe(prune=PruneSpec("unstructured", 0.95), bits=4)
    assert recipe.layers["fc2"].changes() and not LayerRecipe(bits=8).changes()
    assert recipe.pruning.schedule == "constant" and recipe.qat.epochs == 0
    assert recipe.distillation.alpha == 0.25
    yaml_path = recipe.to_file(tmp_path / "r.yaml")
    json_path = recipe.to_file(tmp_path / "r.json")
    assert Recipe.from_file(yaml_path) == recipe == Recipe.from_file(json_path)
    assert json.loads(open(json_path).read()) == FULL
    text = open(yaml_path).read()
    assert text.startswith("# tfcompress recipe")
    assert "{" not in text  # block style throughout
    lines = [line for line in text.splitlines() if line and not line.startswith(("#", " ", "-"))]
    assert [line.split(":")[0] for line in lines] == list(FULL)
    # The same recipe built from section objects is equal, and edits are checked again.
    assert Recipe(layers=recipe.layers, plan_info=FULL["plan"]).layers == recipe.layers
    assert recipe.replace(kernels="all").kernels == "all"
    with pytest.raises(ValueError, match="`kernels` must be one of"):
        recipe.replace(kernels="some")


def test_hand_written_yaml(tmp_path):
    path = tmp_path / "hand.yml"
    path.write_text(HAND_WRITTEN)
    recipe = Recipe.from_file(path)
    assert recipe.layers["fc1"].prune == PruneSpec("2:4", 0.5)
    assert recipe.layers["conv2"].prune == PruneSpec("16x4", 0.8)
    assert recipe.qat.learning_rate == 1e-4 and recipe.fine_tune.epochs == 1
    assert recipe.fine_tune.batch_size == 64 and recipe.kernels == "all"
    # Writing it back keeps the meaning; `2:4` is quoted so any YAML reader keeps it text.
    again = recipe.to_file(tmp_path / "again.yaml")
    assert "'2:4'" in open(again).read() and Recipe.from_file(again) == recipe


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"layers": {"fc1": {"prune": {"structure": "16x8", "sparsity": 0.5}}}},
            r"`layers.fc1.prune.structure` must be one of 'unstructured', '16x4', '2:4', "
            r"'channels'. Received: layers.fc1.prune.structure='16x8'",
        ),
        (
            {"layers": {"fc1": {"prune": {"structure": "16x4", "sparsity": 1.0}}}},
            r"`layers.fc1.prune.sparsity` must be a number in \[0, 1\). Received: .*=1.0",
        ),
        (
            {"layers": {"fc1": {"prune": {"structure": "16x4"}}}},
            r"`layers.fc1.prune.sparsity` is missing",
        ),
        (
            {"layers": {"fc1": {"prune": {"structure": "2:4", "sparsity": 0.8}}}},
            r"`layers.fc1.prune.sparsity` must be 0.5 with structure '2:4'",
        ),
        (
            {"layers": {"fc1": {"bits": 3}}},
            r"`layers.fc1.bits` must be one of 8, 4. Received: .*=3",
        ),
        (
            {"layers": {"fc1": {"bits": 4}}, "export": {"mode": "float32"}},
            r"needs `export.mode` int8",
        ),
        (
            {"layers": {"fc1": {"rank": 0}}},
            r"`layers.fc1.rank` must be an integer >= 1. Received: .*=0",
        ),
        ({"layers": {"fc1": {"rank": 2.5}}}, r"`layers.fc1.rank` must be an integer"),
        ({"layers": {"fc1": {"cluster": 1}}}, r"`layers.fc1.cluster` must be an integer >= 2"),
        ({"layers": {"fc1": {"rank": 4, "cluster": 8}}}, r"`layers.fc1.rank` cannot be combined"),
        (
            {"layers": {"fc1": {"prun": {}}}},
            r"Unknown key `layers.fc1.prune?`. Did you mean 'prune'\?",
        ),
        ({"layers": {"fc1": "prune"}}, r"`layers.fc1` must be a mapping"),
        ({"layers": {3: {"bits": 4}}}, r"`layers` keys must be layer names"),
        ({"fine_tuning": {"epochs": 1}}, r"Unknown key `fine_tuning`. Did you mean 'fine_tune'\?"),
        ({"fine_tune": {"epochs": -1}}, r"`fine_tune.epochs` must be an integer >= 0"),
        ({"fine_tune": {"learning_rate": 0}}, r"`fine_tune.learning_rate` must be a number in \(0"),
        (
            {"pruning": {"schedule": "cubic"}},
            r"`pruning.schedule` must be one of 'polynomial', 'constant'",
        ),
        ({"pruning": {"frequency": True}}, r"`pruning.frequency` must be an integer >= 1"),
        ({"distillation": {"teacher": "big"}}, r"`distillation.teacher` must be one of 'original'"),
        ({"distillation": {"temperature": -1}}, r"`distillation.temperature` must be a number"),
        ({"export": {"mode": "int4"}}, r"`export.mode` must be one of 'int8', 'float32'"),
        (
            {"kernels": True},
            r"`kernels` must be one of 'auto', 'all', 'none'. Received: kernels=True",
        ),
        ({"version": 2}, r"`version` must be 1"),
        ({"plan": [1, 2]}, r"`plan` must be a mapping"),
    ],
)
def test_errors_name_the_key_the_value_and_what_is_allowed(data, message):
    with pytest.raises(ValueError, match=message):
        Recipe.from_dict(data)


def test_direct_construction_is_checked_too():
    with pytest.raises(ValueError, match=r"`prune.structure` must be one of"):
        PruneSpec("blocks", 0.5)
    with pytest.raises(ValueError, match=r"`layers.fc1.bits` must be one of 8, 4"):
        Recipe(layers={"fc1": {"bits": 2}})
    with pytest.raises(ValueError, match=r"`layers.fc1.rank` cannot be combined"):
        Recipe(layers={"fc1": LayerRecipe(prune=PruneSpec("16x4", 0.5), rank=4)})


def test_file_errors_name_the_file_and_nothing_is_overwritten_on_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("layers:\n  fc1: {bits: 5}\n")
    with pytest.raises(ValueError, match=r"Recipe file .*bad.yaml.*`layers.fc1.bits`"):
        Recipe.from_file(path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Recipe.from_file(tmp_path / "broken.json")
    with pytest.raises(ValueError, match=r"must end in .yaml, .yml, .json"):
        Recipe().to_file(tmp_path / "recipe.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Recipe().to_file(tmp_path / "missing" / "r.yaml")
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml", "broken.json"]
