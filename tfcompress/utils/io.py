"""File input and atomic file output: nothing a user owns is half-written or lost."""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time


def read_bytes_or_path(
    value: bytes | bytearray | str | os.PathLike,
    argument: str,
    kind: str,
    suffix: str,
    allow_empty: bool = True,
) -> bytes:
    """The bytes an argument holds: `value` itself, or the file it names.

    Errors name `argument` and the value received; `kind` names what the bytes are
    ("PNG"), `suffix` the file (".png"), and `allow_empty=False` refuses `b""`.

    Example:
        >>> from tfcompress.utils.io import read_bytes_or_path
        >>> read_bytes_or_path(b"abc", "data", "raw", ".bin")
        b'abc'
        >>> read_bytes_or_path(3, "data", "raw", ".bin")
        Traceback (most recent call last):
        TypeError: `data` must be raw bytes or a path to a .bin file. Received: type int
    """
    if isinstance(value, (bytes, bytearray)):
        if not value and not allow_empty:
            raise ValueError(
                f"`{argument}` is empty: expected {kind} bytes or a path. Received: b''"
            )
        return bytes(value)
    if isinstance(value, (str, os.PathLike)):
        if not os.path.isfile(value):
            raise FileNotFoundError(f"No {kind} file at `{argument}`={os.fspath(value)!r}")
        with open(value, "rb") as f:
            return f.read()
    raise TypeError(
        f"`{argument}` must be {kind} bytes or a path to a {suffix} file. "
        f"Received: type {type(value).__name__}"
    )


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


TEMP_PREFIX, TEMP_SUFFIX = ".tfcompress-", ".tmp"
STALE_SECONDS = 3600  # a temporary file of ours this old was left by a killed process
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))


def _file_mode(path: str) -> int:
    """The permission bits `path` should get: the existing file's, else the umask's."""
    if os.path.exists(path):
        return stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def remove_stale_temp_files(folder: str, max_age: float = STALE_SECONDS) -> list[str]:
    """Deletes our temporary files in `folder` older than `max_age` seconds (left by a
    process killed while writing); only names `mkstemp` makes with our exact prefix.

    Returns:
        The paths removed.
    """
    removed = []
    now = time.time()
    for name in os.listdir(folder):
        if not _TEMP_NAME.fullmatch(name):
            continue
        tmp = os.path.join(folder, name)
        try:
            if now - os.lstat(tmp).st_mtime > max_age and os.path.isfile(tmp):
                os.unlink(tmp)
                removed.append(tmp)
        except OSError:  # removed meanwhile, or not ours to delete
            continue
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes, argument: str = "path") -> str:
    """Writes `data` to a temporary file beside `path`, then renames it over `path`.

    A reader never sees a partial file, and an error while writing leaves any
    existing file at `path` untouched and no temporary file behind. The file
    keeps the permissions of the one it replaces (a new one gets the umask's).
    Temporary files of ours older than an hour in the folder (from a process
    killed while writing) are removed first.

    Returns:
        The path written, as a string.
    """
    path = check_output_path(path, argument)
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temp_files(folder)
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
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


def new_output_dir(output_dir: str | None, default: str = "tfcompress-%Y%m%d-%H%M%S") -> str:
    """Creates a new output folder (`default`, a `time.strftime` pattern, when None);
    refuses one that exists and is not empty, so nothing in it is overwritten."""
    if output_dir is None:
        output_dir = time.strftime(default)
    if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)):
        raise FileExistsError(
            f"`output_dir` exists and is not an empty folder: {output_dir!r}. "
            "Nothing was overwritten; pass a new folder name."
        )
    parent = os.path.dirname(os.path.abspath(output_dir))
    if not os.path.isdir(parent):
        raise FileNotFoundError(
            f"The parent folder of `output_dir` does not exist. Received: output_dir={output_dir!r}"
        )
    os.makedirs(output_dir, exist_ok=True)
    return output_dir
