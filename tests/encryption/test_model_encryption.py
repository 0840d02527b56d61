"""Encrypted models: round trips, tampered regions, wrong keys, truncation, no plaintext file."""

import base64
import os

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.cli import main
from tfcompress.encryption import (
    DecryptionError,
    decrypt_model,
    encrypt_model,
    generate_key,
    is_encrypted,
    load_key,
)
from tfcompress.encryption.model_encryption import HEADER_BYTES, MAGIC, NONCE_BYTES, TAG_BYTES


@pytest.fixture(scope="module")
def content():
    keras.utils.set_random_seed(0)
    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    model = keras.Sequential(layers)
    return tc.export_tflite(model)


@pytest.fixture
def key():
    return generate_key()


def test_round_trip_and_a_fresh_nonce_every_time(content, key):
    first, second = encrypt_model(content, key), encrypt_model(content, key)
    assert decrypt_model(first, key) == decrypt_model(second, key) == content
    assert first[:HEADER_BYTES] != second[:HEADER_BYTES]  # random nonce
    assert len(first) == len(content) + HEADER_BYTES + TAG_BYTES
    assert is_encrypted(first) and not is_encrypted(content)
    assert content[64:128] not in first  # the body is not stored in the clear


def test_files_and_the_tflite_model_decrypting_in_memory(content, key, digits, tmp_path):
    sealed = tmp_path / "model.tflite.enc"
    encrypt_model(content, key, sealed)
    before = set(os.listdir(tmp_path))
    runner = tc.TFLiteModel(sealed, key=key)
    np.testing.assert_array_equal(
        runner.predict(digits.x_test[:20]), tc.TFLiteModel(content).predict(digits.x_test[:20])
    )
    assert set(os.listdir(tmp_path)) == before  # no plaintext written next to it
    with pytest.raises(ValueError, match="encrypted.*pass its `key`"):
        tc.TFLiteModel(sealed)
    with pytest.raises(ValueError, match="not an encrypted model"):
        tc.TFLiteModel(content, key=key)


def test_no_plaintext_temp_file_anywhere(content, key, tmp_path, monkeypatch):
    """Decryption and loading never open a file for writing."""
    sealed = encrypt_model(content, key)
    written = []
    real_open = open

    def watching_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            written.append(file)
        return real_open(file, mode, *args, **kwargs)

    real_os_open = os.open

    def watching_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            written.append(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    monkeypatch.setattr(os, "open", watching_os_open)
    assert decrypt_model(sealed, key) == content
    tc.TFLiteModel(sealed, key=key)
    assert written == []


@pytest.mark.parametrize(
    "where",
    [0, len(MAGIC), len(MAGIC) + 1, len(MAGIC) + 2, HEADER_BYTES - 1, HEADER_BYTES, -TAG_BYTES, -1],
    ids=["magic", "version", "cipher", "nonce", "nonce-end", "body", "tag", "tag-end"],
)
def test_any_changed_byte_is_refused(content, key, where):
    sealed = bytearray(encrypt_model(content, key))
    sealed[where] ^= 0x01
    with pytest.raises(DecryptionError):
        decrypt_model(bytes(sealed), key)


def test_wrong_key_and_truncated_files(content, key):
    sealed = encrypt_model(content, key)
    with pytest.raises(DecryptionError, match="wrong key"):
        decrypt_model(sealed, generate_key())
    for size in (len(sealed) - 1, HEADER_BYTES + TAG_BYTES, HEADER_BYTES + 3, 8, 3):
        with pytest.raises(DecryptionError, match="truncated|not a tfcompress"):
            decrypt_model(sealed[:size], key)
    with pytest.raises(DecryptionError, match="not a tfcompress-encrypted model"):
        decrypt_model(content, key)
    with pytest.raises(DecryptionError, match="version 2"):
        decrypt_model(MAGIC + bytes([2, 1]) + bytes(NONCE_BYTES + TAG_BYTES), key)
    with pytest.raises(ValueError, match="already encrypted"):
        encrypt_model(sealed, key)


def test_keys_from_bytes_files_and_the_environment(key, tmp_path, monkeypatch):
    raw, text = tmp_path / "key.bin", tmp_path / "key.txt"
    raw.write_bytes(key)
    text.write_text(key.hex() + "\n")
    monkeypatch.setenv("MODEL_KEY_HEX", key.hex())
    monkeypatch.setenv("MODEL_KEY_B64", base64.b64encode(key).decode())
    for source in (key, str(raw), text, "env:MODEL_KEY_HEX", "env:MODEL_KEY_B64"):
        assert load_key(source) == key
    with pytest.raises(ValueError, match="32 bytes"):
        load_key(b"short")
    with pytest.raises(ValueError, match="'NO_SUCH_VAR' is not set"):
        load_key("env:NO_SUCH_VAR")
    with pytest.raises(ValueError, match="not a file"):
        load_key(str(tmp_path / "missing"))
    monkeypatch.setenv("BAD_KEY", "abcd")
    with pytest.raises(ValueError, match="decodes to 2 bytes"):
        load_key("env:BAD_KEY")
    with pytest.raises(TypeError, match="Received: type int"):
        load_key(7)


def test_cli_keygen_encrypt_decrypt(content, tmp_path, capsys):
    key_file, plain, sealed, back = (tmp_path / n for n in ("key", "m.tflite", "m.enc", "b.tflite"))
    plain.write_bytes(content)
    assert main(["tfcompress", "keygen", f"--output={key_file}"]) == 0
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert main(["tfcompress", "keygen", f"--output={key_file}"]) == 2  # never overwritten
    args = [f"--input={plain}", f"--output={sealed}", f"--key={key_file}"]
    assert main(["tfcompress", "encrypt", *args]) == 0
    assert main(["tfcompress", "encrypt", *args]) == 2  # exists, no --overwrite
    args = [f"--input={sealed}", f"--output={back}", f"--key={key_file}"]
    assert main(["tfcompress", "decrypt", *args]) == 0
    assert back.read_bytes() == content
    capsys.readouterr()
    other = tmp_path / "other"
    assert main(["tfcompress", "keygen", f"--output={other}"]) == 0
    bad = [f"--input={sealed}", f"--output={tmp_path / 'x'}", f"--key={other}"]
    assert main(["tfcompress", "decrypt", *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--input" in err[0] and "wrong key" in err[0]
    assert not (tmp_path / "x").exists()
