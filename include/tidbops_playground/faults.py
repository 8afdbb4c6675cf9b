"""Fault injection for the ``br`` emulator, per emulated cluster.

Faults live in ``$TIDBOPS_PLAYGROUND_HOME/faults.json``::

    {"<cluster>": {"<fault>": {<params>}, ...}, ...}

and the environment variable ``TIDBOPS_BR_FAULTS`` (same JSON shape) overrides it per cluster and fault,
so a single ``br`` invocation can be given a fault without touching the shared file.

A fault applies to the cluster a command talks to (``--pd``), or to the cluster the log-backup
advancer / GC run works on.

=========================  =================================================================================
fault                      effect
=========================  =================================================================================
``backup_fail_midway``     ``br backup`` writes part of its data files (and ``backup.lock``), never the
                           ``backupmeta``, and exits 1 with a TiKV-style I/O error
                           (params: ``after_files`` = data files written first, default half;
                           ``message`` = error text)
``backup_hang``            ``br backup`` stops after writing ``backup.lock`` and sleeps until killed
                           (SIGTERM → ``context canceled``, exit 1)
``backup_slow``            ``br backup`` takes at least ``seconds`` longer (param ``seconds``, default 30)
``restore_fail_midway``    ``br restore`` creates the schemas, loads part of the tables, exits 1 with a
                           download/ingest error (params: ``after_tables`` default half; ``message``)
``restore_corrupt_rows``   ``br restore`` succeeds (exit 0, success summary, BR's checksum passed) but then
                           silently changes ``rows`` rows (default 3: those in the middle of the key order)
                           of ``table`` (``db.table``; default the first restored table with rows): a
                           numeric column +1, else text + ``~``, else a time + 1 day; ``mode=delete``
                           deletes them. ``restore point`` applies it after the log. Only the BR log
                           file mentions it (params: ``table``, ``rows``, ``mode`` = change | delete)
``log_checkpoint_frozen``  the log-backup advancer stops advancing; ``log status`` still says NORMAL and
                           the gap grows (pingcap/tidb#53047)
``log_task_error``         the advancer pauses the task with a store error: status ``○ ERROR`` with
                           ``error[store=N]`` rows / ``last_errors`` (params: ``store_id`` default the first
                           store, ``code`` default ``KV:LogBackup:RaftReq``, ``message``)
``log_task_pause``         the advancer pauses the task (status ``● PAUSE``, no error)
``gc_safepoint``           the GC safepoint is at least ``ts`` (param ``ts``, a TSO); checks in ``br`` see it
                           at once, ``gc.run_gc`` persists it and purges MariaDB history before it
``storage_write_error``    writes to external storage fail with BR's ``ErrStorageUnknown``
                           (param ``after`` = number of successful writes first, default 0)
=========================  =================================================================================
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAULTS_FILE = "faults.json"
ENV_VAR = "TIDBOPS_BR_FAULTS"

KNOWN_FAULTS: dict[str, str] = {
    "backup_fail_midway": "backup writes part of its files then fails (no backupmeta)",
    "backup_hang": "backup sleeps until killed",
    "backup_slow": "backup takes `seconds` longer",
    "restore_fail_midway": "restore loads part of the tables then fails",
    "restore_corrupt_rows": "restore succeeds but silently changes `rows` rows of `table` (mode change|delete)",
    "log_checkpoint_frozen": "advancer stops advancing; status stays NORMAL",
    "log_task_error": "advancer pauses the task with a store error (status ERROR)",
    "log_task_pause": "advancer pauses the task (status PAUSE)",
    "gc_safepoint": "GC safepoint is moved to `ts`",
    "storage_write_error": "storage writes fail with ErrStorageUnknown (after `after` writes)",
}


class FaultError(ValueError):
    """An unknown fault name or bad parameters."""


def _path(home: Path) -> Path:
    return Path(home) / FAULTS_FILE


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / (FAULTS_FILE + ".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _read_file(home: Path) -> dict[str, dict[str, dict[str, Any]]]:
    try:
        data = json.loads(_path(home).read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise FaultError(f"{_path(home)} is not valid JSON: {exc}") from None
    return {str(c): {str(f): dict(p or {}) for f, p in (faults or {}).items()} for c, faults in data.items()}


def _write_file(home: Path, data: dict[str, dict[str, dict[str, Any]]]) -> None:
    home = Path(home)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".faults.")
    with os.fdopen(fd, "w") as fh:
        json.dump({c: f for c, f in data.items() if f}, fh, indent=2, sort_keys=True)
    os.replace(tmp, _path(home))


def set_fault(home: Path, cluster: str, fault: str, **params: Any) -> None:
    """Arm ``fault`` for ``cluster`` (replacing its previous parameters)."""
    if fault not in KNOWN_FAULTS:
        raise FaultError(f"unknown fault {fault!r}; known: {', '.join(sorted(KNOWN_FAULTS))}")
    if fault == "gc_safepoint" and not isinstance(params.get("ts"), int):
        raise FaultError("gc_safepoint needs ts=<TSO int>")
    if fault == "restore_corrupt_rows":
        table = params.get("table")
        if table is not None and (not isinstance(table, str) or table.count(".") != 1):
            raise FaultError("restore_corrupt_rows: table must be 'db.table'")
        if params.get("mode", "change") not in ("change", "delete"):
            raise FaultError("restore_corrupt_rows: mode is change or delete")
        if not isinstance(params.get("rows", 3), int) or params.get("rows", 3) < 1:
            raise FaultError("restore_corrupt_rows: rows must be a positive integer")
    json.dumps(params)  # parameters must be JSON-serialisable
    with _locked(home):
        data = _read_file(home)
        data.setdefault(cluster, {})[fault] = params
        _write_file(home, data)


def clear_faults(home: Path, cluster: str | None = None) -> None:
    """Disarm every fault of ``cluster`` (of all clusters when ``None``)."""
    with _locked(home):
        data = _read_file(home)
        if cluster is None:
            data = {}
        else:
            data.pop(cluster, None)
        _write_file(home, data)


def load_faults(home: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """All armed faults: the file, overridden per cluster and fault by ``$TIDBOPS_BR_FAULTS``."""
    data = _read_file(home)
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        try:
            override = json.loads(env)
        except json.JSONDecodeError as exc:
            raise FaultError(f"{ENV_VAR} is not valid JSON: {exc}") from None
        for cluster, faults in (override or {}).items():
            for fault, params in (faults or {}).items():
                data.setdefault(str(cluster), {})[str(fault)] = dict(params or {})
    return data


def faults_for(home: Path, cluster: str) -> dict[str, dict[str, Any]]:
    return load_faults(home).get(cluster, {})
