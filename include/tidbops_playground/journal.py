"""The br emulator's journal: one JSON line per invocation, in ``<playground home>/br-invocations.jsonl``.

Tests read it to prove what BR was (or was not) asked to do, e.g. that a refused restore never ran a
``br restore``. A line holds the time, the pid, the command words (``["restore", "point"]``) and the
``--pd`` addresses; never the rest of argv (storage URIs may carry credentials). Real BR keeps no such
journal: this is the playground's own instrument, not part of the emulated contract.

Secret scans (#17) need the whole argv BR got: while ``<home>/capture-argv`` exists, each invocation's
full argv is also appended to ``<home>/br-argv.jsonl`` (0600), for the scan to read, then removed, with
the S3 access key id BR got (never its secret or session token; only whether it had a token, #14).
"""

from __future__ import annotations

import atexit
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tidbops_playground.registry import playground_home

JOURNAL = "br-invocations.jsonl"
ARGV_MARKER = "capture-argv"  # while it exists: full argv into ARGV_FILE (secret scans, #17)
ARGV_FILE = "br-argv.jsonl"
_MAX_WORDS = 3


def command_words(argv: list[str]) -> list[str]:
    """The leading non-flag words: the command path (``backup full``, ``log status``)."""
    words: list[str] = []
    for token in argv:
        if token.startswith("-") or len(words) == _MAX_WORDS:
            break
        words.append(token)
    return words


def pd_addresses(argv: list[str]) -> list[str]:
    out: list[str] = []
    for i, token in enumerate(argv):
        if token in ("--pd", "-u") and i + 1 < len(argv):
            out += argv[i + 1].split(",")
        elif token.startswith("--pd="):
            out += token.split("=", 1)[1].split(",")
    return out


def record(argv: list[str], home: Path | None = None) -> None:
    """Append this invocation (best effort: a journal must never make BR fail)."""
    try:
        where = home or playground_home()
        if not where.is_dir():
            return
        line = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "pid": os.getpid(),
            "command": command_words(argv),
            "pd": pd_addresses(argv),
        }
        data = (json.dumps(line) + "\n").encode()
        fd = os.open(where / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)  # one write of one short line with O_APPEND: lines never interleave
        finally:
            os.close(fd)
        atexit.register(_record_exit, where)
        if (where / ARGV_MARKER).exists():
            # which S3 key BR signs with, and whether it has a session token (an assumed role's, #14):
            # the key id only, never the secret or the token
            creds = {
                "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID"),
                "aws_session_token": bool(os.environ.get("AWS_SESSION_TOKEN")),
            }
            full = (json.dumps({"pid": os.getpid(), "argv": list(argv), **creds}) + "\n").encode()
            fd = os.open(where / ARGV_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, full)
            finally:
                os.close(fd)
    except OSError:
        pass


EXITS = "br-exits.jsonl"  # pid and time of each invocation's end (bench-fleet: BR jobs running at once)


def _record_exit(where: Path) -> None:
    """Append this invocation's end to ``EXITS`` (not written when BR is killed: its job then has no end)."""
    line = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "pid": os.getpid()}
    try:
        fd = os.open(where / EXITS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def captured_argv(home: Path) -> list[list[str]]:
    """The full argv of every BR invocation while ``ARGV_MARKER`` existed (secret scans)."""
    path = home / ARGV_FILE
    if not path.exists():
        return []
    return [json.loads(ln)["argv"] for ln in path.read_text().splitlines() if ln.strip()]


def captured_credentials(home: Path) -> list[tuple[str | None, bool]]:
    """(AWS_ACCESS_KEY_ID, whether AWS_SESSION_TOKEN was set) of every BR invocation while ``ARGV_MARKER``
    existed."""
    path = home / ARGV_FILE
    if not path.exists():
        return []
    lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    return [(line.get("aws_access_key_id"), bool(line.get("aws_session_token"))) for line in lines]


def read(home: Path, offset: int = 0) -> list[dict[str, Any]]:
    """The journal's entries from byte ``offset`` on, each with ``cluster``: the registry's name for its
    ``--pd`` (``None`` for storage-only commands such as ``log metadata``)."""
    from tidbops_playground.registry import load_registry

    path = home / JOURNAL
    if not path.exists():
        return []
    with path.open("rb") as f:
        f.seek(offset)
        raw = f.read().decode()
    registry = load_registry(home)
    entries = []
    for text in raw.splitlines():
        if not text.strip():
            continue
        entry = json.loads(text)
        found = registry.by_pd(entry["pd"]) if entry["pd"] else None
        entry["cluster"] = found.name if found is not None else None
        entries.append(entry)
    return entries


def size(home: Path) -> int:
    """Where the journal ends now (``read(home, size(home))`` later: what ran since)."""
    path = home / JOURNAL
    return path.stat().st_size if path.exists() else 0
