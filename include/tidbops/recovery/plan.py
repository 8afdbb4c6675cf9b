"""What a restore restores: its BR steps (a snapshot chain, or one PITR step) and their BR command lines.

``RecoveryPlan`` is what a drill's plan (``tidbops.drill.DrillPlan``) and an on-demand restore's
(``tidbops.restore.RestorePlan``) have in common: from which cluster into which, to which point, through
which steps, limited to which tables. Each front door adds its own fields and says how its clusters are
checked again when a step runs (``clusters``). ``plan_argvs`` turns any plan into BR command lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from tidbops import tso
from tidbops.br.command import restore_full_argv, restore_point_argv
from tidbops.catalog.records import BackupKind, BackupRecord, index
from tidbops.config import ClusterConfig, TLSConfig
from tidbops.recovery.errors import RecoveryError
from tidbops.timefmt import iso

RestoreMode = Literal["snapshot", "pitr"]
StepKind = Literal["full", "incremental", "point"]


@dataclass(frozen=True)
class RestoreStep:
    """One BR restore: a chain link (``full``/``incremental``), or the PITR (``point``, whose
    ``backup_id``/``storage_uri`` are the full backup it starts from)."""

    kind: StepKind
    backup_id: str
    storage_uri: str
    backup_ts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "backup_id": self.backup_id,
            "storage_uri": self.storage_uri,
            "backup_ts": self.backup_ts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RestoreStep:
        kind = str(d["kind"])
        if kind not in ("full", "incremental", "point"):
            raise ValueError(f"restore step kind {kind!r} is not full, incremental or point")
        return cls(kind, str(d["backup_id"]), str(d["storage_uri"]), int(d["backup_ts"]))  # type: ignore[arg-type]


def chain_steps(backups: Sequence[BackupRecord], chain: Sequence[str]) -> tuple[RestoreStep, ...]:
    """The restore steps of a snapshot chain (``tidbops.pitr.SnapshotPoint.chain``: backup ids, full first)."""
    by_id = index(backups)
    return tuple(
        RestoreStep(
            "full" if by_id[i].kind is BackupKind.FULL else "incremental",
            i,
            by_id[i].storage_uri,
            int(by_id[i].backup_ts or 0),
        )
        for i in chain
    )


def plan_dir(cluster: str, kind: str, plan_id: str) -> str:
    """Where a restore's reports and Data Docs live, below its source's storage root:
    ``<cluster>/drills/<drill id>``, ``<cluster>/restores/<restore id>``."""
    return f"{cluster}/{kind}s/{plan_id}"


def parse_time(value: Any) -> datetime:
    """A time as ``to_dict`` wrote it (ISO text, ``Z`` or an offset), or already a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True, kw_only=True)
class RecoveryPlan:
    """What a restore restores, and to which point. The front doors extend it (``DrillPlan``,
    ``RestorePlan``) with what only they have, and a JSON round trip for XCom."""

    plan_id: str
    source: str
    target: str
    mode: RestoreMode
    restore_ts: int
    steps: tuple[RestoreStep, ...]
    log_storage_uri: str | None = None
    tables: tuple[str, ...] = ()  # BR table filters; none: the whole cluster

    kind: ClassVar[str] = "restore"  # what logs and messages call it: "drill", "restore"

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"{self.kind} {self.plan_id}: a plan restores at least one backup")
        if self.mode == "pitr" and (self.log_storage_uri is None or [s.kind for s in self.steps] != ["point"]):
            raise ValueError(f"{self.kind} {self.plan_id}: a PITR plan is one 'point' step and has a log storage")
        if self.mode == "snapshot" and any(s.kind == "point" for s in self.steps):
            raise ValueError(f"{self.kind} {self.plan_id}: a snapshot plan restores chain links only")

    @property
    def restore_time(self) -> datetime:
        return tso.to_datetime(self.restore_ts)

    @property
    def backups_used(self) -> tuple[str, ...]:
        return tuple(s.backup_id for s in self.steps)

    @property
    def directory(self) -> str:
        """Its reports and Data Docs, below the source's storage root (``plan_dir``)."""
        return plan_dir(self.source, self.kind, self.plan_id)

    @property
    def dry_run(self) -> bool:
        """Only planned: nothing restores it."""
        return False

    @property
    def validate_after(self) -> bool:
        """Whether the restored data is compared with the source."""
        return True

    def clusters(self, clusters: Mapping[str, ClusterConfig]) -> tuple[ClusterConfig, ClusterConfig]:
        """The plan's source and target from the fleet config as it is now, checked again (the config may
        have changed since the plan was made); raises when the plan no longer holds."""
        raise NotImplementedError

    def common_dict(self) -> dict[str, Any]:
        """The JSON of the fields every plan has (``common_fields`` reads it back)."""
        return {
            "target": self.target,
            "mode": self.mode,
            "restore_ts": self.restore_ts,
            "restore_time": iso(self.restore_time),
            "steps": [s.to_dict() for s in self.steps],
            "log_storage_uri": self.log_storage_uri,
        }

    @staticmethod
    def common_fields(d: Mapping[str, Any]) -> dict[str, Any]:
        """The fields every plan has, from its JSON; ``ValueError`` for a mode that is neither."""
        mode = str(d["mode"])
        if mode not in ("snapshot", "pitr"):
            raise ValueError(f"restore mode {mode!r} is not snapshot or pitr")
        return {
            "target": str(d["target"]),
            "mode": mode,
            "restore_ts": int(d["restore_ts"]),
            "steps": tuple(RestoreStep.from_dict(s) for s in d["steps"]),
            "log_storage_uri": d.get("log_storage_uri"),
        }


