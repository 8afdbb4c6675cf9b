"""The emulator's own data-file container (named ``*.sst`` / ``*.log`` like BR's, but NOT RocksDB SSTs).

Layout of every data file, before optional encryption (``IV || AES-CTR``, see ``crypter``)::

    magic  b"TIDBOPS-BREMU\\x00" (14 bytes) | version u8 (=1) | compression u8 (0 none, 1 lz4, 2 zstd,
    3 snappy) | payload = compress(JSON)

The JSON payload of a snapshot data file is ``{"db", "table", "columns", "kinds", "rows"}``; values are
the server's exact text (``str``), ``null``, or base64 for binary columns. A log file holds
``{"store_id", "groups": [{"db", "table", "columns", "kinds", "pk", "events": [[commit_ts, op, row]]}],
"ddl": [...]}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from .errors import br_error

MAGIC = b"TIDBOPS-BREMU\x00"
VERSION = 1
COMPRESSION_IDS = {"none": 0, "lz4": 1, "zstd": 2, "snappy": 3}
COMPRESSION_NAMES = {v: k for k, v in COMPRESSION_IDS.items()}


def parse_compression(name: str) -> str:
    if name not in ("lz4", "zstd", "snappy"):
        raise br_error("ErrInvalidArgument", f"invalid compression type '{name}'")
    return name


def compress(data: bytes, method: str, level: int = 0) -> bytes:
    if method == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level if level > 0 else 3).compress(data)
    if method == "lz4":
        import lz4.frame

        return bytes(lz4.frame.compress(data, compression_level=max(level, 0)))
    if method == "snappy":
        import snappy

        return bytes(snappy.compress(data))
    return data


def decompress(data: bytes, method: str) -> bytes:
    if method == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 31)
    if method == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(data))
    if method == "snappy":
        import snappy

        return bytes(snappy.decompress(data))
    return data


def encode_container(obj: dict[str, Any], compression: str, level: int = 0) -> bytes:
    return encode_container_sized(obj, compression, level)[0]


def encode_container_sized(obj: dict[str, Any], compression: str, level: int = 0) -> tuple[bytes, int]:
    """The container and the size of its uncompressed payload."""
    payload = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return MAGIC + bytes([VERSION, COMPRESSION_IDS[compression]]) + compress(payload, compression, level), len(payload)


def decode_container(data: bytes, name: str = "") -> dict[str, Any]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 2:
        raise br_error("ErrRestoreInvalidBackup", f"file {name} is not a br-emulator data file (wrong key?)")
    method = COMPRESSION_NAMES.get(data[len(MAGIC) + 1])
    if method is None:
        raise br_error("ErrRestoreInvalidBackup", f"file {name} has an unknown compression id")
    try:
        payload = decompress(data[len(MAGIC) + 2 :], method)
        obj: dict[str, Any] = json.loads(payload)
    except Exception as exc:
        raise br_error("ErrRestoreInvalidBackup", f"file {name} is corrupted: {exc}") from None
    return obj


def encode_rows(kinds: Sequence[str], rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as JSON-able lists: binary columns base64-encoded; everything else unchanged."""
    binary = [i for i, k in enumerate(kinds) if k == "binary"]
    if not binary:
        return [list(r) for r in rows]
    out: list[list[Any]] = []
    b64 = base64.b64encode
    for r in rows:
        row = list(r)
        for i in binary:
            v = row[i]
            if v is not None:
                row[i] = b64(v).decode("ascii")
        out.append(row)
    return out


def decode_rows(kinds: Sequence[str], rows: list[list[Any]]) -> list[list[Any]]:
    binary = [i for i, k in enumerate(kinds) if k == "binary"]
    if not binary:
        return rows
    b64 = base64.b64decode
    for row in rows:
        for i in binary:
            v = row[i]
            if v is not None:
                row[i] = b64(v)
    return rows


def decode_value(kind: str, v: Any) -> Any:
    if v is None or kind != "binary":
        return v
    return base64.b64decode(v)


def encode_value(kind: str, v: Any) -> Any:
    if v is None or kind != "binary":
        return v
    return base64.b64encode(v).decode("ascii")
