"""`tidbops verify [--cluster X] [--tier N] [--json]`: verify retained backups now, as the verify DAG does.

Tier 1 reads every file of every retained backup back from storage (sizes, SHA-256 where the manifest
records one); tier 2 runs ``br debug checksum`` here (the cluster's ``br.path``) on the backups that are
due (no tier ≥ 2 pass in the last 7 days). Without ``--tier``, both. Every verdict goes into the
catalog (``tidbops.verification`` says what is recorded and what is not). Tier 3 is a restore drill:
the ``tidb_restore_drill`` DAG runs it.

Credentials stay out of argv: S3 keys come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or
boto3's usual chain; BR inherits the environment), the endpoint from ``--s3-endpoint``,
``$TIDBOPS_S3_ENDPOINT`` or the fleet config. An encrypted cluster's tier 2 needs ``--crypter-key-file``:
a file only its owner can read, holding the hex key (BR gets the path, never the key).

Output: a summary line per cluster and tier, then the fleet's tier ≥ 1 coverage of the last 24 h; each
failure is one ``error:`` line on stderr naming the backup and what is wrong.

Exit codes: 0 every check passed; 1 a check failed or could not run, or the config or catalog could not
be used; 2 bad usage.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tidbops.br.errors import BRRequestError
from tidbops.br.runner import BRSession
from tidbops.catalog.store import Catalog
from tidbops.cli.catalog_cmd import CatalogURL, _open_catalog, checked_endpoint, open_storage
from tidbops.cli.options import ClusterS3Endpoint, FleetConfigPath
from tidbops.config import ClusterConfig, load_fleet
from tidbops.errors import ConfigError, UnknownClusterError
from tidbops.storage import Storage, StorageError
from tidbops.verification import (
    TIER_BR_CHECKSUM,
    TIER_DRILL,
    TIER_FILES,
    OpenStorage,
    TierReport,
    VerificationError,
    coverage,
    due_for_br_checksum,
    verify_br_checksum,
    verify_files,
)


@dataclass(frozen=True)
class _Problem:
    cluster: str
    tier: int
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "tier": self.tier, "error": self.error}


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _key_file(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError as exc:
        raise _usage(f"--crypter-key-file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _usage(f"--crypter-key-file {path}: not a regular file")
    if st.st_mode & 0o077:
        raise _usage(f"--crypter-key-file {path}: readable by others (mode {st.st_mode & 0o777:o}); chmod 600 it")
    return str(path)


def _storage_opener(cluster: ClusterConfig, endpoint: str | None) -> tuple[OpenStorage, ClusterConfig]:
    """``open_storage(uri)`` for this cluster's backups, and the cluster with the endpoint BR should use."""
    chosen = endpoint or cluster.storage.endpoint
    if chosen != cluster.storage.endpoint:
        cluster = cluster.model_copy(update={"storage": cluster.storage.model_copy(update={"endpoint": chosen})})

    def opener(uri: str) -> Storage:
        return open_storage(uri, chosen, cluster.storage.region)

    return opener, cluster


def _secrets() -> tuple[str, ...]:
    return tuple(v for k in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if (v := os.environ.get(k)))


def _tier2(cat: Catalog, cluster: ClusterConfig, open_storage: Any, key_file: str | None, now: datetime) -> TierReport:
    if cluster.br.encryption is not None and cluster.br.encryption.owner_key:
        raise VerificationError(
            f"cluster {cluster.name} backs up with owner-held keys: each backup has its own data key, which only "
            "the owner's private key opens; tier 2 is not run (drills restore and check those backups)"
        )
    if cluster.br.encryption is not None and key_file is None:
        raise VerificationError(
            f"cluster {cluster.name} encrypts its backups ({cluster.br.encryption.method}): pass --crypter-key-file, "
            "a file only you can read holding the hex key"
        )
    due, skipped = due_for_br_checksum(cat, cluster.name, now)
    session = BRSession(
        cluster=cluster,
        env={},
        key_file=key_file if cluster.br.encryption is not None else None,
        log_file="",
        secrets=_secrets(),
    )
    root = open_storage(cluster.storage.uri) if due else None
    return verify_br_checksum(cat, session, due, skipped=skipped, root=root)


def verify_cmd(
    cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster", show_default=False)] = None,
    tier: Annotated[
        int | None,
        typer.Option("--tier", help="1: read every file back; 2: br debug checksum (due weekly). Default: both"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    config: FleetConfigPath = None,
    catalog: CatalogURL = None,
    s3_endpoint: ClusterS3Endpoint = None,
    crypter_key_file: Annotated[
        Path | None,
        typer.Option("--crypter-key-file", help="Tier 2 of an encrypted cluster: a 0600 file holding the hex key"),
    ] = None,
) -> None:
    """Verify retained backups now: tier 1 (files read back) and tier 2 (br debug checksum, when due)."""
    if tier == TIER_DRILL:
        raise _usage("tier 3 is a restore drill: run the tidb_restore_drill__<cluster> DAG")
    if tier is not None and tier not in (TIER_FILES, TIER_BR_CHECKSUM):
        raise _usage(f"--tier is 1 or 2, not {tier}")
    tiers = (tier,) if tier is not None else (TIER_FILES, TIER_BR_CHECKSUM)
    endpoint = checked_endpoint(s3_endpoint)
    key_file = _key_file(crypter_key_file) if TIER_BR_CHECKSUM in tiers else None
    try:
        fleet = load_fleet(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        clusters = [fleet.get(cluster)] if cluster else fleet.sources()
    except UnknownClusterError as exc:
        raise _usage(str(exc)) from None
    reports: list[TierReport] = []
    problems: list[_Problem] = []
    with _open_catalog(catalog) as cat:
        for chosen in clusters:
            open_storage, resolved = _storage_opener(chosen, endpoint)
            for level in tiers:
                try:
                    if level == TIER_FILES:
                        reports.append(verify_files(cat, resolved.name, open_storage))
                    else:
                        reports.append(_tier2(cat, resolved, open_storage, key_file, datetime.now(UTC)))
                except (VerificationError, BRRequestError, StorageError, OSError) as exc:
                    problems.append(_Problem(resolved.name, level, str(exc)))
        figure = coverage(cat.list_backups(), datetime.now(UTC), clusters=[c.name for c in clusters])
    ok = not problems and all(r.ok for r in reports)
    if as_json:
        doc = {
            "ok": ok,
            "reports": [r.to_dict() for r in reports],
            "errors": [p.to_dict() for p in problems],
            "coverage": figure.to_dict(),
        }
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for report in reports:
            typer.echo(report.summary())
        typer.echo(f"fleet: verified at tier >= 1 in the last 24 h: {figure.fleet.text()}")
        for report in reports:
            for failure in report.failures:
                typer.echo(f"error: {failure.line()}", err=True)
        for problem in problems:
            typer.echo(f"error: cluster {problem.cluster}, tier {problem.tier} not run: {problem.error}", err=True)
    raise typer.Exit(0 if ok else 1)
