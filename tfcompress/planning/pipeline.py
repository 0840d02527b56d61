"""The steps `compress` runs for a recipe, in order: factorize, prune, cluster, QAT, export.

Every step takes the recipe as plain data (`Recipe.to_dict()`: the YAML's keys) and the
model of the step before, and returns a new model; the user's model is never changed.
`check_recipe` checks everything a step would refuse before any training starts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import keras

from tfcompress.clustering import cluster_weights, strip_clustering
from tfcompress.clustering.clusterable import clusterable_weights
from tfcompress.core.blocks import BLOCK_SHAPE
from tfcompress.export import export_tflite
from tfcompress.factorization import factorize
from tfcompress.planning.training import Training
from tfcompress.pruning import (
    ConstantSparsity,
    PolynomialDecay,
    UpdatePruningStep,
    prune_low_magnitude,
    shrink,
    strip_pruning,
)
from tfcompress.pruning.channel_graph import NOT_REMOVABLE, channel_chains
from tfcompress.pruning.masks import structure_problem
from tfcompress.pruning.prunable import prunable_weights
from tfcompress.pruning.prune_low_magnitude_wrapper import CHANNEL_LAYERS
from tfcompress.quantization import quantize_model, strip_quantization
from tfcompress.utils.surgery import Replacement, leaf_layers, transform_model
from tfcompress.utils.validation import check_layer_names

# Each recipe structure as `prune_low_magnitude` arguments.
STRUCTURE_ARGS = {
    "unstructured": {},
    "16x4": {"block_size": BLOCK_SHAPE},
    "2:4": {"sparsity_m_by_n": (2, 4)},
    "channels": {"channel_norm": "L2"},
}
CALIBRATION_SAMPLES = 200  # post-training int8 (qat.epochs 0)


def _layers(recipe: dict, part: str) -> dict:
    """`{layer: value}` of one part (`prune`, `bits`, `rank`, `cluster`) of the recipe."""
    entries = recipe.get("layers") or {}
    return {name: e[part] for name, e in entries.items() if e and e.get(part) is not None}


def pruned_layers(recipe: dict) -> dict[str, dict]:
    """`{layer: {"structure", "sparsity"}}` for the layers the recipe prunes (sparsity > 0)."""
    return {n: p for n, p in _layers(recipe, "prune").items() if p["sparsity"] > 0}


def check_recipe(model: keras.Model, recipe: dict) -> None:
    """Raises before any training when a step would refuse the recipe on `model`: unknown
    layer names (the error lists the model's), structures that do not fit, layers with
    nothing to cluster, settings that contradict each other."""
    entries = recipe.get("layers") or {}
    leaves = {layer.name: layer for layer in leaf_layers(model)}
    check_layer_names(model, list(entries), "recipe.layers", known=set(leaves))
    problems = {}
    for name, spec in pruned_layers(recipe).items():
        why = _prune_problem(model, leaves[name], spec["structure"])
        if why:
            problems[f"layers.{name}.prune"] = f"structure {spec['structure']!r}: {why}"
    for name in _layers(recipe, "cluster"):
        if not clusterable_weights(leaves[name]):
            kind = type(leaves[name]).__name__
            problems[f"layers.{name}.cluster"] = f"a {kind} has no weights to cluster"
    for name, bits in _layers(recipe, "bits").items():  # Recipe checks bits vs export.mode
        if bits == 4 and recipe["qat"]["epochs"] == 0:
            problems[f"layers.{name}.bits"] = (
                "4-bit weights need quantization-aware training (qat.epochs >= 1); "
                "post-training int8 calibrates 8 bits only"
            )
    if pruned_layers(recipe) and recipe["fine_tune"]["epochs"] == 0:
        problems["fine_tune.epochs"] = "0, but layers are pruned, which happens while fine-tuning"
    if problems:
        listed = "\n".join(f"  {key}: {why}" for key, why in problems.items())
        raise ValueError(
            f"The recipe cannot run on model {model.name!r} ({len(problems)} problem(s)):\n{listed}"
        )


def _prune_problem(model: keras.Model, layer: keras.layers.Layer, structure: str) -> str | None:
    """Why `structure` cannot prune `layer`; None when it can."""
    if structure == "channels":
        if not isinstance(layer, CHANNEL_LAYERS):
            return f"channel pruning takes Dense and ConvND layers, not {type(layer).__name__}"
        if layer.name not in channel_chains(model):
            return NOT_REMOVABLE
        return None
    weights = prunable_weights(layer)
    if not weights:
        return f"a {type(layer).__name__} has no prunable weights"
    args = STRUCTURE_ARGS[structure]
    block, n_m = args.get("block_size", (1, 1)), args.get("sparsity_m_by_n")
    found = [structure_problem(tuple(w.shape), block, n_m) for w in weights]
    return next((why for why in found if why is not None), None)


def factorize_step(model: keras.Model, recipe: dict) -> keras.Model:
    """The layers with a `rank` factorized (SVD initialised); `model` when there are none."""
    ranks = _layers(recipe, "rank")
    return factorize(model, rank=ranks) if ranks else model


def _schedule(settings: dict, sparsity: float, steps: int):
    """The recipe's pruning schedule reaching `sparsity` over `steps` fine-tuning steps."""
    begin = settings["begin_step"]
    if settings["schedule"] == "constant":
        return ConstantSparsity(sparsity, begin_step=begin, frequency=settings["frequency"])
    end = max(begin + 1, int(steps * settings["end_fraction"]))
    return PolynomialDecay(
        settings["initial_sparsity"],
        sparsity,
        begin_step=begin,
        end_step=end,
        frequency=settings["frequency"],
    )


def _warn_if_short(specs: dict, settings: dict, steps: int) -> None:
    """Warns when the masks' last update in `steps` fine-tuning steps (every `frequency`
    from `begin_step`) leaves a layer well short of its sparsity."""
    short = {}
    for name, spec in specs.items():
        schedule = _schedule(settings, spec["sparsity"], steps)
        turns = [step for step in range(steps) if schedule.should_prune(step)]
        reached = schedule.sparsity_at(turns[-1]) if turns else 0.0
        if reached < spec["sparsity"] - 0.005:
            short[name] = f"{reached:.1%} of {spec['sparsity']:.0%}"
    if short:
        listed = ", ".join(f"{name} {what}" for name, what in short.items())
        warnings.warn(
            f"Pruning reaches only {listed} in {steps} fine-tuning step(s): masks are "
            f"updated every {settings['frequency']} steps (`pruning.frequency`) from step "
            f"{settings['begin_step']}. Lower `pruning.frequency`, or fine-tune for more "
            "epochs or on more data.",
            stacklevel=3,
        )


def prune_step(model: keras.Model, recipe: dict, training: Training) -> keras.Model:
    """Prunes each listed layer in its own structure and to its own sparsity while
    fine-tuning (`UpdatePruningStep`; distilled when the recipe asks), then strips the
    wrappers (and removes the channels that channel pruning zeroed). Without pruned
    layers: fine-tunes a factorized model, else returns `model` as it is."""
    specs = pruned_layers(recipe)
    tune = recipe["fine_tune"]
    factorized = bool(_layers(recipe, "rank"))
    if not specs:
        if factorized and tune["epochs"]:
            training.say(f"Fine-tuning the factorized model for {tune['epochs']} epoch(s).")
            training.fit(model, tune["epochs"], tune["batch_size"], tune["learning_rate"])
        return model
    steps = training.steps(tune["epochs"], tune["batch_size"])

    _warn_if_short(specs, recipe["pruning"], steps)

    def replace(layer: keras.layers.Layer) -> Replacement | None:
        spec = specs.get(layer.name)
        if spec is None:
            return None
        schedule = _schedule(recipe["pruning"], spec["sparsity"], steps)
        args = STRUCTURE_ARGS[spec["structure"]]
        return Replacement(wrap=lambda inner: prune_low_magnitude(inner, schedule, **args))

    wrapped = transform_model(model, replace)
    listed = ", ".join(f"{n} {s['structure']} {s['sparsity']:.0%}" for n, s in specs.items())
    training.say(f"Pruning {listed} while fine-tuning for {tune['epochs']} epoch(s).")
    training.fit(
        wrapped,
        tune["epochs"],
        tune["batch_size"],
        tune["learning_rate"],
        callbacks=[UpdatePruningStep()],
    )
    stripped = strip_pruning(wrapped)
    channel_pruned = [name for name, s in specs.items() if s["structure"] == "channels"]
    if not channel_pruned:
        return stripped
    removable = channel_chains(stripped)
    kept = [name for name in channel_pruned if name not in removable]
    if kept:  # e.g. the next layer was factorized first: `shrink` cannot fold into it
        warnings.warn(
            f"Channel-pruned layer(s) {kept} keep their zero channels in place: after the "
            "recipe's earlier steps `shrink` can no longer remove them (their outputs no "
            "longer feed a layer it can shrink); the zeros still compress.",
            stacklevel=2,
        )
    if len(kept) < len(channel_pruned):
        stripped = shrink(stripped)
    return stripped


def cluster_step(model: keras.Model, recipe: dict, training: Training) -> keras.Model:
    """Clusters each listed layer's weights into its number of shared values (zeros kept
    when the recipe prunes), fine-tunes, strips; `model` when nothing is clustered."""
    clusters = _layers(recipe, "cluster")
    if not clusters:
        return model
    keep_zeros = bool(pruned_layers(recipe))

    def replace(layer: keras.layers.Layer) -> Replacement | None:
        k = clusters.get(layer.name)
        if k is None:
            return None
        return Replacement(
            wrap=lambda inner: cluster_weights(inner, k, preserve_sparsity=keep_zeros), built=True
        )

    clustered = transform_model(model, replace)
    settings = recipe["clustering"]
    if settings["epochs"]:
        listed = ", ".join(f"{n} {k}" for n, k in clusters.items())
        training.say(f"Clustering {listed} and fine-tuning for {settings['epochs']} epoch(s).")
        batch_size = recipe["fine_tune"]["batch_size"]
        training.fit(clustered, settings["epochs"], batch_size, settings["learning_rate"])
    return strip_clustering(clustered)


def qat_scheme(recipe: dict) -> str:
    """The QAT scheme that keeps what the earlier steps made: zeros, shared values, both."""
    pruned, clustered = bool(pruned_layers(recipe)), bool(_layers(recipe, "cluster"))
    if pruned and clustered:
        return "prune_cluster_preserve_8bit"
    if pruned:
        return "prune_preserve_8bit"
    return "cluster_preserve_8bit" if clustered else "default_8bit"


@dataclass
class Exported:
    """What the export step gives: the `.tflite`, the plain Keras model it came from,
    the Keras model whose outputs the `.tflite` should match (the QAT model, when
    trained), and a label of what was done."""

    tflite: bytes
    model: keras.Model
    reference: keras.Model
    label: str


def export_step(model: keras.Model, recipe: dict, training: Training) -> Exported:
    """int8: quantization-aware training with the scheme keeping zeros and clusters and
    the per-layer bits (`quantize_model(precision=...)`), exported from the QAT ranges;
    `qat.epochs` 0: post-training int8 calibrated on 200 training samples. Other modes
    export `model` as it is."""
    mode = recipe["export"]["mode"]
    if mode != "int8":
        return Exported(export_tflite(model, mode=mode), model, model, mode)
    qat = recipe["qat"]
    if not qat["epochs"]:
        samples = training.x[:CALIBRATION_SAMPLES]
        content = export_tflite(model, mode="int8", representative_data=samples)
        return Exported(content, model, model, "int8 (post-training)")
    scheme = qat_scheme(recipe)
    four = {name: 4 for name, bits in _layers(recipe, "bits").items() if bits == 4}
    what = f"{scheme}" + (f", 4-bit {', '.join(four)}" if four else "")
    training.say(f"Quantization-aware training ({what}) for {qat['epochs']} epoch(s).")
    quantized = quantize_model(model, scheme=scheme, precision=four or None)
    batch_size = recipe["fine_tune"]["batch_size"]
    training.fit(quantized, qat["epochs"], batch_size, qat["learning_rate"], distill=False)
    content = export_tflite(quantized, mode="int8")
    label = "int8 (QAT)" if not four else "int8/4-bit (QAT)"
    return Exported(content, strip_quantization(quantized), quantized, label)
