"""The ai-edge-quantizer side of benchmarks/peers.py, run in its own process and venv.

LiteRT's post-training quantizer rewrites a float `.tflite`. Reads a job (JSON:
the float model, calibration images, an output folder), applies each recipe
and writes `<out>/<recipe>.tflite` plus a JSON of the files, the seconds each
took and any recipe's error. Never imported by the tfcompress package; the
files are measured by benchmarks/peers.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from importlib import metadata

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_quantizer import quantizer, recipe
from ai_edge_quantizer.utils import tfl_interpreter_utils

RECIPES = {
    "static_wi8_ai8": recipe.static_wi8_ai8,
    "dynamic_wi8_afp32": recipe.dynamic_wi8_afp32,
    "dynamic_wi4_afp32": recipe.dynamic_wi4_afp32,
    "weight_only_wi8_afp32": recipe.weight_only_wi8_afp32,
    "weight_only_wi4_afp32": recipe.weight_only_wi4_afp32,
}


def calibration_data(model_path: str, images: np.ndarray) -> dict:
    """`{signature: [{input name: one image batch}, ...]}`, as the quantizer takes it.

    tfcompress's float export has no signature: the quantizer's default key
    names its single subgraph.
    """
    interpreter = Interpreter(model_path=model_path)
    signatures = interpreter.get_signature_list()
    if signatures:
        (key, inputs), *_ = signatures.items()
        (name,) = inputs["inputs"]
    else:
        key = tfl_interpreter_utils.DEFAULT_SIGNATURE_KEY
        name = interpreter.get_input_details()[0]["name"]
    return {key: [{name: image[None]} for image in images.astype(np.float32)]}


def main(job_path: str) -> None:
    with open(job_path) as f:
        job = json.load(f)
    os.makedirs(job["out"], exist_ok=True)
    images = np.load(job["calibration"])["x"]
    rows = {}
    for key, make in RECIPES.items():
        start = time.perf_counter()
        try:
            qt = quantizer.Quantizer(job["float_model"])
            qt.load_quantization_recipe(make())
            calibration = None
            if qt.need_calibration:
                calibration = qt.calibrate(calibration_data(job["float_model"], images))
            result = qt.quantize(calibration, enable_progress_report=False)
            path = os.path.join(job["out"], f"{key}.tflite")
            with open(path, "wb") as f:
                f.write(result.quantized_model)
            rows[key] = {"tflite": path, "seconds": time.perf_counter() - start}
        except Exception as err:  # noqa: BLE001 - a recipe that fails is a row, not a crash
            traceback.print_exc()
            rows[key] = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
    versions = {p: metadata.version(p) for p in ("ai-edge-quantizer", "ai-edge-litert")}
    with open(job["result"], "w") as f:
        json.dump({"versions": versions, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
