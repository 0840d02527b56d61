"""Models encrypted at rest (AES-256-GCM): `encrypt_model`, `decrypt_model`, keys."""

from tfcompress.encryption.model_encryption import (
    DecryptionError,
    Key,
    decrypt_model,
    encrypt_model,
    generate_key,
    is_encrypted,
    load_key,
)

__all__ = [
    "DecryptionError",
    "Key",
    "decrypt_model",
    "encrypt_model",
    "generate_key",
    "is_encrypted",
    "load_key",
]
