"""BR commands as TiDB Operator v1 resources: our argv → a ``Backup``/``Restore`` (or a change to the log
``Backup``), and a resource's ``status`` → the ``BROutcome`` / log task status our BR parser gives.

Pure (no Airflow, no Kubernetes client): ``tidbops_airflow.runners.tidb_operator`` creates, patches, reads and
deletes what this module describes. The argv is always what ``tidbops.br.command`` builds; it is read back
(``read_argv``) and mapped field by field onto ``pingcap.com/v1alpha1`` (TiDB Operator v1.6 CRDs):

* ``br backup full [--lastbackupts N]`` → ``Backup`` (``backupMode: snapshot``, ``backupType: full``);
* ``br log start`` → a log ``Backup`` (``backupMode: log``, ``logSubcommand: log-start``, ``commitTs`` = start);
  ``log pause|resume|stop`` → ``logSubcommand`` ``log-pause``/``log-start``/``log-stop`` on it;
  ``log truncate --until T`` → its ``logTruncateUntil``; ``log status`` → its ``status`` read back;
* ``br restore full|db|table`` → ``Restore`` (snapshot); ``br restore point`` → ``Restore`` (``restoreMode: pitr``,
  ``pitrRestoredTs``, ``pitrFullBackupStorageProvider``).

What the operator fills in itself is dropped from the argv: ``--pd`` and ``--ca/--cert/--key`` (it knows the
TidbCluster and its TLS), ``--log-file``. Flags the CRD has no field for go into ``spec.br.options``
(``--compression``, ``--lastbackupts``, ``--crypter.*``; the key file is the crypter Secret mounted into the BR pod).
What no resource expresses (``br log metadata``, ``br debug``, ``br -V``, ``log truncate --dry-run``,
``log pause --gc-ttl``) raises ``NotExpressible``: the runner runs it as a pod instead. Every resource is
``cleanPolicy: Retain``: deleting it never deletes backup data (our retention does that).

Names are deterministic: ``attempt`` (the task's identity, same on a retry) plus the resource's spec hash, so a
retried task finds and adopts its own earlier resource instead of creating a second one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from tidbops.br.errors import BRRequestError
from tidbops.br.output import BRErrorInfo, BROutcome, parse_br_output, parse_go_duration
from tidbops.config import ClusterConfig, TiDBOperatorConfig

GROUP = "pingcap.com"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MANAGED_BY = "tidbops"
LABEL_CLUSTER = "tidbops.io/cluster"
LABEL_LOG_TASK = "tidbops.io/log-task"
LABEL_ATTEMPT = "tidbops.io/attempt"
ANNOTATION_TASK = "tidbops.io/log-task-name"  # the task's exact name (a label value may be shortened)
CRYPTER_MOUNT = "/var/lib/tidbops/crypter"
CRYPTER_VOLUME = "tidbops-crypter"

Kind = Literal["Backup", "Restore"]
PLURALS: dict[str, str] = {"Backup": "backups", "Restore": "restores"}

# flags whose value is the next argument (everything else our builders write is --flag=value or a switch)
_VALUED = frozenset(
    {
        "--pd", "--ca", "--cert", "--key", "--storage", "--full-backup-storage", "--backupts", "--lastbackupts",
        "--ratelimit", "--concurrency", "--compression", "--s3.endpoint", "--s3.region", "--s3.sse",
        "--s3.sse-kms-key-id", "--crypter.method", "--crypter.key-file", "--log-file", "--db", "--table",
        "--start-ts", "--restored-ts", "--task-name", "--gc-ttl", "--until", "-f", "--filter",
    }
)  # fmt: skip
_SWITCHES = frozenset({"-y", "--yes", "--json", "--dry-run"})
_DROPPED = frozenset({"--pd", "--ca", "--cert", "--key", "--log-file", "-y", "--yes", "--json"})
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")


class NotExpressible(BRRequestError):
    """A BR command no TiDB Operator resource expresses; it runs as a BR pod (``br.kubernetes``) instead."""


class Goal(Enum):
    """What makes a resource's run finished."""

    COMPLETE = "Complete"  # a snapshot Backup or a Restore
    LOG_RUNNING = "log-start"  # started, or resumed
    LOG_PAUSED = "log-pause"
    LOG_STOPPED = "log-stop"
    LOG_TRUNCATED = "log-truncate"


