"""Verification tiers, recorded per backup (#16): tier 1 reads every file back, tier 2 asks BR.

* **Tier 1** (nightly, every retained backup — status ``succeeded``; expired, deleted, failed and
  running rows are skipped): the manifest and every file it lists are read back from storage, all of
  their bytes, and compared with the manifest's sizes and (where recorded) SHA-256 (``read_back``).
* **Tier 2** (weekly per backup): ``br debug checksum`` — BR reads the backup's ``backupmeta`` (with the
  cluster's crypter key when its backups are encrypted) and re-reads every data file against the
  SHA-256 recorded there (``verify_br_checksum``). A backup is **due** when the catalog's events hold no
  passed verification at tier ≥ 2 for it in the last 7 days (``due_for_br_checksum``). Events, not
  ``verified_tier``/``verified_at``: the nightly tier-1 pass moves ``verified_at`` and keeps
  ``verified_tier`` at 2, so only the events say when tier 2 last passed. A drill (tier 3) that passed
  within the week counts too: it restored the data with BR, which checks the same hashes.
* **Tier 3** is a restore drill (``tidbops.drill``); it is recorded by the drill pipeline, not here.

Each result goes into the catalog with ``Catalog.mark_verified(..., tier=N)``, which keeps the highest
tier passed and clears it on any failure. Only a verdict about the backup's content is recorded: a file
or manifest missing, a wrong size or hash, BR's own answer. A storage that does not answer, a BR that
times out or cannot start says nothing about the backup: the check fails (and the task or command
with it) but the row is left as it was.

``coverage`` is the fleet figure: the share of retained backups verified at tier ≥ 1 in the last 24 h,
per cluster and fleet-wide (the goal is 100%); ``tidbops info`` shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tidbops.br import runner
from tidbops.br.command import debug_checksum_argv
from tidbops.br.errors import BRRequestError
from tidbops.br.output import parse_debug_checksum
from tidbops.br.seam import BRRun
from tidbops.catalog.errors import CatalogStateError, ManifestError
from tidbops.catalog.manifest import (
    BACKUPMETA,
    MANIFEST_NAME,
    Manifest,
    SizeMismatch,
    VerifyResult,
    _sha256,
    read_manifest,
)
from tidbops.catalog.records import BackupRecord, BackupStatus, utc
from tidbops.errors import TiDBOpsError
from tidbops.redact import redact
from tidbops.storage import ObjectNotFoundError, Storage, StorageError

if TYPE_CHECKING:
    from tidbops.backup import BRSessionLike
    from tidbops.catalog.store import Catalog

log = logging.getLogger(__name__)

TIER_FILES = 1
TIER_BR_CHECKSUM = 2
TIER_DRILL = 3
TIERS_HERE = (TIER_FILES, TIER_BR_CHECKSUM)
BR_CHECKSUM_EVERY = timedelta(days=7)
COVERAGE_WINDOW = timedelta(hours=24)
RETAINED = BackupStatus.SUCCEEDED

OpenStorage = Callable[[str], Storage]


class VerificationError(TiDBOpsError):
    """A verification could not run at all (nothing was recorded)."""


class RunProcess(Protocol):
    """``tidbops.br.runner.run``'s shape (tests pass a fake)."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        on_line: runner.LineSink | None = None,
        on_start: Callable[[Any], None] | None = None,
    ) -> runner.ProcessResult: ...


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class BackupCheck:
    """One backup checked at one tier. ``recorded``: the verdict went into the catalog."""

    backup_id: str
    cluster: str
    tier: int
    ok: bool
    detail: str
    recorded: bool

    def line(self) -> str:
        """``backup <id> (cluster c) failed tier 1: <what is wrong>`` — one line."""
        verdict = "passed" if self.ok else "failed"
        note = "" if self.recorded or self.ok else " (not recorded: says nothing about the backup itself)"
        return f"backup {self.backup_id} (cluster {self.cluster}) {verdict} tier {self.tier}: {self.detail}{note}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "cluster": self.cluster,
            "tier": self.tier,
            "ok": self.ok,
            "detail": self.detail,
            "recorded": self.recorded,
        }


