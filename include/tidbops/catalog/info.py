"""``tidbops info``: every cluster's backups at a glance, like pgBackRest's ``info``, as text or JSON.

Per cluster: a status (ok, warning, error) with the problems behind it, the latest restore point and
its age, and the chains (full → incrementals) with sizes, ages and flags; then the recent attempts that
failed and those still running. A cluster of the fleet with no backup at all is listed too, as an
error: the point is to see, for every cluster, that a recent, complete, verified backup exists.

Per cluster and for the fleet: the share of retained backups verified at tier ≥ 1 in the last 24 h
(``tidbops.verification.coverage``; the goal is 100%).

``tidbops info`` is also a monitoring check: its exit code (``exit_code``) follows the Nagios plugin
convention that most monitoring systems read (Nagios, Icinga, Sensu, Zabbix's and Prometheus's script
exporters): 0 OK, 1 WARNING, 2 CRITICAL (a cluster in error: stale, nothing restorable, a failed
verification), 3 UNKNOWN (the check could not be made). The document's ``status`` is the worst cluster's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from tidbops.catalog.errors import BrokenChainError
from tidbops.catalog.records import (
    BackupKind,
    BackupRecord,
    BackupStatus,
    chain_to,
    index,
    restorable_chain,
    utc,
)
from tidbops.timefmt import iso_or_none, show
from tidbops.verification import COVERAGE_WINDOW, Coverage, coverage

DEFAULT_STALE_AFTER = timedelta(hours=36)
RECENT_ATTEMPTS = 5
_SHOWN = frozenset({BackupStatus.SUCCEEDED, BackupStatus.EXPIRED})  # what has files in storage
_SEVERITY = {"ok": 0, "warning": 1, "error": 2}
EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
_EXIT = {"ok": EXIT_OK, "warning": EXIT_WARNING, "error": EXIT_CRITICAL}


def human_size(n: int | None) -> str:
    """``1.5 GiB``; ``-`` when unknown."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_age(delta: timedelta) -> str:
    """``2d 3h``, ``3h 5m``, ``5m 3s``, ``12s`` (two units at most; negative deltas are ``0s``)."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{v}{u}" for v, u in parts[:2] if v or u == parts[0][1])


def _flags(b: BackupRecord, broken: bool = False) -> list[str]:
    flags: list[str] = []
    if b.status is not BackupStatus.SUCCEEDED:
        flags.append(b.status.value)
    if b.status in _SHOWN:
        flags.append("verify-failed" if b.verify_failed else "verified" if b.verified else "unverified")
    if broken:
        flags.append("broken-chain")
    return flags


def _backup_doc(b: BackupRecord, now: datetime, broken: bool = False) -> dict[str, Any]:
    return {
        "id": b.id,
        "kind": b.kind.value,
        "status": b.status.value,
        "flags": _flags(b, broken),
        "verified": b.verified,
        "verified_at": iso_or_none(b.verified_at),
        "verify_detail": b.verify_detail,
        "backup_ts": b.backup_ts,
        "backup_time": iso_or_none(b.backup_time),
        "age_s": int((now - b.when).total_seconds()),
        "base_backup_id": b.base_backup_id,
        "size_bytes": b.size_bytes,
        "total_kv": b.total_kv,
        "br_duration_s": b.br_duration_s,
        "br_version": b.br_version,
        "encryption_method": b.encryption_method,
        "storage_uri": b.storage_uri,
        "started_at": iso_or_none(b.started_at),
        "finished_at": iso_or_none(b.finished_at),
        "try_number": b.try_number,
        "triggered_by": b.triggered_by,
        "error": b.error,
    }


def _cluster_doc(
    name: str, mine: list[BackupRecord], now: datetime, stale_after: timedelta, verified: Coverage
) -> dict[str, Any]:
    mine = sorted(mine, key=BackupRecord.sort_key)
    by_id = index(mine)
    problems: list[tuple[str, str]] = []  # (severity, text)

    # chains of what is in storage (succeeded or expired): a full and everything built on it
    chains: dict[str, list[BackupRecord]] = {}
    orphans: list[BackupRecord] = []
    for b in mine:
        if b.status not in _SHOWN:
            continue
        try:
            root = chain_to(by_id, b)[0]
        except BrokenChainError:
            root = None
        if root is None or root.status not in _SHOWN:
            orphans.append(b)  # a base is gone: this backup cannot be restored
            continue
        chains.setdefault(root.id, []).append(b)

    points = [b for b in mine if b.succeeded and restorable_chain(by_id, b) is not None]
    latest = points[-1] if points else None
    verified_points = [b for b in points if all(link.verified for link in restorable_chain(by_id, b) or [])]
    latest_verified = verified_points[-1] if verified_points else None
    if latest is None:
        problems.append(("error", "no restorable backup"))
    else:
        assert latest.backup_time is not None
        age = now - latest.backup_time
        if age > stale_after:
            problems.append(
                ("error", f"latest restorable backup is {human_age(age)} old (limit {human_age(stale_after)})")
            )
        for link in restorable_chain(by_id, latest) or []:
            if link.verify_failed:
                problems.append(("error", f"{link.id} failed verification: {(link.verify_detail or '')[:200]}"))
            elif not link.verified:
                problems.append(("warning", f"{link.id} is not verified"))
        if latest_verified is None:
            problems.append(("warning", "no verified restore point"))
    attempts = [b for b in mine if b.status in (BackupStatus.FAILED, BackupStatus.RUNNING)]
    attempts.sort(key=lambda b: b.started_at)
    last_attempt = max(mine, key=lambda b: b.started_at) if mine else None
    if last_attempt is not None and last_attempt.status is BackupStatus.FAILED:
        first = (last_attempt.error or "no error text").strip().splitlines()[0][:200]
        problems.append(("warning", f"last attempt {last_attempt.id} failed: {first}"))
    if orphans:
        problems.append(("warning", f"{len(orphans)} backup(s) whose chain is broken"))
    status = max((sev for sev, _ in problems), key=_SEVERITY.__getitem__, default="ok")
    stored = [b for b in mine if b.status in _SHOWN]
    return {
        "cluster": name,
        "status": status,
        "problems": [text for _, text in problems],
        "latest": _backup_doc(latest, now) if latest else None,
        "latest_verified": _backup_doc(latest_verified, now) if latest_verified else None,
        "counts": {s.value: sum(1 for b in mine if b.status is s) for s in BackupStatus},
        "stored_bytes": sum(b.size_bytes or 0 for b in stored),
        "verification": verified.to_dict(),
        "encryption_methods": sorted({b.encryption_method or "none" for b in stored}),
        "chains": [
            {
                "full": root_id,
                "size_bytes": sum(b.size_bytes or 0 for b in members),
                "backups": [_backup_doc(b, now) for b in members],
            }
            for root_id, members in chains.items()
        ],
        "broken": [_backup_doc(b, now, broken=True) for b in orphans],
        "attempts": [_backup_doc(b, now) for b in attempts if b.status is BackupStatus.RUNNING]
        + [_backup_doc(b, now) for b in attempts if b.status is BackupStatus.FAILED][-RECENT_ATTEMPTS:],
    }


def info_document(
    backups: Iterable[BackupRecord],
    now: datetime,
    clusters: Sequence[str] = (),
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> dict[str, Any]:
    """The info as a JSON-ready dict. ``clusters``: those to list even without any backup, first, in order."""
    now = utc(now, "now")
    rows = list(backups)
    names = list(dict.fromkeys([*clusters, *sorted({b.cluster for b in rows})]))
    verified = coverage(rows, now, clusters=names)
    docs = [_cluster_doc(n, [b for b in rows if b.cluster == n], now, stale_after, verified.clusters[n]) for n in names]
    status = max((c["status"] for c in docs), key=_SEVERITY.__getitem__, default="ok")
    return {
        "generated_at": iso_or_none(now),
        "stale_after_s": int(stale_after.total_seconds()),
        "status": status,
        "exit_code": _EXIT[status],
        "summary": summary(docs),
        "verification": {k: v for k, v in verified.to_dict().items() if k != "clusters"},
        "clusters": docs,
    }


def summary(clusters: Sequence[dict[str, Any]]) -> str:
    """``2 clusters: 1 error (prod), 1 ok``; ``no backups recorded`` when there is no cluster."""
    if not clusters:
        return "no backups recorded"
    parts = []
    for status in ("error", "warning", "ok"):
        names = [c["cluster"] for c in clusters if c["status"] == status]
        if names:
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            parts.append(f"{len(names)} {status}" + (f" ({shown})" if status != "ok" else ""))
    return f"{len(clusters)} cluster{'s' if len(clusters) != 1 else ''}: {', '.join(parts)}"


def exit_code(document: dict[str, Any]) -> int:
    """The monitoring exit code of an ``info_document``: 0 OK, 1 WARNING, 2 CRITICAL."""
    return _EXIT[str(document["status"])]


def format_info_json(
    backups: Iterable[BackupRecord],
    now: datetime,
    clusters: Sequence[str] = (),
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> str:
    return json.dumps(info_document(backups, now, clusters, stale_after=stale_after), indent=2, sort_keys=True)


def _time_line(b: dict[str, Any]) -> str:
    when = b["backup_time"] or b["started_at"]
    text = f"time: {show(datetime.fromisoformat(when))} ({human_age(timedelta(seconds=b['age_s']))} ago)"
    if b["backup_ts"] is not None:
        text += f", ts {b['backup_ts']}"
    if b["kind"] == BackupKind.INCREMENTAL.value and b["base_backup_id"]:
        text += f", base {b['base_backup_id']}"
    return text


def _size_line(b: dict[str, Any]) -> str:
    parts = [f"size: {human_size(b['size_bytes'])}"]
    if b["total_kv"] is not None:
        parts.append(f"kv: {b['total_kv']:,}")
    if b["br_duration_s"] is not None:
        br = f"br: {human_age(timedelta(seconds=b['br_duration_s']))}"
        parts.append(br + (f" ({b['br_version']})" if b["br_version"] else ""))
    if b["encryption_method"]:
        parts.append(f"encryption: {b['encryption_method']}")
    return ", ".join(parts)


def _backup_lines(b: dict[str, Any], indent: str) -> list[str]:
    label = "full backup" if b["kind"] == BackupKind.FULL.value else "incr backup"
    lines = [f"{indent}{label}: {b['id']}  [{', '.join(b['flags'])}]"]
    inner = indent + "    "
    lines.append(inner + _time_line(b))
    lines.append(inner + _size_line(b))
    lines.append(f"{inner}storage: {b['storage_uri']}")
    if b["verify_detail"] and b["flags"] and "verify-failed" in b["flags"]:
        lines.append(f"{inner}verification: {b['verify_detail'][:200]}")
    return lines


def format_info(
    backups: Iterable[BackupRecord],
    now: datetime,
    clusters: Sequence[str] = (),
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> str:
    """The info as text, one block per cluster."""
    doc = info_document(backups, now, clusters, stale_after=stale_after)
    if not doc["clusters"]:
        return "no backups recorded (no clusters and no backups in the catalog)\n"
    out: list[str] = []
    for c in doc["clusters"]:
        problems = "; ".join(c["problems"])
        out.append(f"cluster: {c['cluster']}")
        out.append(f"    status: {c['status']}" + (f" ({problems})" if problems else ""))
        latest = c["latest"]
        if latest:
            age = human_age(timedelta(seconds=latest["age_s"]))
            out.append(f"    latest restore point: {latest['id']} ({latest['kind']}, {age} ago)")
        verified = c["latest_verified"]
        if verified and (not latest or verified["id"] != latest["id"]):
            age = human_age(timedelta(seconds=verified["age_s"]))
            out.append(f"    latest verified restore point: {verified['id']} ({verified['kind']}, {age} ago)")
        counts = c["counts"]
        out.append(
            f"    backups: {len(c['chains'])} chain(s), {counts['succeeded']} succeeded, {counts['failed']} failed, "
            f"{counts['running']} running, {counts['expired']} expired; {human_size(c['stored_bytes'])} stored"
        )
        if c["encryption_methods"]:
            out.append(f"    encryption: {', '.join(c['encryption_methods'])}")
        out.append(f"    {_coverage_line(c['verification'], 'retained backups')}")
        for chain in c["chains"]:
            out.append("")
            for b in chain["backups"]:
                out.extend(_backup_lines(b, "    " if b["kind"] == BackupKind.FULL.value else "        "))
        if c["broken"]:
            out.append("")
            out.append("    broken chains (a base is missing):")
            for b in c["broken"]:
                out.extend(_backup_lines(b, "        "))
        if c["attempts"]:
            out.append("")
            out.append("    attempts:")
            for b in c["attempts"]:
                since = human_age(timedelta(seconds=b["age_s"]))
                if b["status"] == BackupStatus.RUNNING.value:
                    out.append(f"        {b['id']}: running for {since} (try {b['try_number']})")
                else:
                    error = (b["error"] or "no error text").strip().splitlines()[0][:160]
                    out.append(f"        {b['id']}: failed {since} ago (try {b['try_number']}): {error}")
        out.append("")
    out.append(f"fleet: {_coverage_line(doc['verification']['fleet'], 'retained backups')}")
    out.append(f"status: {doc['status'].upper()} (exit {doc['exit_code']}): {doc['summary']}")
    out.append("")
    return "\n".join(out)


def _coverage_line(figure: dict[str, Any], what: str) -> str:
    hours = int(COVERAGE_WINDOW.total_seconds() // 3600)
    text = Coverage(figure["retained"], figure["verified"]).text()
    return f"verified at tier >= 1 in the last {hours} h: {text.replace(' (', f' {what} (', 1)}"