@dataclass(frozen=True)
class ReadArgv:
    """An argv of ours read back: the command words, each flag's value (the last one given), the filters."""

    words: tuple[str, ...]
    flags: Mapping[str, str]
    switches: frozenset[str]
    filters: tuple[str, ...]

    def tso(self, flag: str) -> int | None:
        value = self.flags.get(flag)
        if value is None:
            return None
        if not value.isdigit():
            raise BRRequestError(f"{flag} {value!r} is not a TSO")
        return int(value)

    def boolean(self, flag: str) -> bool | None:
        value = self.flags.get(flag)
        return None if value is None else value == "true"


def read_argv(argv: Sequence[str]) -> ReadArgv:
    """Read an argv built by ``tidbops.br.command`` (``br`` first). Unknown flags raise ``NotExpressible``:
    a flag dropped silently would change what BR does."""
    if not argv or isinstance(argv, str):
        raise BRRequestError("argv must be a non-empty list of arguments")
    words: list[str] = []
    flags: dict[str, str] = {}
    switches: set[str] = set()
    filters: list[str] = []
    args = list(argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            if flags or switches or filters:
                raise BRRequestError(f"stray argument {arg!r} after the flags")
            words.append(arg)
        elif arg in _SWITCHES:
            switches.add(arg)
        elif "=" in arg and arg.startswith("--"):
            name, _, value = arg.partition("=")
            flags[name] = value
        elif arg in _VALUED:
            if i + 1 >= len(args):
                raise BRRequestError(f"{arg} has no value")
            i += 1
            if arg in ("-f", "--filter"):
                filters.append(args[i])
            else:
                flags[arg] = args[i]
        else:
            raise NotExpressible(f"`{arg}` has no TiDB Operator field; run this command as a pod")
        i += 1
    if words[:1] == ["-V"] or "-V" in argv or "--version" in argv:
        raise NotExpressible("br -V has no TiDB Operator resource")
    return ReadArgv(tuple(words), flags, frozenset(switches), tuple(filters))


# ----------------------------------------------------------------------------------------- naming


def _slug(text: str, limit: int) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return s[:limit].rstrip("-") or "x"


def _digest(*parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def label_value(text: str) -> str:
    """``text`` as a label value (≤ 63 of ``[A-Za-z0-9_.-]``, alphanumeric at both ends); a long or changed
    one keeps a digest so two never collide."""
    clean = _LABEL_VALUE.sub("-", text).strip("-_.")
    if clean == text and len(clean) <= 63:
        return clean
    return f"{clean[:52].rstrip('-_.')}-{_digest(text)}".lstrip("-_.")


def resource_name(prefix: str, cluster: str, attempt: str, spec: Mapping[str, Any]) -> str:
    """``tidbops-<prefix>-<cluster>-<digest>``: the same for the same task attempt and spec (a retry finds it),
    ≤ 52 characters so TiDB Operator's Job (``backup-<name>``) and its labels stay valid."""
    return f"tidbops-{prefix}-{_slug(cluster, 24)}-{_digest(attempt, spec)}"


# ------------------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Plan:
    """What one BR command becomes.

    ``op`` ``create``: ``manifest`` is the whole resource, named ``name`` (adopt it if it exists).
    ``op`` ``patch``: ``patch`` is a JSON merge patch for the log ``Backup`` found by ``selector``.
    ``op`` ``read``: the log ``Backup`` (s) found by ``selector`` are read for ``br log status``.
    """

    op: Literal["create", "patch", "read"]
    kind: Kind
    namespace: str
    goal: Goal | None
    command: str
    name: str | None = None
    manifest: dict[str, Any] | None = None
    patch: dict[str, Any] | None = None
    selector: Mapping[str, str] = field(default_factory=dict)
    until: int | None = None

    @property
    def plural(self) -> str:
        return PLURALS[self.kind]

    @property
    def label_selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))