@dataclass(frozen=True)
class TierReport:
    """One tier run over one cluster's retained backups."""

    cluster: str
    tier: int
    checks: tuple[BackupCheck, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (backup id, why it was not checked)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[BackupCheck, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def summary(self) -> str:
        passed = sum(1 for c in self.checks if c.ok)
        text = f"cluster {self.cluster}, tier {self.tier}: {len(self.checks)} backup(s) checked, {passed} passed"
        text += f", {len(self.checks) - passed} failed"
        if self.skipped:
            text += f", {len(self.skipped)} not checked"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "tier": self.tier,
            "ok": self.ok,
            "summary": self.summary(),
            "checks": [c.to_dict() for c in self.checks],
            "skipped": [{"backup_id": b, "reason": why} for b, why in self.skipped],
            "notes": list(self.notes),
        }


def _record(catalog: Catalog, backup: BackupRecord, tier: int, ok: bool, detail: str) -> BackupCheck:
    try:
        catalog.mark_verified(backup.id, ok, detail, tier=tier)
        recorded = True
    except CatalogStateError as exc:  # expired or deleted meanwhile (retention ran): nothing to record
        detail = f"{detail}; not recorded: {exc}"
        recorded = False
        log.warning("backup %s: %s", backup.id, exc)
    return BackupCheck(backup.id, backup.cluster, tier, ok, detail, recorded)


def retained_backups(catalog: Catalog, cluster: str) -> list[BackupRecord]:
    """The backups retention keeps in storage: ``succeeded`` rows, oldest first."""
    return catalog.list_backups(cluster, status=RETAINED)


# ------------------------------------------------------------------------------------------- tier 1


def read_back(storage: Storage, manifest: Manifest, *, workers: int = 8) -> VerifyResult:
    """Read every file the manifest lists back from ``storage`` (the backup's own directory), all of it:
    each must be there, as long as the manifest says and, where the manifest records one, hash to its
    SHA-256. A file that is listed but cannot be found when read counts as missing. Other storage
    errors raise ``StorageError`` (they say nothing about the backup)."""
    present = {o.path: o.size for o in storage.list("") if o.path != MANIFEST_NAME}
    listed = {f.path for f in manifest.files}
    missing = [f.path for f in manifest.files if f.path not in present]
    wrong_size = [
        SizeMismatch(f.path, f.size, present[f.path])
        for f in manifest.files
        if f.path in present and present[f.path] != f.size
    ]
    to_read = [f for f in manifest.files if f.path in present and present[f.path] == f.size]

    def one(path: str) -> tuple[str, int] | None:
        try:
            return _sha256(storage, path)
        except ObjectNotFoundError:
            return None

    wrong_hash: list[str] = []
    if to_read:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="tidbops-read-back") as pool:
            results = list(pool.map(lambda f: one(f.path), to_read))
        for f, got in zip(to_read, results, strict=True):
            if got is None:
                missing.append(f.path)
                continue
            digest, size = got
            if size != f.size:
                wrong_size.append(SizeMismatch(f.path, f.size, size))
            elif f.sha256 and digest != f.sha256:
                wrong_hash.append(f.path)
    return VerifyResult(
        backup_id=manifest.id,
        storage_uri=storage.uri,
        checked_files=len(manifest.files),
        checked_bytes=manifest.total_bytes,
        hashes_checked=bool(manifest.files) and all(f.sha256 for f in manifest.files),
        backupmeta_present=BACKUPMETA in listed and BACKUPMETA in present and BACKUPMETA not in missing,
        missing=tuple(missing),
        wrong_size=tuple(wrong_size),
        wrong_hash=tuple(wrong_hash),
        unexpected=tuple(sorted(set(present) - listed)),
    )


def check_files(backup: BackupRecord, open_storage: OpenStorage, *, workers: int = 8) -> tuple[bool, str]:
    """Tier 1 of one backup: ``(ok, detail)``. Raises ``StorageError`` when the storage does not answer."""
    storage = open_storage(backup.storage_uri)
    try:
        manifest = read_manifest(storage)
    except ManifestError as exc:
        return False, f"cannot verify: {exc}"
    if manifest.id != backup.id:
        return False, f"{storage.uri}/{MANIFEST_NAME} describes backup {manifest.id}, not {backup.id}"
    result = read_back(storage, manifest, workers=workers)
    return result.ok, "read back: " + result.summary()


