"""One KernelDelegate (2 threads) shared by two interpreters invoked from two Python threads.

Run by test_threads.py in a child process, so that a hang fails the test instead of the suite.
Each round (a new delegate, new interpreters) prints `hung=<threads still running>
wrong=<invokes whose output differed>`; a round that hangs is the last.
"""

import os
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from ai_edge_litert import interpreter as litert  # noqa: E402
from kernel_cases import REF, random_int8, run  # noqa: E402

from tfcompress.kernels import KernelDelegate  # noqa: E402


def round_(content: bytes, invokes: int) -> bool:
    """One round; True when no thread hung."""
    delegate = KernelDelegate(num_threads=2, nodes="all")
    inputs = [random_int8((4, 13, 11, 6), seed=seed) for seed in range(2)]
    expected = [run(content, x, REF) for x in inputs]
    wrong = [0, 0]

    def invoke_many(i: int) -> None:
        interpreter = litert.Interpreter(
            model_content=content, experimental_delegates=[delegate.delegate], num_threads=2
        )
        source = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(source["index"], inputs[i].shape)
        interpreter.allocate_tensors()
        target = interpreter.get_output_details()[0]["index"]
        for _ in range(invokes):
            interpreter.set_tensor(source["index"], inputs[i])
            interpreter.invoke()
            wrong[i] += not np.array_equal(interpreter.get_tensor(target), expected[i])

    threads = [threading.Thread(target=invoke_many, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    hung = sum(t.is_alive() for t in threads)
    print(f"hung={hung} wrong={sum(wrong)}", flush=True)
    return hung == 0


def main(path: str, invokes: int, rounds: int) -> None:
    content = open(path, "rb").read()
    for _ in range(rounds):
        if not round_(content, invokes):
            break
    os._exit(0)  # a hung pool thread must not keep the process alive


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