def operator_config(cluster: ClusterConfig) -> TiDBOperatorConfig:
    cfg = cluster.br.tidb_operator
    if cfg is None:
        raise BRRequestError(f"cluster {cluster.name!r}: br.tidb_operator is not set (runner tidb-operator)")
    return cfg


def _labels(cluster: ClusterConfig, attempt: str | None = None, task: str | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/managed-by": MANAGED_BY, LABEL_CLUSTER: label_value(cluster.name)}
    if task is not None:
        labels[LABEL_LOG_TASK] = label_value(task)
    if attempt is not None:
        labels[LABEL_ATTEMPT] = label_value(attempt)
    return labels


def _s3(uri: str | None, read: ReadArgv, cfg: TiDBOperatorConfig, flag: str = "--storage") -> dict[str, Any]:
    if not uri:
        raise BRRequestError(f"{flag} is missing")
    if not uri.startswith("s3://"):
        raise BRRequestError(
            f"{flag} {uri!r}: the tidb-operator runner writes to S3 (s3://bucket/prefix) only; "
            "use runner local or kubernetes for other storage"
        )
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.split("?", 1)[0].strip("/")
    if not bucket:
        raise BRRequestError(f"{flag} {uri!r} names no bucket")
    s3: dict[str, Any] = {"provider": cfg.s3_provider, "bucket": bucket}
    if prefix:
        s3["prefix"] = prefix
    if "--s3.endpoint" in read.flags:
        s3["endpoint"] = read.flags["--s3.endpoint"]
    if "--s3.region" in read.flags:
        s3["region"] = read.flags["--s3.region"]
    if "--s3.sse" in read.flags:
        s3["sse"] = read.flags["--s3.sse"]
    if "--s3.sse-kms-key-id" in read.flags:
        s3["options"] = [f"--s3.sse-kms-key-id={read.flags['--s3.sse-kms-key-id']}"]
    if cfg.storage_secret_name:
        s3["secretName"] = cfg.storage_secret_name
    return s3


def _crypter(read: ReadArgv, cfg: TiDBOperatorConfig, cluster: ClusterConfig) -> tuple[list[str], dict[str, Any]]:
    """The crypter flags as options reading the mounted Secret, and the volume that mounts it."""
    method = read.flags.get("--crypter.method")
    if method is None:
        return [], {}
    if cfg.crypter_secret_name is None:
        raise BRRequestError(
            f"cluster {cluster.name!r}: the backup is encrypted but br.tidb_operator.crypter_secret_name is not set"
        )
    options = [f"--crypter.method={method}", f"--crypter.key-file={CRYPTER_MOUNT}/key"]
    volumes = {
        "additionalVolumes": [
            {"name": CRYPTER_VOLUME, "secret": {"secretName": cfg.crypter_secret_name, "defaultMode": 0o400}}
        ],
        "additionalVolumeMounts": [{"name": CRYPTER_VOLUME, "mountPath": CRYPTER_MOUNT, "readOnly": True}],
    }
    return options, volumes


def _br_block(cluster: ClusterConfig, cfg: TiDBOperatorConfig, read: ReadArgv, options: list[str]) -> dict[str, Any]:
    br: dict[str, Any] = {"cluster": cfg.tidbcluster, "clusterNamespace": cfg.cluster_namespace or cfg.namespace}
    if "--concurrency" in read.flags:
        br["concurrency"] = int(read.flags["--concurrency"])
    if "--ratelimit" in read.flags:
        br["rateLimit"] = int(read.flags["--ratelimit"])
    if (checksum := read.boolean("--checksum")) is not None:
        br["checksum"] = checksum
    if options:
        br["options"] = options
    return br


def _common(cluster: ClusterConfig, cfg: TiDBOperatorConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    image = cfg.tool_image or (f"pingcap/br:{_v(cluster.br.version)}" if cluster.br.version else None)
    if image:
        spec["toolImage"] = image
    if cfg.service_account:
        spec["serviceAccount"] = cfg.service_account
    return spec


def _v(version: str) -> str:
    return version if version.startswith("v") else f"v{version}"


def _manifest(
    kind: Kind, name: str, namespace: str, labels: Mapping[str, str], spec: dict[str, Any], task: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if task is not None:
        metadata["annotations"] = {ANNOTATION_TASK: task}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def plan(argv: Sequence[str], cluster: ClusterConfig, *, attempt: str, source: ClusterConfig | None = None) -> Plan:
    """The resource (or change) that runs ``argv`` for ``cluster`` through TiDB Operator.

    ``attempt`` names the task attempt independently of its try number (``dag/run/task/map_index``): a retry
    gets the same resource name. ``source`` is the cluster whose backups a restore reads (default ``cluster``):
    its ``br.tidb_operator`` Secrets (storage, crypter) open them, when it has that block. Raises
    ``NotExpressible`` for commands no resource expresses.
    """
    cfg = operator_config(cluster)
    read = read_argv(argv)
    words = read.words
    if words[:2] == ("backup", "full"):
        return _backup(read, cluster, cfg, attempt)
    if words[:1] == ("restore",) and len(words) == 2 and words[1] in ("full", "db", "table", "point"):
        origin = source.br.tidb_operator if source is not None and source.br.tidb_operator is not None else cfg
        secrets = cfg.model_copy(
            update={
                "storage_secret_name": origin.storage_secret_name,
                "crypter_secret_name": origin.crypter_secret_name,
            }
        )
        return _restore(read, cluster, cfg, attempt, secrets)
    if words[:1] == ("log",) and len(words) == 2:
        return _log(read, cluster, cfg, attempt)
    raise NotExpressible(f"`br {' '.join(words)}` has no TiDB Operator resource; run it as a pod")


def _backup(read: ReadArgv, cluster: ClusterConfig, cfg: TiDBOperatorConfig, attempt: str) -> Plan:
    options: list[str] = []
    if "--compression" in read.flags:
        options.append(f"--compression={read.flags['--compression']}")
    for flag in ("--backupts", "--lastbackupts"):
        if (ts := read.tso(flag)) is not None:
            options.append(f"{flag}={ts}")
    crypter, volumes = _crypter(read, cfg, cluster)
    spec: dict[str, Any] = {
        "backupMode": "snapshot",
        "backupType": "full",
        "cleanPolicy": "Retain",
        **_common(cluster, cfg),
        "br": _br_block(cluster, cfg, read, options + crypter),
        "s3": _s3(read.flags.get("--storage"), read, cfg),
        **volumes,
    }
    if read.filters:
        spec["tableFilter"] = list(read.filters)
    incremental = "--lastbackupts" in read.flags
    name = resource_name("incr" if incremental else "full", cluster.name, attempt, spec)
    return Plan(
        op="create",
        kind="Backup",
        namespace=cfg.namespace,
        goal=Goal.COMPLETE,
        command="Full Backup",
        name=name,
        manifest=_manifest("Backup", name, cfg.namespace, _labels(cluster, attempt), spec),
    )


def _restore(
    read: ReadArgv, cluster: ClusterConfig, cfg: TiDBOperatorConfig, attempt: str, secrets: TiDBOperatorConfig
) -> Plan:
    """A ``Restore`` into ``cluster`` (``cfg``), reading the backups with ``secrets``' storage and crypter Secrets."""
    scope = read.words[1]
    options: list[str] = []
    if (sys_table := read.boolean("--with-sys-table")) is not None:
        options.append(f"--with-sys-table={'true' if sys_table else 'false'}")
    crypter, volumes = _crypter(read, secrets, cluster)
    br = _br_block(cluster, cfg, read, [])
    spec: dict[str, Any] = {**_common(cluster, cfg)}
    if scope == "point":
        if (start := read.tso("--start-ts")) is not None:
            options.append(f"--start-ts={start}")
        spec["restoreMode"] = "pitr"
        spec["s3"] = _s3(read.flags.get("--storage"), read, secrets)
        if "--full-backup-storage" in read.flags:
            spec["pitrFullBackupStorageProvider"] = {
                "s3": _s3(read.flags["--full-backup-storage"], read, secrets, "--full-backup-storage")
            }
        if (restored := read.tso("--restored-ts")) is not None:
            spec["pitrRestoredTs"] = str(restored)
        command = "Restore Point"
    else:
        spec["restoreMode"] = "snapshot"
        spec["backupType"] = scope
        if "--db" in read.flags:
            br["db"] = read.flags["--db"]
        if "--table" in read.flags:
            br["table"] = read.flags["--table"]
        spec["s3"] = _s3(read.flags.get("--storage"), read, secrets)
        command = {"full": "Full Restore", "db": "Database Restore", "table": "Table Restore"}[scope]
    if options or crypter:
        br["options"] = options + crypter
    spec["br"] = br
    spec.update(volumes)
    if read.filters:
        spec["tableFilter"] = list(read.filters)
    name = resource_name("pitr" if scope == "point" else "restore", cluster.name, attempt, spec)
    return Plan(
        op="create",
        kind="Restore",
        namespace=cfg.namespace,
        goal=Goal.COMPLETE,
        command=command,
        name=name,
        manifest=_manifest("Restore", name, cfg.namespace, _labels(cluster, attempt), spec),
    )


def _log(read: ReadArgv, cluster: ClusterConfig, cfg: TiDBOperatorConfig, attempt: str) -> Plan:
    sub = read.words[1]
    if sub not in ("status", "start", "pause", "resume", "stop", "truncate"):
        raise NotExpressible(f"`br log {sub}` has no TiDB Operator resource; run it as a pod")
    # truncate names no task (it works on the storage): the log Backup of the cluster's configured task
    task = read.flags.get("--task-name") or (cluster.log_backup.task_name if sub == "truncate" else None)
    selector = _labels(cluster, task=task)
    if sub == "status":
        return Plan(
            op="read", kind="Backup", namespace=cfg.namespace, goal=None, command="log status", selector=selector
        )
    if task is None:
        raise BRRequestError(f"`br log {sub}` needs --task-name")
    if sub == "start":
        spec: dict[str, Any] = {
            "backupMode": "log",
            "logSubcommand": "log-start",
            "cleanPolicy": "Retain",
            **_common(cluster, cfg),
            "br": _br_block(cluster, cfg, read, []),
            "s3": _s3(read.flags.get("--storage"), read, cfg),
        }
        if (start := read.tso("--start-ts")) is not None:
            spec["commitTs"] = str(start)
        name = resource_name("log", cluster.name, attempt, spec)
        return Plan(
            op="create",
            kind="Backup",
            namespace=cfg.namespace,
            goal=Goal.LOG_RUNNING,
            command="log start",
            name=name,
            manifest=_manifest("Backup", name, cfg.namespace, _labels(cluster, attempt, task), spec, task),
            selector=selector,
        )
    if sub in ("pause", "resume", "stop"):
        if "--gc-ttl" in read.flags:
            raise BRRequestError("`br log pause --gc-ttl`: TiDB Operator's log-pause takes no GC TTL")
        subcommand, goal = {
            "pause": ("log-pause", Goal.LOG_PAUSED),
            "resume": ("log-start", Goal.LOG_RUNNING),
            "stop": ("log-stop", Goal.LOG_STOPPED),
        }[sub]
        return Plan(
            op="patch",
            kind="Backup",
            namespace=cfg.namespace,
            goal=goal,
            command=f"log {sub}",
            patch={"spec": {"logSubcommand": subcommand}},
            selector=selector,
        )
    if sub == "truncate":
        if "--dry-run" in read.switches:
            raise NotExpressible("`br log truncate --dry-run` has no TiDB Operator field; run it as a pod")
        until = read.tso("--until")
        if until is None:
            raise BRRequestError("`br log truncate` needs --until")
        return Plan(
            op="patch",
            kind="Backup",
            namespace=cfg.namespace,
            goal=Goal.LOG_TRUNCATED,
            command="log truncate",
            patch={"spec": {"logTruncateUntil": str(until)}},
            selector=selector,
            until=until,
        )
    raise NotExpressible(f"`br log {sub}` has no TiDB Operator resource; run it as a pod")


# ---------------------------------------------------------------------------------------- status

ON_TRACK = frozenset({"Scheduled", "Prepare", "Running", "Paused"})  # a log Backup whose task exists
_FAILED = frozenset({"Failed", "Invalid"})


@dataclass(frozen=True)
class CRState:
    """A resource's run as read from its ``status``: ``finished`` with ``outcome`` (success or failure), or
    still going (``phase`` and ``detail`` for the task log)."""

    finished: bool
    phase: str | None
    detail: str
    outcome: BROutcome | None = None


def _conditions(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = status.get("conditions")
    return [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    found = [c for c in _conditions(status) if c.get("type") == kind and str(c.get("status", "")).lower() == "true"]
    return found[-1] if found else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def where(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', 'resource')} {meta.get('namespace')}/{meta.get('name')}"


def _failure(plan_: Plan, obj: Mapping[str, Any], reason: str, message: str) -> BROutcome:
    text = f"{reason}: {message}" if reason and message else (message or reason or "failed without a reason")
    parsed = parse_br_output(message) if message else None
    code = next((e.code for e in parsed.errors if e.code), None) if parsed else None
    return BROutcome(
        recognised=True,
        command=plan_.command,
        success=False,
        errors=(BRErrorInfo(message=f"{where(obj)} failed: {text}", code=code, source="text"),),
        notes=(where(obj),),
    )


def _failed_condition(status: Mapping[str, Any], plan_: Plan) -> Mapping[str, Any] | None:
    phase = status.get("phase")
    for kind in ("Failed", "Invalid"):
        c = _condition(status, kind)
        if c is not None and (phase in _FAILED or plan_.goal is Goal.COMPLETE):
            return c
    if phase in _FAILED:
        return {"type": phase, "reason": "", "message": ""}
    if plan_.goal is not None and plan_.goal is not Goal.COMPLETE:
        sub = _sub_status(status, plan_.goal.value)
        if sub.get("phase") in _FAILED:
            found = next((c for c in reversed(_conditions(sub)) if c.get("type") == sub.get("phase")), None)
            return found or {"type": sub.get("phase"), "reason": "", "message": ""}
    return None


def _sub_status(status: Mapping[str, Any], command: str) -> Mapping[str, Any]:
    subs = status.get("logSubCommandStatuses")
    sub = subs.get(command) if isinstance(subs, Mapping) else None
    return sub if isinstance(sub, Mapping) else {}


def read_state(plan_: Plan, obj: Mapping[str, Any]) -> CRState:
    """Whether the resource ``obj`` (as the API returned it) finished the run ``plan_`` asked for, and how."""
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    phase = status.get("phase") if isinstance(status.get("phase"), str) else None
    failed = _failed_condition(status, plan_)
    if failed is not None:
        reason, message = str(failed.get("reason") or ""), str(failed.get("message") or "")
        return CRState(
            True, phase, f"{where(obj)}: {phase or failed.get('type')}", _failure(plan_, obj, reason, message)
        )
    detail = f"{where(obj)}: {phase or 'no status yet'}"
    retry = _condition(status, "RetryFailed")
    if retry is not None and phase == "RetryFailed":
        detail += f" (the operator retries: {retry.get('message') or retry.get('reason')})"
    goal = plan_.goal
    done = False
    if goal is Goal.COMPLETE:
        done = phase == "Complete" or (_condition(status, "Complete") is not None and phase not in ON_TRACK)
    elif goal is Goal.LOG_RUNNING:
        done = phase == "Running" and bool(status.get("commitTs"))
    elif goal is Goal.LOG_PAUSED:
        done = phase == "Paused"
    elif goal is Goal.LOG_STOPPED:
        done = phase in ("Stopped", "Complete")
    elif goal is Goal.LOG_TRUNCATED:
        until = plan_.until or 0
        truncated = _int(status.get("logSuccessTruncateUntil")) or 0
        start = _int(status.get("commitTs")) or 0
        done = until <= truncated or (start > 0 and until <= start)
    if not done:
        return CRState(False, phase, detail)
    return CRState(True, phase, detail, _success(plan_, obj, status))


def _success(plan_: Plan, obj: Mapping[str, Any], status: Mapping[str, Any]) -> BROutcome:
    fields = {
        k: str(status[k])
        for k in ("backupPath", "backupSize", "commitTs", "timeTaken", "logCheckpointTs", "logSuccessTruncateUntil")
        if status.get(k) not in (None, "")
    }
    taken = parse_go_duration(str(status["timeTaken"])) if status.get("timeTaken") else None
    commit = _int(status.get("commitTs"))
    common: dict[str, Any] = {
        "recognised": True,
        "command": plan_.command,
        "success": True,
        "fields": fields,
        "notes": (where(obj),),
        "total_take_seconds": taken,
    }
    if plan_.kind == "Backup" and plan_.goal is Goal.COMPLETE:
        size = _int(status.get("backupSize"))
        return BROutcome(**common, backup_ts=commit, size_bytes=size, total_size_bytes=size)
    if plan_.kind == "Restore":
        spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
        assert isinstance(spec, Mapping)
        if spec.get("restoreMode") == "pitr":
            return BROutcome(**common, restore_end_ts=commit or _int(spec.get("pitrRestoredTs")))
        return BROutcome(**common, backup_ts=commit)
    return BROutcome(**common)


# ------------------------------------------------------------------------------------ log status


def on_track(obj: Mapping[str, Any]) -> bool:
    """A log ``Backup`` whose task exists on the cluster (running or paused, or on its way)."""
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    return status.get("phase") in ON_TRACK or not status.get("phase")


def task_name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    return str(annotations.get(ANNOTATION_TASK) or labels.get(LABEL_LOG_TASK) or meta.get("name"))


_TASK_STATE = {"Running": "NORMAL", "Paused": "PAUSE", "Failed": "ERROR"}


def log_status_json(objects: Sequence[Mapping[str, Any]]) -> str:
    """The log ``Backup`` resources as ``br log status --json`` prints tasks (one JSON array), so the readers of
    BR's output (``tidbops.br.output.parse_log_status``) read them unchanged. Stopped (or never started)
    resources are no task, as BR shows none after ``log stop``; the status comes from the phase."""
    tasks: list[dict[str, Any]] = []
    for obj in sorted(objects, key=lambda o: str((o.get("metadata") or {}).get("name"))):
        status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
        spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
        assert isinstance(status, Mapping) and isinstance(spec, Mapping)
        phase = status.get("phase")
        if phase not in _TASK_STATE or not status.get("commitTs"):
            continue
        s3 = spec.get("s3") if isinstance(spec.get("s3"), Mapping) else {}
        assert isinstance(s3, Mapping)
        task: dict[str, Any] = {
            "name": task_name_of(obj),
            "status": _TASK_STATE[str(phase)],
            "start_ts": _int(status.get("commitTs")) or 0,
            "end_ts": 0,
            "table_filter": list(spec.get("tableFilter") or ["*.*"]),
            "storage": f"s3://{s3.get('bucket', '')}/{s3.get('prefix', '')}".rstrip("/"),
            "checkpoint": _int(status.get("logCheckpointTs")) or 0,
            "progress": [],
            "last_errors": [],
        }
        if phase == "Failed":
            cond = _condition(status, "Failed") or {}
            task["last_errors"] = [
                {"last_error": {"error_code": cond.get("reason"), "error_message": cond.get("message")}}
            ]
        tasks.append(task)
    return json.dumps(tasks, separators=(",", ":"))
