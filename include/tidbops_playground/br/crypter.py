"""``--crypter.method/--crypter.key/--crypter.key-file``: BR's validation and AES-CTR encryption.

Encrypted objects (the backupmeta and every data file of a snapshot backup) are ``IV (16 bytes) ||
AES-CTR(key, IV, plaintext)`` — the layout BR's ``metautil.Encrypt`` uses for backupmeta. (Real TiKV
stores a data file's IV in the backupmeta ``File`` entry instead; the emulator prefixes it.)
The key is never logged or printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import BRError, br_error, plain

IV_LEN = 16
_KEY_LENGTHS = {"aes128-ctr": 16, "aes192-ctr": 24, "aes256-ctr": 32}
_METHODS = {
    "plaintext": "plaintext",
    "PLAINTEXT": "plaintext",
    "aes128-ctr": "aes128-ctr",
    "AES128-CTR": "aes128-ctr",
    "aes192-ctr": "aes192-ctr",
    "AES192-CTR": "aes192-ctr",
    "aes256-ctr": "aes256-ctr",
    "AES256-CTR": "aes256-ctr",
}


@dataclass(frozen=True)
class Cipher:
    method: str  # plaintext | aes128-ctr | aes192-ctr | aes256-ctr
    key: bytes = b""

    def __repr__(self) -> str:  # never show the key
        return f"Cipher(method={self.method!r})"

    @property
    def enabled(self) -> bool:
        return self.method != "plaintext"

    def encrypt(self, data: bytes) -> bytes:
        if not self.enabled:
            return data
        iv = os.urandom(IV_LEN)
        return iv + _ctr(self.key, iv, data)

    def decrypt(self, data: bytes) -> bytes:
        if not self.enabled:
            return data
        if len(data) < IV_LEN:
            raise BRError("decrypt failed with wrong key: ciphertext too short")
        return _ctr(self.key, data[:IV_LEN], data[IV_LEN:])


PLAINTEXT = Cipher("plaintext")


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher as _C
    from cryptography.hazmat.primitives.ciphers import algorithms, modes

    ctx = _C(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return ctx.update(data) + ctx.finalize()


def _go_hex_decode(text: str) -> bytes:
    """``encoding/hex.DecodeString`` with Go's error texts (they never echo the key)."""
    for byte in text.encode("utf-8"):
        if chr(byte) not in "0123456789abcdefABCDEF":
            ch = chr(byte)
            raise plain(f"encoding/hex: invalid byte: U+{byte:04X} {_go_rune_quote(ch)}")
    if len(text) % 2:
        raise plain("encoding/hex: odd length hex string")
    return bytes.fromhex(text)


def _go_rune_quote(ch: str) -> str:
    if ch == "'":
        return "'\\''"
    if ch.isprintable():
        return f"'{ch}'"
    return f"'\\x{ord(ch):02x}'" if ord(ch) < 0x80 else f"'\\u{ord(ch):04x}'"


def parse_cipher(method: str, key: str, key_file: str, *, check_length: bool = True) -> Cipher:
    """``Config.parseCipherInfo``: the three exact validation errors of BR.

    ``check_length=False`` is ``parseLogBackupCipherInfo`` (``--log.crypter.*``): BR checks the length of
    the *snapshot* cipher there (``checkCipherKeyMatch(&cfg.CipherInfo)``), never the log key's.
    """
    norm = _METHODS.get(method)
    if norm is None:
        raise br_error("ErrInvalidArgument", f"invalid crypter method '{method}'")
    if norm == "plaintext":
        return PLAINTEXT
    if (len(key) == 0) == (len(key_file) == 0):
        raise br_error("ErrInvalidArgument", "exactly one of --crypter.key or --crypter.key-file should be provided")
    if key:
        raw = _go_hex_decode(key)
    else:
        try:
            with open(key_file, "rb") as fh:
                content = fh.read()
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise plain(f"failed to read cipher file: open {key_file}: {reason}") from None
        if content.endswith(b"\n"):
            content = content[:-1]
        raw = _go_hex_decode(content.decode("utf-8", errors="replace"))
    if check_length and len(raw) != _KEY_LENGTHS[norm]:
        raise br_error("ErrInvalidArgument", "crypter method and key length not match")
    return Cipher(norm, raw)


def parse_log_cipher(method: str, key: str, key_file: str, master_key: str) -> Cipher:
    """``Config.parseLogBackupCipherInfo`` and ``parseAndValidateMasterKeyInfo`` (v8.4+): the log backup's
    plaintext data key (``--log.crypter.*``). ``br log start`` puts it into the task's definition in PD
    (``StreamBackupTaskSecurityConfig.PlaintextDataKey``, BR's comment: "data key is stored in PD in
    plaintext"); ``br restore point`` decrypts the log files with it. The emulator does not take master
    keys (``--master-key``); BR refuses both at once with the text below."""
    cipher = parse_cipher(method, key, key_file, check_length=False)
    if master_key and cipher.enabled:
        raise plain(
            "invalid argument: both plaintext data key encryption and master key based encryption are set at "
            "the same time"
        )
    if cipher.enabled and len(cipher.key) not in _KEY_LENGTHS.values():
        # BR would hand TiKV a key its AES cannot use; the emulator stops at once instead of later
        raise br_error("ErrInvalidArgument", "crypter method and key length not match")
    return cipher