def verify_files(
    catalog: Catalog,
    cluster: str,
    open_storage: OpenStorage,
    *,
    backups: Iterable[BackupRecord] | None = None,
    workers: int = 8,
) -> TierReport:
    """Tier 1 for every retained backup of ``cluster`` (or those given), each result recorded.

    ``open_storage(uri)`` gives the ``Storage`` of a backup's directory (the catalog's ``storage_uri``).
    """
    chosen = retained_backups(catalog, cluster) if backups is None else list(backups)
    checks: list[BackupCheck] = []
    skipped: list[tuple[str, str]] = []
    for backup in chosen:
        if backup.status is not RETAINED:
            skipped.append((backup.id, f"{backup.status.value}, not a retained backup"))
            continue
        try:
            ok, detail = check_files(backup, open_storage, workers=workers)
        except StorageError as exc:
            detail = f"storage did not answer: {redact(str(exc), ())}"
            log.warning("backup %s: tier 1 not run: %s", backup.id, detail)
            checks.append(BackupCheck(backup.id, backup.cluster, TIER_FILES, False, detail, recorded=False))
            continue
        check = _record(catalog, backup, TIER_FILES, ok, detail)
        log.info("%s", check.line())
        checks.append(check)
    return TierReport(cluster, TIER_FILES, tuple(checks), tuple(skipped))


# ------------------------------------------------------------------------------------------- tier 2


def passed_at_tier(catalog: Catalog, cluster: str, since: datetime, tier: int = TIER_BR_CHECKSUM) -> set[str]:
    """Ids of ``cluster``'s backups with a passed verification at ``tier`` or higher since ``since``."""
    events = catalog.list_events(cluster=cluster, kind="backup.verified", since=since, limit=1_000_000)
    passed: set[str] = set()
    for event in events:
        details = event.details or {}
        level = details.get("tier")
        if event.backup_id and isinstance(level, int) and level >= tier and details.get("ok", True):
            passed.add(event.backup_id)
    return passed


def due_for_br_checksum(
    catalog: Catalog,
    cluster: str,
    now: datetime,
    *,
    every: timedelta = BR_CHECKSUM_EVERY,
    backups: Iterable[BackupRecord] | None = None,
) -> tuple[list[BackupRecord], list[tuple[str, str]]]:
    """``(due, not checked with the reason)``: a retained backup is due for tier 2 when no verification
    at tier ≥ 2 passed for it in the last ``every``; a backup whose last check failed is not checked
    (tier 1 has said what is wrong; BR would only repeat it)."""
    chosen = retained_backups(catalog, cluster) if backups is None else list(backups)
    since = utc(now, "now") - every
    recent = passed_at_tier(catalog, cluster, since)
    due: list[BackupRecord] = []
    skipped: list[tuple[str, str]] = []
    for backup in chosen:
        if backup.status is not RETAINED:
            skipped.append((backup.id, f"{backup.status.value}, not a retained backup"))
        elif backup.id in recent:
            skipped.append((backup.id, f"tier ≥ 2 passed within the last {every.days} day(s)"))
        elif backup.verify_failed:
            skipped.append((backup.id, f"its last verification failed: {(backup.verify_detail or '')[:200]}"))
        else:
            due.append(backup)
    return due, skipped


def verify_br_checksum(
    catalog: Catalog,
    session: BRSessionLike,
    backups: Iterable[BackupRecord],
    *,
    skipped: Iterable[tuple[str, str]] = (),
    root: Storage | None = None,
    run: RunProcess | None = None,
    timeout: float | None = None,
    log_dir: str | None = None,
    on_line: runner.LineSink | None = None,
    on_start: Callable[[Any], None] | None = None,
) -> TierReport:
    """Tier 2: ``br debug checksum`` over each of ``backups`` (see ``due_for_br_checksum``), one BR at a
    time, each verdict recorded.

    ``session`` carries the storage-resolved cluster, BR's environment (S3 keys) and the crypter key file.
    ``root`` (the cluster's storage root), when given, is listed first: a storage that does not answer
    stops the tier before BR runs, with nothing recorded. Each run gets its own ``--log-file`` (kept when
    the check fails, removed when it passes). A BR that times out or cannot start records nothing.
    BR runs through ``run`` when given (a fake BR in tests), else through the session's BR runner
    (``BRHook.session`` gives the cluster's; ``LocalRunner`` without one).
    """
    cluster = session.cluster
    if root is not None:
        try:
            root.list_dirs("")
        except StorageError as exc:
            raise VerificationError(
                f"cluster {cluster.name}: the backup storage does not answer ({exc}); tier 2 not run, nothing recorded"
            ) from exc
    if cluster.br.encryption is not None and not session.key_file:
        raise VerificationError(
            f"cluster {cluster.name} encrypts its backups ({cluster.br.encryption.method}): BR needs the key "
            "as a file to read them; tier 2 not run, nothing recorded"
        )
    checks: list[BackupCheck] = []
    for backup in backups:
        log_file = runner.log_file(cluster.name, "checksum", log_dir)
        try:
            argv = debug_checksum_argv(
                cluster, storage_uri=backup.storage_uri, log_file=log_file, crypter_key_file=session.key_file
            )
        except BRRequestError:
            Path(log_file).unlink(missing_ok=True)
            raise
        try:
            if run is not None:
                proc: runner.ProcessResult | BRRun = run(
                    argv, timeout=timeout or cluster.br.timeout, env=session.env, on_line=on_line, on_start=on_start
                )
            else:
                proc = runner.runner_of(session).run(
                    argv,
                    replace(runner.as_session(session), log_file=log_file),
                    timeout=timeout or cluster.br.timeout,
                    on_line=on_line,
                    on_start=on_start,
                )
        except runner.BRTimeoutError as exc:
            detail = f"{exc}; BR log {log_file}"
            checks.append(BackupCheck(backup.id, backup.cluster, TIER_BR_CHECKSUM, False, detail, recorded=False))
            log.warning("backup %s: tier 2 not finished: %s", backup.id, detail)
            continue
        text = redact(proc.stdout + "\n" + proc.stderr_tail, session.secrets)
        verdict = parse_debug_checksum(text, proc.exit_code)
        detail = "br debug checksum: " + verdict.reason()
        if verdict.ok:
            Path(log_file).unlink(missing_ok=True)
        else:
            detail += f"; BR log {log_file}"
        check = _record(catalog, backup, TIER_BR_CHECKSUM, verdict.ok, detail)
        log.info("%s", check.line())
        checks.append(check)
    return TierReport(cluster.name, TIER_BR_CHECKSUM, tuple(checks), tuple(skipped))


