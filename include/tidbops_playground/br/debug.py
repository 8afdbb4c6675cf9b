"""``br debug decode [--field F]`` / ``br validate decode`` and the hidden ``br debug checksum``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .cli import Runtime, parse_common
from .common import get_storage, read_backup_meta
from .errors import br_error
from .output import console

_ALIASES = {"start-version": "StartVersion", "end-version": "EndVersion"}


def _go_print(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def run_decode(rt: Runtime) -> None:
    cfg = parse_common(rt)
    storage = get_storage(cfg.storage, cfg, None)
    meta = read_backup_meta(storage, cfg.cipher)
    field = str(rt.get("field") or "")
    if field:
        name = _ALIASES.get(field, field)
        if name not in meta or name == "Emulator":
            console(f"field '{field}' not found")
            return
        console(_go_print(meta[name]))
        return
    storage.write_file("jsons/backupmeta.json", json.dumps(meta, ensure_ascii=False, indent=2).encode())
    console(f"backupmeta decoded at {storage.uri.rstrip('/')}/jsons/backupmeta.json")


def run_checksum(rt: Runtime) -> None:
    cfg = parse_common(rt)
    storage = get_storage(cfg.storage, cfg, None)
    meta = read_backup_meta(storage, cfg.cipher)
    for table in (meta.get("Emulator") or {}).get("tables", []):
        for f in table.get("files", []):
            calculated = hashlib.sha256(storage.read_file(f["name"])).hexdigest()
            if calculated != f.get("sha256"):
                # errors.Annotatef(ErrBackupChecksumMismatch, `\nbackup data checksum failed: %s may be
                # changed\ncalculated sha256 is %s,\norigin sha256 is %s`, ...) in br/cmd/br/debug.go
                raise br_error(
                    "ErrBackupChecksumMismatch",
                    f"\nbackup data checksum failed: {f['name']} may be changed\ncalculated sha256 is {calculated},"
                    f"\norigin sha256 is {f.get('sha256') or ''}",
                )
    console("backup data checksum succeed!")
