"""Atomic file output: nothing a user owns is half-written or lost."""

from __future__ import annotations

import os
import tempfile


def check_output_path(path: str | os.PathLike, argument: str = "path") -> str:
    """Returns `path` as a string after checking that its folder exists."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"The folder of `{argument}` does not exist. Received: {argument}={path!r} "
            f"(missing folder: {folder!r}). Create it first."
        )
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"`{argument}` names a folder, expected a file path. Received: {argument}={path!r}"
        )
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, argument: str = "path") -> str:
    """Writes `data` to a temporary file beside `path`, then renames it over `path`.

    A reader never sees a partial file, and an error while writing leaves any
    existing file at `path` untouched.

    Returns:
        The path written, as a string.
    """
    path = check_output_path(path, argument)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tfcompress-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, argument: str = "path") -> str:
    """Text version of `atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"), argument)
