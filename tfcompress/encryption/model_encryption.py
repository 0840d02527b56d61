"""Models encrypted at rest: AES-256-GCM with a small versioned header.

File layout (all of it authenticated):

    magic    6 bytes  b"TFCENC"
    version  1 byte   1
    cipher   1 byte   1 = AES-256-GCM
    nonce   12 bytes  random, new for every file
    body     n bytes  the encrypted model, then GCM's 16-byte tag

The header is the GCM associated data, so a changed byte anywhere (header, body or tag) and a
wrong key both fail authentication: decryption gives an error, never a model.

What this protects against: a copy of the file (from an app bundle, a download, a disk) is of no
use without the key, and any change to it is detected. What it does not: the key has to reach
the device that runs the model, and whoever controls that device can read the key and, while the
model runs, the decrypted weights in memory. It makes copying harder, not impossible.
"""

from __future__ import annotations

import base64
import binascii
import os

from tfcompress.utils.io import atomic_write_bytes

MAGIC = b"TFCENC"
VERSION = 1
AES_256_GCM = 1
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
HEADER_BYTES = len(MAGIC) + 2 + NONCE_BYTES
ENV_PREFIX = "env:"

Key = bytes | str | os.PathLike


class DecryptionError(ValueError):
    """An encrypted model could not be decrypted: wrong key, changed or truncated file."""


def _aes_gcm():
    """`(AESGCM, InvalidTag)` from the optional `cryptography` package."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ImportError(
            "Encrypted models need the `cryptography` package: pip install 'tfcompress[encryption]'"
        ) from None
    return AESGCM, InvalidTag


def _parse_key_text(text: str, where: str) -> bytes:
    """A 32-byte key from 64 hex digits or base64 (standard or URL-safe) text."""
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        standard = text.replace("-", "+").replace("_", "/")  # URL-safe base64 too
        try:
            key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"The key in {where} must be {KEY_BYTES} bytes written as 64 hex digits or base64; "
            f"it decodes to {len(key)} bytes."
        )
    return key


def load_key(key: Key) -> bytes:
    """The 32-byte AES-256 key from `key`.

    Args:
        key: The key itself (32 bytes); `"env:NAME"` for the environment variable `NAME` holding
            it as 64 hex digits or base64; or the path of a file holding it (32 raw bytes, or hex
            or base64 text).

    Raises:
        ValueError: A key of the wrong length, an unset variable, or a missing file.

    Example:
        >>> import os
        >>> from tfcompress.encryption import generate_key, load_key
        >>> key = generate_key()
        >>> os.environ["MODEL_KEY"] = key.hex()
        >>> load_key("env:MODEL_KEY") == key
        True
    """
    if isinstance(key, (bytes, bytearray)):
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"`key` must be {KEY_BYTES} bytes (AES-256). Received: {len(key)} bytes"
            )
        return bytes(key)
    if isinstance(key, str) and key.startswith(ENV_PREFIX):
        name = key[len(ENV_PREFIX) :]
        value = os.environ.get(name)
        if not value:
            raise ValueError(f"`key`={key!r}: the environment variable {name!r} is not set.")
        return _parse_key_text(value, f"environment variable {name!r}")
    if isinstance(key, (str, os.PathLike)):
        path = os.fspath(key)
        if not os.path.isfile(path):
            raise ValueError(
                f"`key` must be {KEY_BYTES} bytes, 'env:NAME' or a key file. "
                f"Received: key={path!r}, which is not a file."
            )
        with open(path, "rb") as f:
            raw = f.read()
        if len(raw) == KEY_BYTES:
            return raw
        return _parse_key_text(raw.decode("ascii", "replace"), f"key file {path!r}")
    raise TypeError(
        f"`key` must be bytes, 'env:NAME' or a path. Received: type {type(key).__name__}"
    )


def generate_key() -> bytes:
    """A new random 32-byte key (store it apart from the model, e.g. `key.hex()`)."""
    return os.urandom(KEY_BYTES)


def _read(data: bytes | str | os.PathLike, argument: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No file at `{argument}`={path!r}")
        with open(path, "rb") as f:
            return f.read()
    raise TypeError(f"`{argument}` must be bytes or a path. Received: type {type(data).__name__}")


def is_encrypted(data: bytes) -> bool:
    """Whether `data` starts like a tfcompress-encrypted model."""
    return bytes(data[: len(MAGIC)]) == MAGIC


def encrypt_model(
    model: bytes | str | os.PathLike, key: Key, path: str | os.PathLike | None = None
) -> bytes:
    """Encrypts a model file (`.tflite`, `.keras`, any bytes) with AES-256-GCM.

    Args:
        model: The model's bytes or the path of its file.
        key: See `load_key`.
        path: Where to write the encrypted file (atomically); None: return the bytes only.

    Returns:
        The encrypted bytes: header, then ciphertext and tag.

    Example:
        >>> from tfcompress.encryption import decrypt_model, encrypt_model, generate_key
        >>> key = generate_key()
        >>> content = tfcompress.export_tflite(tfcompress.models.lenet_300_100())
        >>> sealed = encrypt_model(content, key)
        >>> sealed[:6], decrypt_model(sealed, key) == content
        (b'TFCENC', True)
    """
    plain = _read(model, "model")
    if is_encrypted(plain):
        raise ValueError("`model` is already encrypted by tfcompress; decrypt it first.")
    nonce = os.urandom(NONCE_BYTES)
    header = MAGIC + bytes([VERSION, AES_256_GCM]) + nonce
    aes_gcm, _ = _aes_gcm()
    sealed = header + aes_gcm(load_key(key)).encrypt(nonce, plain, header)
    if path is not None:
        atomic_write_bytes(path, sealed)
    return sealed


def decrypt_model(data: bytes | str | os.PathLike, key: Key) -> bytes:
    """Decrypts what `encrypt_model` wrote, in memory (nothing is written to disk).

    Raises:
        DecryptionError: Not an encrypted model, an unknown version, a truncated file, a wrong
            key or any changed byte.

    Example:
        >>> from tfcompress.encryption import decrypt_model, encrypt_model, generate_key
        >>> sealed = encrypt_model(b"weights", generate_key())
        >>> decrypt_model(sealed, generate_key())
        Traceback (most recent call last):
        ...
        tfcompress.encryption.model_encryption.DecryptionError: ...wrong key...
    """
    sealed = _read(data, "data")
    if not is_encrypted(sealed):
        raise DecryptionError(
            "`data` is not a tfcompress-encrypted model (it does not start with b'TFCENC')."
        )
    if len(sealed) < HEADER_BYTES + TAG_BYTES:
        raise DecryptionError(
            f"The encrypted model is truncated: {len(sealed)} bytes, shorter than its "
            f"{HEADER_BYTES}-byte header and {TAG_BYTES}-byte tag."
        )
    version, cipher = sealed[len(MAGIC)], sealed[len(MAGIC) + 1]
    if version != VERSION or cipher != AES_256_GCM:
        raise DecryptionError(
            f"Unknown encrypted-model format (version {version}, cipher {cipher}); this "
            f"tfcompress reads version {VERSION}, cipher {AES_256_GCM} (AES-256-GCM)."
        )
    header, nonce = sealed[:HEADER_BYTES], sealed[len(MAGIC) + 2 : HEADER_BYTES]
    aes_gcm, invalid_tag = _aes_gcm()
    try:
        return aes_gcm(load_key(key)).decrypt(nonce, sealed[HEADER_BYTES:], header)
    except invalid_tag:
        raise DecryptionError(
            "Decryption failed: the wrong key, or the file was changed or truncated "
            "(authentication failed). No model is returned."
        ) from None