# ------------------------------------------------------------------------------------------ coverage


@dataclass(frozen=True)
class Coverage:
    """Retained backups, and how many of them passed a verification at tier ≥ 1 within the window."""

    retained: int
    verified: int

    @property
    def percent(self) -> float | None:
        """``None`` when nothing is retained (there is nothing to verify)."""
        return None if self.retained == 0 else round(100.0 * self.verified / self.retained, 1)

    def text(self) -> str:
        pct = "n/a" if self.percent is None else f"{self.percent:g}%"
        return f"{self.verified}/{self.retained} ({pct})"

    def to_dict(self) -> dict[str, Any]:
        return {"retained": self.retained, "verified": self.verified, "percent": self.percent}


@dataclass(frozen=True)
class CoverageReport:
    window: timedelta
    clusters: dict[str, Coverage]
    fleet: Coverage

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_s": int(self.window.total_seconds()),
            "min_tier": TIER_FILES,
            "fleet": self.fleet.to_dict(),
            "clusters": {name: c.to_dict() for name, c in self.clusters.items()},
        }


def verified_recently(backup: BackupRecord, since: datetime) -> bool:
    """Verified now, at tier ≥ 1, by a check at or after ``since``."""
    return (
        backup.verified
        and (backup.verified_tier or 0) >= TIER_FILES
        and backup.verified_at is not None
        and utc(backup.verified_at, "verified_at") >= since
    )


def coverage(
    backups: Iterable[BackupRecord],
    now: datetime,
    *,
    clusters: Sequence[str] = (),
    window: timedelta = COVERAGE_WINDOW,
) -> CoverageReport:
    """The share of retained backups verified at tier ≥ 1 in the last 24 h, per cluster and for the fleet.

    ``clusters`` are listed even with no retained backup (their percent is ``None``)."""
    since = utc(now, "now") - window
    counts: dict[str, list[int]] = {name: [0, 0] for name in clusters}
    for b in backups:
        if b.status is not RETAINED:
            continue
        pair = counts.setdefault(b.cluster, [0, 0])
        pair[0] += 1
        pair[1] += verified_recently(b, since)
    per = {name: Coverage(r, v) for name, (r, v) in counts.items()}
    fleet = Coverage(sum(c.retained for c in per.values()), sum(c.verified for c in per.values()))
    return CoverageReport(window, per, fleet)


class BackupsFailedVerification(TiDBOpsError):
    """One or more backups failed a verification tier (each named, one line each)."""


def raise_for_failures(report: TierReport, *, max_lines: int = 20) -> None:
    """``BackupsFailedVerification`` naming every failed backup (up to ``max_lines``) when ``report`` failed."""
    failures = report.failures
    if not failures:
        return
    lines = [f.line() for f in failures[:max_lines]]
    if len(failures) > max_lines:
        lines.append(f"… and {len(failures) - max_lines} more")
    raise BackupsFailedVerification(report.summary() + "\n" + "\n".join(lines))
