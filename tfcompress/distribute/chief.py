"""Who writes files after multi-worker training: the chief; the others write to their own place."""

from __future__ import annotations

import os

import tensorflow as tf


def _task(strategy: tf.distribute.Strategy) -> tuple[str | None, int, bool]:
    """`(task type, task index, whether the cluster names a chief)` of this process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None, 0, False
    return resolver.task_type, int(resolver.task_id or 0), "chief" in resolver.cluster_spec().jobs


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True in the one process that should write shared files (checkpoints, `.tflite`).

    That is the `chief` task if `TF_CONFIG` names one, else worker 0; a process without a
    cluster (one worker, or no multi-worker strategy) is its own chief. Every worker still
    runs the same code up to the write (collective ops need all of them); only the write is
    guarded.

    Args:
        strategy: The strategy trained under; default the current one.

    Example:
        >>> tfcompress.distribute.is_chief(tf.distribute.get_strategy())
        True
    """
    strategy = strategy or tf.distribute.get_strategy()
    task_type, index, has_chief = _task(strategy)
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and not has_chief


def worker_dir(base: str | os.PathLike, strategy: tf.distribute.Strategy | None = None) -> str:
    """A folder that is this worker's own: `base` on the chief, `base-worker_N` beside it else.

    Keras 3's `BackupAndRestore` has every worker save the same checkpoint files; give it
    `worker_dir(backup_dir)` so that workers never write the same file at once, and each
    one restores its own (equal) copy after a restart. The others' folders are siblings,
    not inside `base`, so the chief removing `base` at the end removes only its own.

    Args:
        base: The folder the chief uses.
        strategy: The strategy trained under; default the current one.

    Example:
        >>> tfcompress.distribute.worker_dir("backup", tf.distribute.get_strategy())
        'backup'
    """
    strategy = strategy or tf.distribute.get_strategy()
    base = os.fspath(base)
    if is_chief(strategy):
        return base
    task_type, index, _ = _task(strategy)
    return f"{base.rstrip(os.sep)}-{task_type}_{index}"