def plan_argvs(
    plan: RecoveryPlan,
    *,
    source: ClusterConfig,
    target: ClusterConfig,
    log_file: str | None = None,
    crypter_key_file: str | None = None,
    key_files: Mapping[str, str] | None = None,
    log_key_file: str | None = None,
) -> list[list[str]]:
    """The BR command lines of the plan, in order (``br restore full`` per chain link, or one ``br restore
    point``), into ``target``, reading ``source``'s backups (its storage options and encryption; the key
    through ``crypter_key_file``, never argv; an owner-key source's per-backup keys through ``key_files``,
    by backup id), limited to the plan's tables."""
    if plan.source != source.name or plan.target != target.name:
        raise RecoveryError(f"the plan is {plan.source} → {plan.target}, not {source.name} → {target.name}")
    return step_argvs(
        plan.steps,
        restore_ts=plan.restore_ts,
        log_storage_uri=plan.log_storage_uri,
        target=target,
        source=source,
        filters=plan.tables,
        log_file=log_file,
        crypter_key_file=crypter_key_file,
        key_files=key_files,
        log_key_file=log_key_file,
    )


def step_argvs(
    steps: Sequence[RestoreStep],
    *,
    restore_ts: int,
    log_storage_uri: str | None,
    target: ClusterConfig,
    source: ClusterConfig,
    filters: Sequence[str] = (),
    log_file: str | None = None,
    crypter_key_file: str | None = None,
    key_files: Mapping[str, str] | None = None,
    log_key_file: str | None = None,
) -> list[list[str]]:
    """The BR command lines restoring ``steps`` (one ``point`` step: PITR to ``restore_ts`` from its full
    backup and ``log_storage_uri``; else chain links, in order) into ``target``, reading ``source``'s
    backups, limited to the BR table ``filters`` (none: everything). ``key_files`` (owner-key sources,
    #17): each backup's own key file, by backup id, instead of the one ``crypter_key_file``; ``log_key_file``:
    the owner-key log key of a PITR (``--log.crypter.*``)."""

    def key_file(step: RestoreStep) -> str | None:
        if key_files is None:
            return crypter_key_file
        if crypter_key_file is not None:
            raise RecoveryError("give one crypter key file, or one key file per backup, not both")
        if step.backup_id not in key_files:
            raise RecoveryError(f"no data key file for backup {step.backup_id}")
        return key_files[step.backup_id]

    if [s.kind for s in steps] == ["point"]:
        if log_storage_uri is None:
            raise RecoveryError("a PITR restore needs the source's log storage")
        return [
            restore_point_argv(
                target,
                log_storage_uri=log_storage_uri,
                full_backup_storage_uri=steps[0].storage_uri,
                restored_ts=restore_ts,
                filters=filters,
                source=source,
                log_file=log_file,
                crypter_key_file=key_file(steps[0]),
                log_crypter_key_file=log_key_file,
            )
        ]
    if log_key_file is not None:
        raise RecoveryError("a log key file only applies to a PITR restore (one 'point' step)")
    if any(s.kind == "point" for s in steps):
        raise RecoveryError("a PITR restore is one 'point' step")
    return [
        restore_full_argv(
            target,
            storage_uri=s.storage_uri,
            filters=filters,
            source=source,
            log_file=log_file,
            crypter_key_file=key_file(s),
        )
        for s in steps
    ]


def shown_pems(cluster: ClusterConfig) -> ClusterConfig:
    """``cluster`` for command lines that are only shown (a plan): TLS PEMs held by a connection
    (``tls.conn_id``) are written to files only when BR runs, so the plan names placeholders for them."""
    if cluster.tls is None or cluster.tls.conn_id is None:
        return cluster
    placeholders = TLSConfig.model_construct(
        ca="<tls ca file>", cert="<tls cert file>", key="<tls key file>", conn_id=None
    )
    return cluster.model_copy(update={"tls": placeholders})
