"""The fleet config: every cluster, loaded into validated, frozen models.

One YAML file (``include/config/clusters.yaml`` by default, ``$TIDBOPS_FLEET_CONFIG`` to override) with
``defaults`` (deep-merged into every cluster), ``alert_routes``, ``catalog`` and ``clusters``.

A bad cluster entry never breaks the others: ``load_fleet`` returns the valid clusters plus one
``ConfigIssue`` per problem, each a single line naming the cluster, the field, and what would be valid.
Only a file that cannot be read as a whole raises ``ConfigError``. Secrets never live in this file: only
Airflow connection ids; values that look like secrets are refused.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import os
import pickle
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tidbops.durations import parse_duration
from tidbops.errors import ConfigError, UnknownClusterError

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 8x faster on large fleets
PRODUCTION_ENVS = frozenset({"prod", "production", "prd"})
CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9-]*(?:_[a-z0-9-]+)*$")
_CRON_PRESETS = frozenset({"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"})
_OFF = frozenset({"off", "none", "disabled", "false", ""})


def default_config_path() -> Path:
    env = os.environ.get("TIDBOPS_FLEET_CONFIG")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "config" / "clusters.yaml"


# --------------------------------------------------------------------------------------------- fields


def _check_cron(value: str) -> str:
    from croniter import croniter  # croniter is a plain library (Airflow ships it too)

    v = value.strip()
    if v in _CRON_PRESETS:
        return v
    fields = v.split()
    if len(fields) != 5 or not croniter.is_valid(v):
        raise ValueError(
            f"{value!r} is not a valid cron expression; use 5 fields (minute hour day month weekday, "
            f"e.g. '0 2 * * *'), a preset ({', '.join(sorted(_CRON_PRESETS))}), or off"
        )
    return v


def _schedule(value: object) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a schedule; use a cron string like '0 2 * * *' or off")
    if value.strip().lower() in _OFF:
        return None
    return _check_cron(value)


def _seconds(value: object) -> float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a duration; use e.g. 90s, 10m, 1h30m or seconds") from exc
        if seconds <= 0:
            raise ValueError(f"{value!r} must be a positive duration")
        return seconds
    raise ValueError(f"{value!r} is not a duration; use e.g. 90s, 10m, 1h30m or seconds")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


ConnId = Annotated[str, Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.-]+$")]


class StorageConfig(_Model):
    """Where backups go. Credentials live in the Airflow connection ``conn_id`` (type aws), never here."""

    uri: str = Field(description="s3://bucket/prefix or local:///absolute/path; the cluster's backups go below it")
    conn_id: ConnId | None = Field(default=None, description="Airflow connection with the S3 keys")
    endpoint: str | None = Field(default=None, description="S3 endpoint; default: the connection's endpoint_url")
    region: str | None = None
    sse: Literal["AES256", "aws:kms"] | None = None
    sse_kms_key_id: str | None = None

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if not (re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", v) or re.match(r"^local:///.+", v)):
            raise ValueError(f"{v!r} is not a storage URI; use s3://bucket/prefix or local:///absolute/path")
        if "?" in v:
            raise ValueError(f"{v!r}: no query parameters here; S3 options have their own fields")
        return v.rstrip("/")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/@\s]+(/.*)?$", v):
            raise ValueError(f"{v!r} is not an endpoint URL; use e.g. http://minio:9000")
        return v

    @model_validator(mode="after")
    def _needs_conn(self) -> StorageConfig:
        if self.sse == "aws:kms" and not self.sse_kms_key_id:
            raise ValueError("sse 'aws:kms' needs sse_kms_key_id")
        return self

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")


class Schedules(_Model):
    """Cron schedules; each may be off (null or 'off')."""

    cluster_check: str | None = "17 * * * *"
    full: str | None = None
    incremental: str | None = None
    log_backup_check: str | None = None
    drill: str | None = None
    slow_query_harvest: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _check(cls, v: object) -> str | None:
        return _schedule(v)


class EncryptionConfig(_Model):
    method: Literal["aes128-ctr", "aes192-ctr", "aes256-ctr"]
    key_conn_id: ConnId = Field(description="Airflow connection whose password holds the hex key")

    @field_validator("method", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v


class BRConfig(_Model):
    path: str = Field(default="br", description="br executable (found on PATH when not absolute)")
    ratelimit_mib: int | None = Field(default=None, ge=1, description="MiB/s per TiKV; forces concurrency 1")
    concurrency: int = Field(default=4, ge=1, le=256)
    compression: Literal["lz4", "zstd", "snappy"] = "zstd"
    checksum: bool = True
    timeout: float = Field(default=4 * 3600.0, description="seconds (or '4h') before BR is killed")
    encryption: EncryptionConfig | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: object) -> float:
        return _seconds(v)


class LogBackupConfig(_Model):
    enabled: bool = False
    task_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+$")
    storage_uri: str | None = Field(default=None, description="default: <storage.uri>/<cluster>/log")
    max_checkpoint_lag: float = Field(default=600.0, description="RPO limit, seconds or '10m'")
    auto_resume: bool = True
    max_gc_hold: float = Field(default=86400.0, description="alert when log backup holds GC back longer")

    @field_validator("max_checkpoint_lag", "max_gc_hold", mode="before")
    @classmethod
    def _lag(cls, v: object) -> float:
        return _seconds(v)

    @model_validator(mode="after")
    def _task(self) -> LogBackupConfig:
        if self.enabled and not self.task_name:
            raise ValueError("task_name is required when log backup is enabled")
        return self


class DrillConfig(_Model):
    target: str | None = Field(default=None, description="a cluster marked scratch: true")
    mode: Literal["snapshot", "pitr"] = "snapshot"
    # restore drills (#6): fingerprint the source right after each backup, while its history is there
    source_fingerprints: bool = Field(
        default=False, description="after each backup, record the source's chunk fingerprints as of its BackupTS"
    )
    fingerprint_max_tables: int | None = Field(default=None, ge=1, description="budget: tables fingerprinted")
    fingerprint_max_rows: int | None = Field(default=10_000_000, ge=1, description="budget: rows fingerprinted")


class RestoreConfig(_Model):
    allowed_targets: tuple[str, ...] = ()
    allow_in_place: bool = False


class RetentionConfig(_Model):
    keep_days: int = Field(default=14, ge=1, description="every restore point inside this window stays restorable")
    keep_full: int = Field(default=2, ge=1, description="at least this many full backups, whatever their age")
    max_chain_length: int = Field(default=6, ge=0, description="incrementals after a full before a new full")


class SlowQueryConfig(_Model):
    source: Literal["sql", "files"] = "sql"
    table: str = Field(default="INFORMATION_SCHEMA.CLUSTER_SLOW_QUERY", pattern=r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
    log_paths: tuple[str, ...] = ()
    top_n: int = Field(default=20, ge=1, le=1000)
    redact: bool = False
    apply_guardrails: bool = False


class ClusterConfig(_Model):
    """One TiDB cluster of the fleet."""

    name: str
    env: str = Field(description="dev, test, uat, prod, scratch, …")
    pd: tuple[str, ...] = Field(min_length=1)
    tidb_conn_id: ConnId
    storage: StorageConfig
    scratch: bool = False
    schedules: Schedules = Schedules()
    br: BRConfig = BRConfig()
    log_backup: LogBackupConfig = LogBackupConfig()
    drill: DrillConfig = DrillConfig()
    restore: RestoreConfig = RestoreConfig()
    retention: RetentionConfig = RetentionConfig()
    slow_query: SlowQueryConfig = SlowQueryConfig()
    alerts: tuple[str, ...] = ()
    owner: str = "dba"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not CLUSTER_NAME.match(v) or len(v) > 60:
            raise ValueError(
                f"{v!r} is not a valid cluster name; use lower-case letters, digits, '-' or single '_', "
                "starting with a letter (it becomes part of DAG ids)"
            )
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: str) -> str:
        if not re.match(r"^[a-z][a-z0-9-]*$", v):
            raise ValueError(f"{v!r} is not a valid env; use a lower-case word such as dev, test, uat, prod, scratch")
        return v

    @field_validator("pd", mode="before")
    @classmethod
    def _pd(cls, v: object) -> object:
        items = [v] if isinstance(v, str) else v
        if isinstance(items, list | tuple):
            for item in items:
                if not isinstance(item, str) or not re.match(r"^(https?://)?[A-Za-z0-9_.-]+:\d{1,5}$", item):
                    raise ValueError(f"{item!r} is not a PD address; use host:port, e.g. pd-0:2379")
        return items

    @property
    def is_production(self) -> bool:
        return self.env in PRODUCTION_ENVS

    @property
    def log_storage_uri(self) -> str:
        return self.log_backup.storage_uri or f"{self.storage.uri}/{self.name}/log"


class AlertRoute(_Model):
    kind: Literal["smtp", "webhook", "slack", "log"]
    to: tuple[str, ...] = ()
    conn_id: ConnId | None = None

    @model_validator(mode="after")
    def _complete(self) -> AlertRoute:
        if self.kind == "smtp" and not self.to:
            raise ValueError("an smtp route needs 'to' (a list of addresses)")
        if self.kind in ("webhook", "slack") and not self.conn_id:
            raise ValueError(f"a {self.kind} route needs conn_id (the Airflow connection with the URL)")
        return self


class CatalogConfig(_Model):
    conn_id: ConnId | None = Field(default=None, description="Airflow connection of a MySQL-compatible DB")
    sqlite_path: str | None = Field(default=None, description="default: $AIRFLOW_HOME/tidbops_catalog.db")


# ------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class ConfigIssue:
    """One problem, one line: ``cluster 'uat': schedules.full: '61 * * * *' is not a valid cron …``."""

    cluster: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"cluster {self.cluster!r}: " if self.cluster is not None else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


@dataclass(frozen=True)
class Fleet:
    path: Path
    clusters: Mapping[str, ClusterConfig]
    issues: tuple[ConfigIssue, ...] = ()
    alert_routes: Mapping[str, AlertRoute] = field(default_factory=dict)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)

    def get(self, name: str) -> ClusterConfig:
        try:
            return self.clusters[name]
        except KeyError:
            raise UnknownClusterError(name, list(self.clusters)) from None

    @property
    def ok(self) -> bool:
        return not self.issues

    def sources(self) -> list[ClusterConfig]:
        """Clusters that are backed up (not scratch), in file order."""
        return [c for c in self.clusters.values() if not c.scratch]


_SECRET_KEY_NAMES = re.compile(r"(pass(word|wd)?|secret|token|credential|private[_-]?key|api[_-]?key|^key$)", re.I)
_SECRET_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(secret-access-key|access-key|session-token|account-key|sas-token)=", re.I), "a credential in a URI"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a password in a URI"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{48}$|^[0-9a-fA-F]{64}$"), "an encryption key (hex)"),
    (re.compile(r"^(xox[abpr]-|ghp_|glpat-|sk-)[A-Za-z0-9-]{10,}"), "an API token"),
)


def _secret_findings(node: Any, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            is_id = str(key).endswith(("conn_id", "_id", "_ids"))
            if not is_id and _SECRET_KEY_NAMES.search(str(key)) and isinstance(value, str | int) and value != "":
                found.append((sub, "secret-named field with a value"))
            else:
                found += _secret_findings(value, sub)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _secret_findings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        for pattern, what in _SECRET_VALUE_PATTERNS:
            if pattern.search(node.strip()):
                found.append((path, f"looks like {what}"))
                break
    return found


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the field at ``loc`` (for listing valid field names)."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(str(part))
        if info is None:
            return None
        ann = info.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        nxt = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nxt is None:
            return None
        current = nxt
    return current


def _describe(model: type[BaseModel], err: Mapping[str, Any]) -> tuple[str, str]:
    loc: tuple[int | str, ...] = tuple(err["loc"])
    field_path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_at(model, loc)
        valid = sorted(owner.model_fields) if owner else []
        guess = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        return field_path, f"unknown field{hint}; valid fields: {', '.join(valid)}"
    if kind == "missing":
        return field_path, "required field is missing"
    msg = str(err["msg"])
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    if kind == "literal_error":
        msg = f"{err.get('input')!r} is not valid; " + msg.replace("Input should be", "use")
    elif "input" in err and kind not in ("value_error",) and not isinstance(err["input"], dict | list):
        msg = f"{err['input']!r}: {msg}"
    return field_path, msg


def _validate(model: type[BaseModel], raw: Any, cluster: str | None, prefix: str = "") -> tuple[Any, list[ConfigIssue]]:
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            path, msg = _describe(model, err)
            issues.append(ConfigIssue(cluster, f"{prefix}{path}" if path else prefix.rstrip("."), msg))
        return None, issues


def load_fleet(path: str | os.PathLike[str] | None = None) -> Fleet:
    """Load and validate the fleet config. Raises ``ConfigError`` only when the file is unusable as a whole."""
    p = Path(path) if path else default_config_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the fleet config: {exc.strerror or exc}") from exc
    return _load_text(text, p)


@lru_cache(maxsize=8)
def _cached(path: str, digest: str, cache_dir: str | None) -> Fleet:
    """One validation per config content: in memory, and on disk when a private cache dir is given."""
    cache_file = Path(cache_dir) / f"fleet-{digest}.pickle" if cache_dir else None
    if cache_file is not None and _safe_to_load(cache_file):
        try:
            fleet = pickle.loads(cache_file.read_bytes())  # noqa: S301 (our own 0600 file, checked above)
            if isinstance(fleet, Fleet):
                return fleet
        except Exception:  # noqa: S110 (a stale or torn cache is just a miss)
            pass
    fleet = load_fleet(path)
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(pickle.dumps(fleet, protocol=pickle.HIGHEST_PROTOCOL))
            tmp.chmod(0o600)
            os.replace(tmp, cache_file)
        except OSError:
            pass  # a read-only home only costs speed
    return fleet


def _safe_to_load(path: Path) -> bool:
    """Only a cache file we own and nobody else can write (pickle runs code on load)."""
    try:
        st = path.stat()
        parent = path.parent.stat()
    except OSError:
        return False
    uid = os.getuid()
    return st.st_uid == uid and parent.st_uid == uid and not (st.st_mode | parent.st_mode) & 0o022


def load_fleet_cached(
    path: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> Fleet:
    """``load_fleet``, validated once per config content.

    DAG files call this: within one process every DAG file shares one load, and with ``cache_dir`` (a
    private directory) the dag-processor's many short-lived parse processes share one validation too. The
    key is the file's content and this module's own version, so an edited config or a new model is never
    served stale.
    """
    p = Path(path) if path else default_config_path()
    try:
        content = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the fleet config: {exc.strerror or exc}") from exc
    digest = hashlib.sha256(content + _MODEL_VERSION).hexdigest()[:32]
    return _cached(str(p), digest, str(cache_dir) if cache_dir else None)


def _model_version() -> bytes:
    here = Path(__file__)
    st = here.stat()
    return f"{st.st_mtime_ns}:{st.st_size}:{sys.version_info[:2]}".encode()


_MODEL_VERSION = _model_version()


def _load_text(text: str, p: Path) -> Fleet:
    try:
        doc = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}:{where}: not valid YAML: {problem}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: the fleet config must be a mapping with a 'clusters' list")
    top_allowed = {"version", "defaults", "alert_routes", "catalog", "clusters"}
    issues: list[ConfigIssue] = []
    for key in doc:
        if key not in top_allowed:
            guess = difflib.get_close_matches(str(key), sorted(top_allowed), n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            issues.append(
                ConfigIssue(None, str(key), f"unknown top-level key{hint}; valid: {', '.join(sorted(top_allowed))}")
            )
    raw_clusters = doc.get("clusters")
    if not isinstance(raw_clusters, list):
        raise ConfigError(f"{p}: 'clusters' must be a list of cluster entries")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{p}: 'defaults' must be a mapping")
    default_secrets = _secret_findings(defaults, "defaults")
    for where, what in default_secrets:
        issues.append(
            ConfigIssue(
                None,
                where,
                f"{what}; secrets belong in Airflow connections, reference them by conn id "
                "(no cluster loads until it is removed)",
            )
        )

    routes: dict[str, AlertRoute] = {}
    for name, raw in (doc.get("alert_routes") or {}).items():
        route, errs = _validate(AlertRoute, raw, None, f"alert_routes.{name}.")
        issues += errs
        if route is not None:
            routes[str(name)] = route
    catalog, errs = _validate(CatalogConfig, doc.get("catalog") or {}, None, "catalog.")
    issues += errs

    clusters: dict[str, ClusterConfig] = {}
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_clusters):
        if not isinstance(raw, dict):
            issues.append(ConfigIssue(None, f"clusters[{index}]", "each cluster entry must be a mapping"))
            continue
        name = str(raw.get("name", f"clusters[{index}]"))
        if name in seen:
            issues.append(
                ConfigIssue(
                    name, "name", f"duplicate cluster name (also entry #{seen[name] + 1}); names must be unique"
                )
            )
            clusters.pop(name, None)
            continue
        seen[name] = index
        if default_secrets:
            continue  # never validate (and so never echo) a secret inherited from defaults
        secrets = _secret_findings(raw)
        if secrets:
            for where, what in secrets:
                issues.append(
                    ConfigIssue(
                        name, where, f"{what}; secrets belong in Airflow connections, reference them by conn id"
                    )
                )
            continue
        cluster, errs = _validate(ClusterConfig, _deep_merge(defaults, raw), name)
        issues += errs
        if cluster is not None:
            clusters[name] = cluster

    issues += _cross_checks(clusters, routes, set(seen))
    bad = {i.cluster for i in issues if i.cluster is not None}
    good = {n: c for n, c in clusters.items() if n not in bad}
    return Fleet(path=p, clusters=good, issues=tuple(issues), alert_routes=routes, catalog=catalog or CatalogConfig())


def _cross_checks(
    clusters: Mapping[str, ClusterConfig], routes: Mapping[str, AlertRoute], names: set[str]
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    scratch = sorted(n for n, c in clusters.items() if c.scratch)
    pd_owner: dict[str, str] = {}
    for name, c in clusters.items():
        if c.drill.target is not None:
            target = clusters.get(c.drill.target)
            if target is None or not target.scratch:
                why = "is not a cluster" if c.drill.target not in names else "is not marked scratch: true"
                issues.append(
                    ConfigIssue(
                        name,
                        "drill.target",
                        f"{c.drill.target!r} {why}; scratch clusters: {', '.join(scratch) or '(none)'}",
                    )
                )
        elif c.schedules.drill is not None:
            issues.append(
                ConfigIssue(
                    name,
                    "drill.target",
                    f"a drill is scheduled but no target is set; scratch clusters: {', '.join(scratch) or '(none)'}",
                )
            )
        for i, t in enumerate(c.restore.allowed_targets):
            if t not in clusters:
                issues.append(
                    ConfigIssue(
                        name,
                        f"restore.allowed_targets[{i}]",
                        f"{t!r} is not a cluster; known: {', '.join(sorted(clusters))}",
                    )
                )
            elif t == name and not c.restore.allow_in_place:
                issues.append(
                    ConfigIssue(
                        name,
                        f"restore.allowed_targets[{i}]",
                        "lists the cluster itself; set restore.allow_in_place: true to allow in-place restores",
                    )
                )
        for i, r in enumerate(c.alerts):
            if r not in routes:
                issues.append(
                    ConfigIssue(
                        name,
                        f"alerts[{i}]",
                        f"{r!r} is not an alert route; defined routes: {', '.join(sorted(routes)) or '(none)'}",
                    )
                )
        if c.scratch and (c.schedules.full or c.schedules.incremental or c.log_backup.enabled):
            issues.append(
                ConfigIssue(
                    name,
                    "scratch",
                    "a scratch cluster is wiped by drills; it cannot have backups scheduled or log backup enabled",
                )
            )
        if c.scratch and c.is_production:
            issues.append(
                ConfigIssue(name, "scratch", f"env {c.env!r} is production; a production cluster can never be scratch")
            )
        for addr in c.pd:
            other = pd_owner.setdefault(addr, name)
            if other != name:
                issues.append(
                    ConfigIssue(
                        name, "pd", f"{addr!r} is also the PD of cluster {other!r}; each cluster needs its own PD"
                    )
                )
    return issues
