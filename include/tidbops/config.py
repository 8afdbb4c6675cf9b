"""The fleet config: every cluster, loaded into validated, frozen models.

One YAML file (``include/config/clusters.yaml`` by default, ``$TIDBOPS_FLEET_CONFIG`` to override) with
``version`` (1), ``production_envs``, ``defaults`` (deep-merged into every cluster), ``alert_routes``,
``catalog``, ``fleet`` (fleet-wide knobs: ``br_concurrency``) and ``clusters``.

A bad cluster entry never breaks the others: ``load_fleet`` returns the valid clusters plus one
``ConfigIssue`` per problem, each a single line naming the cluster, the field, and what would be valid.
Only a file that cannot be read as a whole raises ``ConfigError`` (one line too): unreadable, over
``MAX_CONFIG_BYTES``, not UTF-8, not YAML, nested deeper than ``MAX_DEPTH``, more than ``MAX_VALUES`` values
once aliases are expanded, a duplicate top-level key, an unknown ``version``, no ``clusters`` list.

Secrets never live in this file: only Airflow connection ids. Every value and key of every section is
checked with ``tidbops.redact`` before anything shows a value; one that looks like a credential is reported
by its path and what it looks like, never echoed, and its section is not loaded. Every text a
``ConfigIssue`` or ``ConfigError`` carries is redacted as well.

Every walk of the document is bounded: the YAML events are checked (depth, expanded size, duplicate keys,
recursive aliases) by an iterative pass over libyaml's parser before anything composes or recurses.
"""

import difflib
import hashlib
import math
import os
import pickle
import re
import stat
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tidbops.durations import parse_duration
from tidbops.errors import ConfigError, UnknownClusterError
from tidbops.redact import find_secret, is_secret_name, redact
from tidbops.storage import StorageError, check_endpoint
from tidbops.text import one_line, shown

try:  # libyaml: 8x faster on large fleets
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]
_LIBYAML = _Loader.__name__ == "CSafeLoader"  # its reader reports byte offsets, not characters

#: The versions of the fleet config format this code reads (``version:``; a file without one is version 1).
KNOWN_VERSIONS = (1,)
#: ``env`` values that always mark a cluster production; a fleet's ``production_envs`` adds more.
PRODUCTION_ENVS = frozenset({"prod", "production", "prd"})
#: Cluster names become DAG ids (``<pipeline>__<cluster>``), pool names (``br_<cluster>``) and storage paths:
#: lower-case letters and digits, starting with a letter, with single ``-`` or ``_`` between them (never
#: ``__``, which separates the pipeline from the cluster in a DAG id), at most ``MAX_NAME`` characters.
CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
MAX_NAME = 63
ENV_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
MAX_ENV = 32
ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Limits that keep loading bounded whatever the file holds (the README's fleet-config section lists them).
MAX_CONFIG_BYTES = 8 * 1024 * 1024  # a 500-cluster fleet is about 0.3 MiB
MAX_DEPTH = 32  # nesting of collections, aliases expanded; the fleet config itself needs 5
MAX_VALUES = 1_000_000  # values in the document once every alias is expanded
MAX_STRING = 1024  # characters in one value or key; no field takes more
MAX_CLUSTERS = 10_000
MAX_DEFAULTS_VALUES = 1_000  # merged into every cluster, so kept small
MAX_ISSUES_PER_ENTRY = 20  # then one line saying how many more

_CRON_PRESETS = frozenset({"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"})
_OFF = frozenset({"off", "none", "disabled", "false", ""})
_TOP_LEVEL = ("version", "production_envs", "defaults", "alert_routes", "catalog", "fleet", "clusters")
_USE_CONNECTIONS = "secrets belong in Airflow connections, reference them by conn id"
_DAY = 86400.0
# An example, documented as one: S3 Standard's list price in us-east-1 (USD per GB-month, 2026).
DEFAULT_PRICE_PER_GB_MONTH: Mapping[str, float] = {"STANDARD": 0.023, "STANDARD_IA": 0.0125, "GLACIER_IR": 0.004}


def default_config_path() -> Path:
    env = os.environ.get("TIDBOPS_FLEET_CONFIG")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "config" / "clusters.yaml"


# ------------------------------------------------------------------------------------------- display


def _kind(value: object) -> str:
    """What a YAML value is, in YAML's words: ``a list``, ``a mapping``, ``a string``…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def _listing(names: list[str], limit: int = 20) -> str:
    if not names:
        return "(none)"
    listed = ", ".join(names[:limit])
    return listed if len(names) <= limit else f"{listed}, … ({len(names)} in all)"


def _seconds_text(seconds: float) -> str:
    for unit, size in (("d", _DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------------------------- fields


@lru_cache(maxsize=1024)
def _is_cron(v: str) -> bool:
    """croniter's verdict, once per text: a fleet repeats a few schedules hundreds of times."""
    from croniter import croniter  # croniter is a plain library (Airflow ships it too)

    return len(v) <= 200 and len(v.split()) == 5 and bool(croniter.is_valid(v))


def _check_cron(value: str) -> str:
    v = value.strip()
    if v in _CRON_PRESETS:
        return v
    if not _is_cron(v):
        raise ValueError(
            f"{shown(value)} is not a valid cron expression; use 5 fields (minute hour day month weekday, "
            f"e.g. '0 2 * * *'), a preset ({', '.join(sorted(_CRON_PRESETS))}), or off"
        )
    return v


def _schedule(value: object) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{shown(value)} is not a schedule; use a cron string like '0 2 * * *' or off")
    if value.strip().lower() in _OFF:
        return None
    return _check_cron(value)


def _seconds(value: object, low: float, high: float) -> float:
    """A duration (``90s``, ``10m``, ``1h30m`` or seconds), finite and within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{shown(value)} is not a duration; use e.g. 90s, 10m, 1h30m or seconds")
    try:
        seconds = parse_duration(value)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{shown(value)} is not a duration; use e.g. 90s, 10m, 1h30m or seconds") from exc
    if not math.isfinite(seconds) or not low <= seconds <= high:
        raise ValueError(
            f"{shown(value)} is out of bounds; use a duration from {_seconds_text(low)} to {_seconds_text(high)}"
        )
    return seconds


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number; use a whole number")
    return value


# A whole number that ``true`` is not (pydantic would take it as 1).
Int = Annotated[int, BeforeValidator(_not_bool)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, defer_build=True)


ConnId = Annotated[str, Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.-]+$")]


class StorageConfig(_Model):
    """Where backups go. Credentials live in the Airflow connection ``conn_id`` (type aws), never here."""

    uri: str = Field(description="s3://bucket/prefix or local:///absolute/path; the cluster's backups go below it")
    conn_id: ConnId | None = Field(default=None, description="Airflow connection with the S3 keys")
    endpoint: str | None = Field(default=None, description="S3 endpoint; default: the connection's endpoint_url")
    region: str | None = Field(default=None, max_length=64)
    sse: Literal["AES256", "aws:kms"] | None = None
    sse_kms_key_id: str | None = None
    storage_class: str = Field(
        default="STANDARD", max_length=64, pattern=r"^[A-Z0-9_]+$", description="the class backups are stored in"
    )
    price_per_gb_month: Mapping[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_PRICE_PER_GB_MONTH),
        description="price of one GB-month by storage class, for `tidbops cost` (an example default: "
        "S3 Standard list price)",
    )

    @field_validator("price_per_gb_month", mode="before")
    @classmethod
    def _prices(cls, v: object) -> object:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return {"STANDARD": v}  # one number: the price of the default class
        return v

    @field_validator("price_per_gb_month")
    @classmethod
    def _price_values(cls, v: Mapping[str, float]) -> Mapping[str, float]:
        for name, price in v.items():
            if not re.fullmatch(r"[A-Z0-9_]{1,64}", name):
                raise ValueError(f"{shown(name)} is not a storage class name (upper case, e.g. STANDARD, GLACIER_IR)")
            if not math.isfinite(price) or not 0 <= price <= 1000:
                raise ValueError(f"the price of {name} must be 0 to 1000 per GB-month, not {shown(price)}")
        return dict(v)

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if not (re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", v) or re.match(r"^local:///.+", v)):
            raise ValueError(f"{shown(v)} is not a storage URI; use s3://bucket/prefix or local:///absolute/path")
        if "?" in v:
            raise ValueError(f"{shown(v)}: no query parameters here; S3 options have their own fields")
        return v.rstrip("/")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                check_endpoint(v)  # the one endpoint check: what boto3 and BR can use, no credentials
            except StorageError as exc:
                raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _needs_conn(self) -> Self:
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
    retention: str | None = "41 2 * * *"  # daily: reconcile, plan, expire, truncate the log (#16)
    verify: str | None = "23 3 * * *"  # nightly tier-1 checks of every retained backup; tier 2 weekly (#16)

    @field_validator("*", mode="before")
    @classmethod
    def _check(cls, v: object) -> str | None:
        return _schedule(v)


class EncryptionConfig(_Model):
    """``mode: shared-key`` (the default): one crypter key for every backup, the password of ``key_conn_id``.
    ``mode: owner-key`` (#17): a fresh data key per backup, stored only wrapped to ``owner_public_key`` (an
    age X25519 recipient, ``age1…``); restores unwrap it with the private key of the connection
    ``restore.owner_key_conn_id`` (``tidbops.keys.owner``)."""

    method: Literal["aes128-ctr", "aes192-ctr", "aes256-ctr"]
    mode: Literal["shared-key", "owner-key"] = "shared-key"
    key_conn_id: ConnId | None = Field(
        default=None, description="shared-key: Airflow connection whose password holds the hex key"
    )
    owner_public_key: str | None = Field(
        default=None, max_length=100, description="owner-key: the owner's age X25519 public key (age1…)"
    )

    @field_validator("method", "mode", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _mode_fields(self) -> Self:
        if self.mode == "shared-key":
            if self.key_conn_id is None:
                raise ValueError("mode shared-key needs key_conn_id (the connection holding the hex key)")
            if self.owner_public_key is not None:
                raise ValueError("owner_public_key is for mode owner-key; set mode: owner-key, or drop it")
            return self
        if self.key_conn_id is not None:
            raise ValueError(
                "mode owner-key takes no key_conn_id: every backup gets its own data key, wrapped to owner_public_key"
            )
        if not self.owner_public_key:
            raise ValueError("mode owner-key needs owner_public_key (an age X25519 public key, age1…)")
        return self

    @field_validator("owner_public_key", mode="after")
    @classmethod
    def _public_key(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from tidbops.keys.owner import OwnerKeyError, check_public_key

        try:
            return check_public_key(v)
        except OwnerKeyError as exc:
            raise ValueError(str(exc)) from None

    @property
    def owner_key(self) -> bool:
        return self.mode == "owner-key"


_K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"  # RFC 1123 subdomain
K8sName = Annotated[str, Field(min_length=1, max_length=253, pattern=_K8S_NAME)]
K8sLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
Quantity = Annotated[str, Field(min_length=1, max_length=32, pattern=_QUANTITY)]


class K8sResources(_Model):
    """A container's resources (``requests``/``limits`` of cpu, memory, ephemeral-storage)."""

    requests: dict[Literal["cpu", "memory", "ephemeral-storage"], Quantity] = {}
    limits: dict[Literal["cpu", "memory", "ephemeral-storage"], Quantity] = {}


class K8sToleration(_Model):
    key: str | None = Field(default=None, max_length=316)
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: Int | None = Field(default=None, ge=0)


class KubernetesBRConfig(_Model):
    """``br.runner: kubernetes``: one pod per BR command. Credentials only as Kubernetes Secrets named here
    (never in the pod spec): ``credentials_secret_name`` holds AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
    [/ AWS_SESSION_TOKEN] (the pod's environment); ``crypter_secret_name`` the crypter key (hex) under ``key``;
    ``tls_secret_name`` ``ca.crt``/``tls.crt``/``tls.key`` (mounted for ``--ca/--cert/--key``)."""

    conn_id: ConnId = Field(default="kubernetes_default", description="a cncf-kubernetes (kubernetes type) connection")
    namespace: K8sLabel = Field(description="where the BR pods run")
    image: str | None = Field(
        default=None,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
        description="default pingcap/br:<br.version, else the cluster's version>",
    )
    service_account: K8sName | None = None
    resources: K8sResources = Field(default_factory=K8sResources)
    node_selector: dict[str, str] = {}
    tolerations: tuple[K8sToleration, ...] = ()
    credentials_secret_name: K8sName | None = Field(
        default=None, description="Secret with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; unset: the pod's own identity"
    )
    crypter_secret_name: K8sName | None = Field(default=None, description="Secret with the crypter key under 'key'")
    tls_secret_name: K8sName | None = Field(default=None, description="Secret with ca.crt, tls.crt, tls.key")
    poll_seconds: float = Field(default=5.0, ge=0.2, le=300.0, description="how often the pod's phase is read")
    defer: bool = Field(
        default=False,
        description="the backup step waits in the triggerer while its pod runs (frees the worker slot); needs the "
        "br_<cluster> pool to count deferred tasks (include_deferred), and is not used with fleet.br_concurrency",
    )
    log_dir: str = Field(default="/var/lib/br-log", pattern=r"^/[A-Za-z0-9._/-]*$", description="BR's logs in the pod")


class TiDBOperatorConfig(_Model):
    """``br.runner: tidb-operator``: BR through TiDB Operator v1's ``Backup``/``Restore`` resources
    (``pingcap.com/v1alpha1``), created in ``namespace`` for the TidbCluster ``tidbcluster``. Credentials
    only as Secrets named here: ``storage_secret_name`` holds ``access_key``/``secret_key`` (TiDB Operator's
    layout; unset: the BR pod's own identity, e.g. IRSA on ``service_account``); ``crypter_secret_name`` the
    crypter key (hex) under ``key``, mounted into the BR pod. What no resource expresses (``br log
    metadata``, ``br debug``, ``br -V``) runs as a pod through ``br.kubernetes``, which is then required."""

    conn_id: ConnId = Field(default="kubernetes_default", description="a cncf-kubernetes (kubernetes type) connection")
    namespace: K8sLabel = Field(description="where the Backup/Restore resources are created")
    tidbcluster: K8sName = Field(description="the TidbCluster's name (spec.br.cluster)")
    cluster_namespace: K8sLabel | None = Field(default=None, description="the TidbCluster's namespace, else namespace")
    storage_secret_name: K8sName | None = Field(default=None, description="Secret with access_key/secret_key for S3")
    s3_provider: str = Field(default="aws", pattern=r"^[a-z0-9-]{1,32}$", description="spec.s3.provider: aws, ceph, …")
    service_account: K8sName | None = None
    tool_image: str | None = Field(
        default=None,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
        description="BR image (spec.toolImage); default pingcap/br:<br.version>, else the operator's choice (TiKV's)",
    )
    crypter_secret_name: K8sName | None = Field(
        default=None, description="Secret with the crypter key (hex) under 'key'"
    )
    poll_seconds: float = Field(default=10.0, ge=0.2, le=300.0, description="how often the resource's status is read")
    defer: bool = Field(
        default=False,
        description="the backup step waits in the triggerer while its Backup runs (frees the worker slot); needs the "
        "br_<cluster> pool to count deferred tasks (include_deferred), and is not used with fleet.br_concurrency",
    )


class BRConfig(_Model):
    runner: Literal["local", "kubernetes", "tidb-operator"] = Field(
        default="local", description="where BR runs: local (a worker subprocess), kubernetes (a pod), tidb-operator"
    )
    kubernetes: KubernetesBRConfig | None = None
    tidb_operator: TiDBOperatorConfig | None = None
    path: str = Field(default="br", description="br executable (found on PATH when not absolute)")
    version: str | None = Field(
        default=None,
        pattern=r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$",
        description="the release `br --version` must report (e.g. v8.5.1); unset: any BR compatible with the cluster",
    )
    ratelimit_mib: Int | None = Field(
        default=None, ge=1, le=100_000, description="MiB/s per TiKV, 1 to 100000; forces concurrency 1"
    )
    concurrency: Int = Field(default=4, ge=1, le=256, description="1 to 256")
    compression: Literal["lz4", "zstd", "snappy"] = "zstd"
    checksum: bool = True
    timeout: float = Field(default=4 * 3600.0, description="seconds (or '4h') before BR is killed, 1s to 7d")
    encryption: EncryptionConfig | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: object) -> float:
        return _seconds(v, 1.0, 7 * _DAY)

    @model_validator(mode="after")
    def _runner_block(self) -> Self:
        if self.runner == "kubernetes" and self.kubernetes is None:
            raise ValueError("runner is 'kubernetes' but br.kubernetes is not set (namespace, secrets, …)")
        return self

    @model_validator(mode="after")
    def _operator_block(self) -> Self:
        if self.runner != "tidb-operator":
            return self
        if self.tidb_operator is None:
            raise ValueError("runner is 'tidb-operator' but br.tidb_operator is not set (namespace, tidbcluster, …)")
        if self.kubernetes is None:
            raise ValueError(
                "runner is 'tidb-operator' but br.kubernetes is not set: br log metadata, br debug and br -V have "
                "no TiDB Operator resource and run as pods"
            )
        enc = self.encryption
        if enc is not None and enc.owner_key:
            raise ValueError("runner 'tidb-operator': owner-key encryption needs a fresh key per backup; use local")
        if enc is not None and self.tidb_operator.crypter_secret_name is None:
            raise ValueError("tidb_operator.crypter_secret_name: this cluster encrypts backups; name the key's Secret")
        if enc is not None and self.kubernetes.crypter_secret_name is None:
            raise ValueError("kubernetes.crypter_secret_name: br debug checksum pods decrypt backupmeta with the key")
        return self


class TLSConfig(_Model):
    """TLS to the cluster's PD/TiKV for BR (``--ca/--cert/--key``): PEM paths on the worker, or ``conn_id``, an
    Airflow connection whose extra holds the PEM texts (``ca``, ``cert``, ``key``) written to 0600 files for
    each BR run. SQL TLS lives in the ``tidb_conn_id`` connection's extra (``ssl_ca``, …)."""

    ca: str | None = Field(default=None, description="CA certificate (PEM path); TLS is on when set")
    cert: str | None = Field(default=None, description="client certificate (PEM path)")
    key: str | None = Field(default=None, description="the client certificate's private key (PEM path)")
    conn_id: ConnId | None = Field(default=None, description="connection whose extra holds ca/cert/key PEM texts")

    @field_validator("ca", "cert", "key")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"{shown(v)} is not an absolute path (BR runs from its own working directory)")
        return v

    @model_validator(mode="after")
    def _complete(self) -> Self:
        paths = (self.ca, self.cert, self.key)
        if self.conn_id is not None and any(paths):
            raise ValueError("give either conn_id (PEMs in its extra) or ca/cert/key paths, not both")
        if self.conn_id is None and self.ca is None:
            raise ValueError("needs ca (a CA certificate path) or conn_id (a connection holding the PEMs)")
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together (a client certificate needs its private key)")
        return self


class LogBackupConfig(_Model):
    enabled: bool = False
    task_name: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    storage_uri: str | None = Field(default=None, description="default: <storage.uri>/<cluster>/log")
    max_checkpoint_lag: float = Field(default=600.0, description="RPO limit, seconds or '10m', 1s to 7d")
    auto_resume: bool = True
    max_gc_hold: float = Field(default=86400.0, description="alert when log backup holds GC back longer, 1s to 30d")

    @field_validator("max_checkpoint_lag", mode="before")
    @classmethod
    def _lag(cls, v: object) -> float:
        return _seconds(v, 1.0, 7 * _DAY)

    @field_validator("max_gc_hold", mode="before")
    @classmethod
    def _gc_hold(cls, v: object) -> float:
        return _seconds(v, 1.0, 30 * _DAY)

    @model_validator(mode="after")
    def _task(self) -> Self:
        if self.enabled and not self.task_name:
            raise ValueError("task_name is required when log backup is enabled")
        return self


class ScratchKubernetesConfig(_Model):
    """A scratch cluster made on Kubernetes for each drill or restore into it: a TiDB Operator v1 ``TidbCluster``
    from ``template``, waited for until Ready, always deleted afterwards (``tidbops.k8s.scratch``).

    The cluster's ``pd`` and the host of its ``tidb_conn_id`` name the stable Services ``<name>-pd`` and
    ``<name>-tidb`` in ``namespace`` that tidbops points at each drill's TidbCluster.
    """

    conn_id: ConnId = Field(default="kubernetes_default", description="a cncf-kubernetes (kubernetes type) connection")
    namespace: K8sLabel = Field(description="where the scratch TidbClusters are created (TiDB Operator watches it)")
    template: dict[str, Any] = Field(description="a TidbCluster manifest (spec: pd, tikv, tidb...) without a name")
    version: str | None = Field(default=None, max_length=64, description="spec.version; default: the template's")
    ready_timeout: float = Field(default=1800.0, description="seconds (or '30m') to wait for Ready, 1s to 1d")
    poll_seconds: float = Field(default=15.0, ge=0.2, le=600.0, description="how often the TidbCluster is read")

    @field_validator("ready_timeout", mode="before")
    @classmethod
    def _ready_timeout(cls, v: object) -> float:
        return _seconds(v, 1.0, _DAY)

    @field_validator("template")
    @classmethod
    def _template(cls, v: dict[str, Any]) -> dict[str, Any]:
        from tidbops.k8s.scratch import render_tidbcluster

        render_tidbcluster(v, name="check", namespace="check", target="check", plan_id="check", version="check")
        return v


class DrillConfig(_Model):
    target: str | None = Field(default=None, description="a cluster marked scratch: true")
    mode: Literal["snapshot", "pitr"] = "snapshot"
    # restore drills (#6): fingerprint the source right after each backup, while its history is there
    source_fingerprints: bool = Field(
        default=False, description="after each backup, record the source's chunk fingerprints as of its BackupTS"
    )
    fingerprint_max_tables: Int | None = Field(
        default=None, ge=1, le=1_000_000, description="budget: tables fingerprinted, 1 to 1000000"
    )
    fingerprint_max_rows: Int | None = Field(
        default=10_000_000, ge=1, le=10_000_000_000, description="budget: rows fingerprinted, 1 to 10^10"
    )


class RestoreConfig(_Model):
    owner_key_conn_id: ConnId | None = Field(
        default=None,
        description="br.encryption.mode owner-key: the connection (present only where restores run) whose "
        "password holds the owner's age private key; restores, drills and tidbops restore unwrap with it",
    )
    allowed_targets: tuple[str, ...] = ()
    allow_in_place: bool = False
    allow_production_targets: bool = Field(
        default=False,
        description="allowed_targets (or allow_in_place) may name a production cluster; without it the config "
        "refuses such a target",
    )


class RetentionConfig(_Model):
    keep_days: float = Field(
        default=14.0,
        description="the recovery window: every point inside it stays restorable; days, or a duration "
        "('14d', '36h', '10m'), 1 minute to 3650 days",
    )
    keep_full: Int = Field(default=2, ge=1, le=100, description="at least this many full backups, 1 to 100")
    max_chain_length: Int = Field(default=6, ge=0, le=100, description="incrementals after a full, 0 to 100")
    dry_run: bool | None = Field(
        default=None,
        description="report what retention would delete, delete nothing; default: true for production "
        "clusters, false for the others",
    )

    @field_validator("keep_days", mode="before")
    @classmethod
    def _keep_days(cls, v: object) -> float:
        """A plain number counts days (the field's name); a string with a unit is a duration."""
        if isinstance(v, str) and not re.fullmatch(r"\s*\d+(\.\d+)?\s*", v):
            return _seconds(v, 60.0, 3650 * _DAY) / _DAY
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ValueError(f"{shown(v)} is not a number of days or a duration like 14d, 36h, 10m")
        days = float(v)
        if not math.isfinite(days) or not 60.0 / _DAY <= days <= 3650:
            raise ValueError(f"{shown(v)} days is out of range; use 1 minute to 3650 days")
        return days

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.keep_days)

    @property
    def window_text(self) -> str:
        """``14-day`` for whole days, else the duration (``36h``, ``10m``)."""
        if self.keep_days == int(self.keep_days):
            return f"{int(self.keep_days)}-day"
        return _seconds_text(round(self.keep_days * _DAY, 3))


class ObjectivesConfig(_Model):
    """What the cluster's protection promises (#16); ``tidbops compliance`` checks them. Unset: not checked."""

    rpo: float | None = Field(default=None, description="newest recovery point at most this old, e.g. 15m")
    rto: float | None = Field(default=None, description="last measured drill RTO at most this long, e.g. 1h")
    min_retention: float | None = Field(
        default=None, description="the oldest retained point at least this old, e.g. 7d"
    )
    backup_every: float | None = Field(
        default=None, description="a verified backup in every period this long over the last 30 days, e.g. 1d"
    )

    @field_validator("rpo", "rto", "min_retention", "backup_every", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float | None:
        return None if v is None else _seconds(v, 1.0, 3650 * _DAY)


class SlowQueryConfig(_Model):
    source: Literal["sql", "files"] = "sql"
    table: str = Field(default="INFORMATION_SCHEMA.CLUSTER_SLOW_QUERY", pattern=r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
    log_paths: tuple[str, ...] = ()
    top_n: Int = Field(default=20, ge=1, le=1000, description="1 to 1000")
    redact: bool = False
    apply_guardrails: bool = False


class ClusterConfig(_Model):
    """One TiDB cluster of the fleet."""

    name: str
    env: str = Field(description="dev, test, uat, prod, scratch, …")
    production: bool = Field(
        default=False,
        description="production whatever its env; an env of prod, production, prd (or one of the fleet's "
        "production_envs) is production anyway",
    )
    pd: tuple[str, ...] = Field(min_length=1)
    tidb_conn_id: ConnId
    storage: StorageConfig
    scratch: bool = False
    schedules: Schedules = Field(default_factory=Schedules)
    br: BRConfig = Field(default_factory=BRConfig)
    tls: TLSConfig | None = None
    log_backup: LogBackupConfig = Field(default_factory=LogBackupConfig)
    drill: DrillConfig = Field(default_factory=DrillConfig)
    restore: RestoreConfig = Field(default_factory=RestoreConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    objectives: ObjectivesConfig = Field(default_factory=ObjectivesConfig)
    slow_query: SlowQueryConfig = Field(default_factory=SlowQueryConfig)
    alerts: tuple[str, ...] = ()
    owner: str = "dba"
    scratch_kubernetes: ScratchKubernetesConfig | None = Field(
        default=None, description="a scratch cluster made per drill/restore on Kubernetes (scratch: true only)"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not CLUSTER_NAME.match(v) or len(v) > MAX_NAME:
            hint = ""
            lowered = v.lower()
            if lowered != v and CLUSTER_NAME.match(lowered) and len(lowered) <= MAX_NAME:
                hint = f"; use {lowered!r}"
            raise ValueError(
                f"{shown(v)} is not a valid cluster name; use lower-case letters and digits, starting with a "
                f"letter, with single '-' or '_' between them, at most {MAX_NAME} characters (it becomes part of "
                f"DAG ids, pool names and storage paths){hint}"
            )
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: str) -> str:
        if not ENV_NAME.match(v) or len(v) > MAX_ENV:
            raise ValueError(
                f"{shown(v)} is not a valid env; use a lower-case word such as dev, test, uat, prod, scratch"
            )
        return v

    @field_validator("production")
    @classmethod
    def _production(cls, v: bool, info: ValidationInfo) -> bool:
        env = info.data.get("env")
        if not v and env in PRODUCTION_ENVS:
            raise ValueError(f"env {env!r} is production; production: false cannot unmark it")
        return v

    @model_validator(mode="after")
    def _scratch_kubernetes(self) -> Self:
        k8s = self.scratch_kubernetes
        if k8s is None:
            return self
        if not self.scratch:
            raise ValueError("scratch_kubernetes: only a cluster marked scratch: true is made per drill")
        from tidbops.k8s.scratch import alias_name

        want = f"{alias_name(self.name, 'pd')}.{k8s.namespace}.svc"
        host = self.pd[0].split("://")[-1].rsplit(":", 1)[0]
        if host != want and not host.startswith(want + "."):
            raise ValueError(
                f"pd: a scratch cluster made on Kubernetes is reached through the Service tidbops keeps in front of "
                f"it; use {want}:2379"
            )
        return self

    @field_validator("pd", mode="before")
    @classmethod
    def _pd(cls, v: object) -> object:
        items = [v] if isinstance(v, str) else v
        if isinstance(items, list | tuple):
            for item in items:
                m = re.match(r"^(?:https?://)?[A-Za-z0-9_.-]+:(\d{1,5})$", item) if isinstance(item, str) else None
                if m is None or not 1 <= int(m.group(1)) <= 65535:
                    raise ValueError(
                        f"{shown(item)} is not a PD address; use host:port (port 1 to 65535), e.g. pd-0:2379"
                    )
        return items

    @model_validator(mode="after")
    def _operator_storage(self) -> Self:
        if self.br.runner != "tidb-operator":
            return self
        for field_name, uri in (("storage.uri", self.storage.uri), ("log_backup.storage_uri", self.log_storage_uri)):
            if not uri.startswith("s3://"):
                raise ValueError(f"{field_name}: br.runner tidb-operator writes to S3 only (s3://bucket/prefix)")
        if self.scratch_kubernetes is not None:
            raise ValueError(
                "br.runner: a scratch cluster made per drill (scratch_kubernetes) has no fixed TidbCluster for "
                "br.tidb_operator.tidbcluster; use br.runner kubernetes (or local) for it"
            )
        return self

    @model_validator(mode="after")
    def _kubernetes_secrets(self) -> Self:
        k8s = self.br.kubernetes
        if self.br.runner != "kubernetes" or k8s is None:
            return self
        if self.tls is not None and k8s.tls_secret_name is None:
            raise ValueError("br.kubernetes.tls_secret_name: this cluster uses TLS; name the Secret holding its PEMs")
        enc = self.br.encryption
        if enc is not None and enc.owner_key:
            raise ValueError("br.runner: owner-key encryption needs a fresh key per backup; use runner local")
        if enc is not None and k8s.crypter_secret_name is None:
            raise ValueError("br.kubernetes.crypter_secret_name: this cluster encrypts backups; name the key's Secret")
        return self

    @property
    def is_production(self) -> bool:
        """The one place that decides: ``production: true`` (the loader sets it for a fleet's
        ``production_envs``) or an env of prod, production, prd."""
        return self.production or self.env in PRODUCTION_ENVS

    @property
    def log_storage_uri(self) -> str:
        return self.log_backup.storage_uri or f"{self.storage.uri}/{self.name}/log"

    @property
    def retention_dry_run(self) -> bool:
        """``retention.dry_run``, defaulting to true for a production cluster (report only)."""
        return self.is_production if self.retention.dry_run is None else self.retention.dry_run


class AlertRoute(_Model):
    kind: Literal["smtp", "webhook", "slack", "log"]
    to: tuple[str, ...] = ()
    conn_id: ConnId | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == "smtp" and not self.to:
            raise ValueError("an smtp route needs 'to' (a list of addresses)")
        if self.kind in ("webhook", "slack") and not self.conn_id:
            raise ValueError(f"a {self.kind} route needs conn_id (the Airflow connection with the URL)")
        return self


class CatalogConfig(_Model):
    conn_id: ConnId | None = Field(default=None, description="Airflow connection of a MySQL-compatible DB")
    sqlite_path: str | None = Field(default=None, description="default: tidbops_catalog.db in Airflow's home")


class FleetSettings(_Model):
    """Fleet-wide knobs (``fleet:``): ``br_concurrency`` caps BR jobs at once across the fleet (#18)."""

    br_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "BR jobs at once fleet-wide: every BR task runs in the Airflow pool br_fleet of this many slots and "
            "takes its cluster's lease in the catalog (one BR job per cluster); unset: one pool br_<cluster> of "
            "1 slot per cluster and no fleet-wide cap"
        ),
    )


# ------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ConfigIssue:
    """One problem, one line: ``cluster 'uat': schedules.full: '61 * * * *' is not a valid cron …``.

    Its texts are redacted and kept on one line whoever builds it.
    """

    cluster: str | None
    field: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", one_line(redact(one_line(self.field, 1000)), 300))
        object.__setattr__(self, "message", one_line(redact(one_line(self.message, 4000)), 2000))

    def __str__(self) -> str:
        where = f"cluster {one_line(repr(self.cluster), 120)}: " if self.cluster is not None else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


@dataclass(frozen=True)
class Fleet:
    path: Path
    clusters: Mapping[str, ClusterConfig]
    issues: tuple[ConfigIssue, ...] = ()
    alert_routes: Mapping[str, AlertRoute] = field(default_factory=dict)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    settings: FleetSettings = field(default_factory=FleetSettings)

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


def _unusable(p: Path, message: str) -> ConfigError:
    """The file cannot be used as a whole: one redacted line naming it."""
    return ConfigError(one_line(redact(f"{p}: {one_line(message, 4000)}"), 2000))


# ------------------------------------------------------------------------------------ bytes and YAML


def _read_config(p: Path) -> bytes:
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise _unusable(p, f"cannot read the fleet config: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise _unusable(
            p,
            f"the fleet config is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB, the limit "
            "(a 500-cluster fleet is about 0.3 MiB); it was not read further",
        )
    return data


def _decode(data: bytes, p: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_column(data, exc.start)
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise _unusable(
            p,
            f"line {line} column {column} (byte {exc.start}): not UTF-8: byte 0x{data[exc.start]:02x}{hint}; "
            "save the file as UTF-8",
        ) from None


def _line_column(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[line_start:offset].decode("utf-8", "replace")) + 1


@dataclass(frozen=True)
class _Duplicate:
    path: tuple[str | int, ...]  # to the repeated key, inclusive
    key: str  # as it may be shown
    line: int
    column: int
    first_line: int


class _Open:
    """A collection the event pass is inside."""

    __slots__ = ("anchor", "count", "height", "key", "keys", "line", "mapping", "size")

    def __init__(self, mapping: bool, anchor: str | None, line: int) -> None:
        self.mapping = mapping
        self.anchor = anchor  # defined (for aliases) only once the collection ends: an alias inside is a cycle
        self.line = line
        self.size = 1
        self.height = 1
        self.count = 0  # children seen (a mapping's keys and values both count)
        self.key = ""  # a mapping's current key
        self.keys: dict[tuple[str, str], int] = {}  # a mapping's keys: (tag, text) -> line


def _where(mark: Any) -> str:
    return f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else "somewhere"


def _key_text(key: str) -> str:
    """A key as a path or message may show it: short, and never one that looks like a credential."""
    if len(key) > MAX_STRING:
        return f"‹a key of {len(key)} characters›"
    what = find_secret(key)
    return f"‹a key that looks like {what}›" if what else key


def _check_events(text: str, p: Path) -> list[_Duplicate]:
    """One iterative pass over libyaml's events (its parser keeps its own stack; the composer that runs
    next recurses in C) that refuses, before anything recurses or expands: nesting deeper than
    ``MAX_DEPTH``, more than ``MAX_VALUES`` values with aliases expanded (anchor chains, "billion laughs"),
    recursive, undefined or redefined anchors, a second document. It returns the duplicate keys, with the
    path to each (YAML would silently keep the last)."""
    loader = _Loader(text)
    duplicates: list[_Duplicate] = []
    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int, int]] = {}  # anchor -> (values, height, line)
    tags: dict[str, str] = {}  # a plain key's resolved tag, by its text
    total = 0
    documents = 0
    scalar, alias = yaml.ScalarEvent, yaml.AliasEvent
    seq_start, map_start = yaml.SequenceStartEvent, yaml.MappingStartEvent
    seq_end, map_end = yaml.SequenceEndEvent, yaml.MappingEndEvent
    try:
        while True:
            ev: Any = loader.get_event()
            cls = type(ev)
            if cls is scalar:
                size, height = 1, 0
                total += 1
                if ev.anchor is not None:
                    _check_anchor(anchors, stack, ev, p)
                    anchors[ev.anchor] = (1, 0, ev.start_mark.line + 1)
            elif cls is alias:
                got = anchors.get(ev.anchor)
                if got is None:
                    if any(o.anchor == ev.anchor for o in stack):
                        raise _unusable(
                            p,
                            f"{_where(ev.start_mark)}: alias *{one_line(ev.anchor, 40)} refers to a collection it "
                            "is inside (a recursive alias); the fleet config cannot hold cycles",
                        )
                    raise _unusable(
                        p,
                        f"{_where(ev.start_mark)}: alias *{one_line(ev.anchor, 40)} refers to no anchor "
                        "defined before it",
                    )
                size, height, _ = got
                total += size
                if len(stack) + height > MAX_DEPTH:
                    raise _unusable(
                        p,
                        f"{_where(ev.start_mark)}: alias *{one_line(ev.anchor, 40)} makes the document nested deeper "
                        f"than {MAX_DEPTH} levels (the fleet config needs 5)",
                    )
            elif cls is seq_start or cls is map_start:
                total += 1
                if len(stack) >= MAX_DEPTH:
                    raise _unusable(
                        p,
                        f"{_where(ev.start_mark)}: nested deeper than {MAX_DEPTH} levels (the fleet config needs 5); "
                        "not parsed further",
                    )
                if ev.anchor is not None:
                    _check_anchor(anchors, stack, ev, p)
                if stack and stack[-1].mapping and stack[-1].count % 2 == 0:
                    stack[-1].key = "‹key›"  # a collection as a key
                stack.append(_Open(cls is map_start, ev.anchor, ev.start_mark.line + 1))
                if total > MAX_VALUES:
                    raise _too_many(p, ev)
                continue
            elif cls is seq_end or cls is map_end:
                done = stack.pop()
                size, height = done.size, done.height
                if done.anchor is not None:
                    anchors[done.anchor] = (size, height, done.line)
            elif cls is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _unusable(
                        p,
                        f"{_where(ev.start_mark)}: a second YAML document; the fleet config must be one YAML document",
                    )
                continue
            elif cls is yaml.StreamEndEvent or ev is None:
                break
            else:
                continue
            if total > MAX_VALUES:
                raise _too_many(p, ev)
            if not stack:
                continue
            parent = stack[-1]  # the node just finished is one of its children
            parent.size += size
            if height >= parent.height:
                parent.height = height + 1
            if parent.mapping and parent.count % 2 == 0:
                if cls is scalar:
                    parent.key = _check_key(parent, ev, stack, loader, tags, duplicates)
                elif cls is alias:
                    parent.key = "‹key›"
            parent.count += 1
    except yaml.YAMLError as exc:
        raise _yaml_error(p, exc, text) from None
    finally:
        loader.dispose()
    return duplicates


def _check_anchor(anchors: dict[str, tuple[int, int, int]], stack: list[_Open], ev: Any, p: Path) -> None:
    first = anchors.get(ev.anchor)
    line = first[2] if first else next((o.line for o in stack if o.anchor == ev.anchor), None)
    if line is not None:
        raise _unusable(
            p,
            f"{_where(ev.start_mark)}: anchor &{one_line(ev.anchor, 40)} is defined twice (first at line {line}); "
            "give each anchor its own name",
        )


def _check_key(
    parent: _Open, ev: Any, stack: list[_Open], loader: Any, tags: dict[str, str], duplicates: list[_Duplicate]
) -> str:
    """Records a mapping's scalar key; a key seen before in the same mapping is a duplicate (a merge
    key ``<<`` merges instead, and may repeat)."""
    text: str = ev.value
    if ev.tag not in (None, "!"):
        tag = ev.tag
    elif ev.implicit[0]:
        tag = tags.get(text) or tags.setdefault(text, loader.resolve(yaml.ScalarNode, text, (True, False)))
    else:
        tag = "tag:yaml.org,2002:str"
    if tag == "tag:yaml.org,2002:merge":
        return text
    line = ev.start_mark.line + 1
    first = parent.keys.get((tag, text))
    if first is None:
        parent.keys[(tag, text)] = line
    else:
        key_text = _key_text(text)
        path = (*(_key_text(o.key) if o.mapping else o.count for o in stack[:-1]), key_text)
        duplicates.append(_Duplicate(path, key_text, line, ev.start_mark.column + 1, first))
    return text


def _too_many(p: Path, ev: Any) -> ConfigError:
    return _unusable(
        p,
        f"{_where(ev.start_mark)}: the document holds more than {MAX_VALUES} values once aliases are expanded "
        "(an alias counts as every value its anchor holds: a chain of anchors, a 'billion laughs', grows this "
        "way); refused to keep loading bounded",
    )


def _yaml_error(p: Path, exc: yaml.YAMLError, text: str) -> ConfigError:
    if isinstance(exc, yaml.reader.ReaderError):
        position = int(getattr(exc, "position", 0))
        if not _LIBYAML:  # pragma: no cover - the pure-Python reader counts characters
            position = len(text[:position].encode("utf-8"))
        line, column = _line_column(text.encode("utf-8"), position)
        character = getattr(exc, "character", None)
        what = f"character #x{character:04x}" if isinstance(character, int) else "a character"
        return _unusable(p, f"line {line} column {column}: not valid YAML: {what} is not allowed (control character)")
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    extra = ""
    if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
        extra = f" ({one_line(context, 80)} at line {context_mark.line + 1})"
    where = f"{_where(mark)}: " if mark is not None else ""
    return _unusable(p, f"{where}not valid YAML: {one_line(problem, 200)}{extra}")


class _Located(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__(node.tag)
        self.node = node


class _LocatingLoader(_Loader):
    """Constructs like the fast loader, but says which node a constructor failed on (the slow path, run
    only to name the line of a value that could not be constructed)."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (_Located, yaml.YAMLError):
            raise
        except Exception as exc:
            raise _Located(node) from exc


def _value_error(p: Path, text: str) -> ConfigError:
    loader = _LocatingLoader(text)
    try:
        loader.get_single_data()
    except _Located as exc:
        tag = str(exc.node.tag).rsplit(":", 1)[-1].lstrip("!") or "value"
        article = "an" if tag[:1] in "aeiou" else "a"
        return _unusable(
            p,
            f"{_where(exc.node.start_mark)}: this value cannot be read as {article} {one_line(tag, 40)} "
            "(e.g. a date that does not exist, or a number of more than 4300 digits)",
        )
    except Exception:  # noqa: S110 (the fast path failed; whatever this one says, the answer is the same)
        pass
    finally:
        loader.dispose()
    return _unusable(p, "a value cannot be read as its YAML type")


def _parse_yaml(text: str, p: Path) -> tuple[Any, list[_Duplicate]]:
    duplicates = _check_events(text, p)
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _yaml_error(p, exc, text) from None
    except Exception:  # a constructor failed on a value (a date that does not exist, an int of 5000 digits)
        raise _value_error(p, text) from None
    finally:
        loader.dispose()
    return doc, duplicates


# ------------------------------------------------------------------------------------ secrets & paths

_KeyPath = tuple[str | int, ...]
_ID_SUFFIXES = ("conn_id", "_id", "_ids")


def _path_text(path: _KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_.-]{1,80}|‹[^›]{1,80}›", part):
            out += f".{part}" if out else part
        else:
            out += f"[{shown(part, 40)}]"
    return out


def _findings(doc: Mapping[Any, Any]) -> list[tuple[_KeyPath, str]]:
    """Every value and key that must not be shown or loaded: credentials (``tidbops.redact``), values in
    secret-named fields, binary data, texts longer than ``MAX_STRING``. Walks the whole document (aliases
    expanded, which the event pass bounded), iteratively, in document order; each distinct text is checked
    once (``find_secret`` is linear in its text, which ``MAX_STRING`` bounds)."""
    found: list[tuple[_KeyPath, str]] = []
    texts: dict[str, str | None] = {}
    names: dict[str, bool] = {}

    def text_problem(text: str, what: str) -> str | None:
        if len(text) > MAX_STRING:
            return f"{what} of {len(text)} characters; no field takes more than {MAX_STRING}"
        if text not in texts:
            texts[text] = find_secret(text)
        secret = texts[text]
        if secret is None:
            return None
        prefix = "looks like" if what == "a value" else "a key that looks like"
        return f"{prefix} {secret}; {_USE_CONNECTIONS}"

    stack: list[tuple[Any, _KeyPath]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            children: list[tuple[Any, _KeyPath]] = []
            for key, value in node.items():
                k = key if isinstance(key, str) else shown(key, 80)
                problem = text_problem(k, "a key")
                if problem:
                    found.append((path, problem))
                    k = "‹key›"
                if k not in names:
                    names[k] = not k.endswith(_ID_SUFFIXES) and is_secret_name(k)
                if names[k] and value not in (None, "") and value != [] and value != {}:
                    # worded so that a redaction of the whole line ("password: …") leaves it readable
                    found.append(((*path, k), f"(secret-named field) holds a value; {_USE_CONNECTIONS}"))
                    continue
                children.append((value, (*path, k)))
            stack.extend(reversed(children))
        elif isinstance(node, list | tuple):
            stack.extend(reversed([(v, (*path, i)) for i, v in enumerate(node)]))
        elif isinstance(node, str):
            problem = text_problem(node, "a value")
            if problem:
                found.append((path, problem))
        elif isinstance(node, bytes | bytearray):
            found.append((path, "binary data (!!binary); no field takes binary values"))
        elif isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > 100:
            problem = text_problem(str(node), "a value") if node.bit_length() < 3400 else None
            if problem:
                found.append((path, problem))
    return found


def _count_values(node: Any, limit: int) -> int:
    """Values in ``node`` (aliases expanded), counting stops past ``limit``."""
    count = 0
    stack = [node]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return count


# --------------------------------------------------------------------------------------- validation


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto ``base`` (mappings merge, anything else replaces). New dicts only where
    both have a mapping; the rest is shared (nothing downstream mutates it). Depth is bounded by the
    event pass."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the field at ``loc`` (for listing valid field names)."""
    current: type[BaseModel] = model
    for part in loc:
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
    field_path = _path_text(tuple(p if isinstance(p, int) else str(p) for p in loc))
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        valid = sorted(owner.model_fields) if owner else []
        guess = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        return field_path, f"unknown field{hint}; valid fields: {', '.join(valid)}"
    if kind == "missing":
        return field_path, "required field is missing"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        owner = _model_at(model, loc)
        fields = f" ({', '.join(owner.model_fields)})" if owner else ""
        return field_path, f"must be a mapping{fields}; it is {_kind(value)}"
    msg = str(err["msg"])
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    if kind == "literal_error":
        msg = f"{shown(value)} is not valid; " + msg.replace("Input should be", "use")
    elif kind in ("list_type", "tuple_type"):
        msg = f"must be a list; it is {_kind(value)}"
    elif "input" in err and kind != "value_error" and not isinstance(value, dict | list | tuple):
        msg = f"{shown(value)}: {msg}"
    return field_path, msg


def _capped(issues: list[ConfigIssue], cluster: str | None, where: str) -> list[ConfigIssue]:
    if len(issues) <= MAX_ISSUES_PER_ENTRY:
        return issues
    more = len(issues) - MAX_ISSUES_PER_ENTRY
    return [*issues[:MAX_ISSUES_PER_ENTRY], ConfigIssue(cluster, where, f"… and {more} more problem(s) here")]


def _validate(model: type[BaseModel], raw: Any, cluster: str | None, prefix: str = "") -> tuple[Any, list[ConfigIssue]]:
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        issues = []
        for err in exc.errors()[: MAX_ISSUES_PER_ENTRY + 1]:
            path, msg = _describe(model, err)
            issues.append(ConfigIssue(cluster, f"{prefix}{path}" if path else prefix.rstrip("."), msg))
        if exc.error_count() > MAX_ISSUES_PER_ENTRY:
            more = exc.error_count() - MAX_ISSUES_PER_ENTRY
            issues = [
                *issues[:MAX_ISSUES_PER_ENTRY],
                ConfigIssue(cluster, prefix.rstrip("."), f"… and {more} more problem(s) here"),
            ]
        return None, issues


# ------------------------------------------------------------------------------------------- loading


def load_fleet(path: str | os.PathLike[str] | None = None) -> Fleet:
    """Load and validate the fleet config. Raises ``ConfigError`` only when the file is unusable as a whole."""
    p = Path(path) if path else default_config_path()
    return _load_bytes(_read_config(p), p)


def _load_bytes(data: bytes, p: Path) -> Fleet:
    text = _decode(data, p)
    doc, duplicates = _parse_yaml(text, p)
    return _load_doc(doc, duplicates, p)


class _Sections:
    """Problems found before validation (secrets, duplicate keys, over-long texts), by where they block."""

    def __init__(self) -> None:
        self.top: list[ConfigIssue] = []
        self.production_envs: list[ConfigIssue] = []
        self.defaults: list[ConfigIssue] = []
        self.routes: dict[str, list[ConfigIssue]] = {}
        self.catalog: list[ConfigIssue] = []
        self.clusters: dict[int, list[tuple[str, str]]] = {}  # entry -> (field inside it, message)

    def add(self, path: _KeyPath, message: str) -> None:
        head = path[0] if path else ""
        if head == "clusters" and len(path) >= 2 and isinstance(path[1], int):
            self.clusters.setdefault(path[1], []).append((_path_text(path[2:]), message))
        elif head == "defaults":
            self.defaults.append(ConfigIssue(None, _path_text(path), f"{message} (no cluster loads until it is fixed)"))
        elif head == "production_envs":
            self.production_envs.append(
                ConfigIssue(None, _path_text(path), f"{message} (no cluster loads until it is fixed)")
            )
        elif head == "alert_routes" and len(path) >= 2:
            self.routes.setdefault(str(path[1]), []).append(ConfigIssue(None, _path_text(path), message))
        elif head == "catalog":
            self.catalog.append(ConfigIssue(None, _path_text(path), message))
        else:
            self.top.append(ConfigIssue(None, _path_text(path), message))


def _load_doc(doc: Any, duplicates: list[_Duplicate], p: Path) -> Fleet:
    if doc is None:
        raise _unusable(p, "the fleet config is empty; it needs 'version: 1' and a 'clusters' list")
    if not isinstance(doc, dict):
        raise _unusable(p, f"the fleet config must be a mapping with a 'clusters' list; it is {_kind(doc)}")
    for dup in duplicates:
        if len(dup.path) == 1:
            raise _unusable(
                p,
                f"line {dup.line} column {dup.column}: duplicate key {shown(dup.key)} (first defined at line "
                f"{dup.first_line}); write each key once",
            )
    sections = _Sections()
    for where, message in _findings(doc):
        sections.add(where, message)
    for dup in duplicates:
        sections.add(
            dup.path,
            f"duplicate key {shown(dup.key)} at line {dup.line} (first defined at line {dup.first_line}); "
            "write each key once",
        )
    _check_version(doc, p)
    raw_clusters = _clusters_list(doc, p)

    issues: list[ConfigIssue] = []
    for key in doc:
        if key not in _TOP_LEVEL:
            key_text = _key_text(key) if isinstance(key, str) else shown(key, 40)
            guess = difflib.get_close_matches(key_text, _TOP_LEVEL, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            issues.append(
                ConfigIssue(
                    None, _path_text((key_text,)), f"unknown top-level key{hint}; valid: {', '.join(_TOP_LEVEL)}"
                )
            )
    issues += sections.top

    custom_envs, env_issues = _production_envs(doc.get("production_envs"), sections)
    issues += env_issues
    defaults, default_issues = _defaults(doc.get("defaults"), sections)
    issues += default_issues
    blocked = bool(env_issues or default_issues)

    routes, bad_routes, route_issues = _routes(doc.get("alert_routes"), sections)
    issues += route_issues
    if sections.catalog:
        catalog, errs = None, _capped(sections.catalog, None, "catalog")
    else:
        raw_catalog = doc.get("catalog")
        catalog, errs = _validate(CatalogConfig, {} if raw_catalog is None else raw_catalog, None, "catalog.")
    issues += errs
    raw_fleet = doc.get("fleet")
    settings, errs = _validate(FleetSettings, {} if raw_fleet is None else raw_fleet, None, "fleet.")
    issues += errs

    clusters: dict[str, ClusterConfig] = {}
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_clusters):
        if not isinstance(raw, dict):
            issues.append(
                ConfigIssue(
                    None,
                    f"clusters[{index}]",
                    f"each cluster entry must be a mapping of fields (name, env, pd, …); it is {_kind(raw)}",
                )
            )
            continue
        own = sections.clusters.get(index, [])
        name = _entry_name(raw, own)
        if name is None:
            label, prefix = None, f"clusters[{index}]"
        else:
            label, prefix = name, ""
        if name is not None and name in seen:
            issues.append(
                ConfigIssue(
                    name, "name", f"duplicate cluster name (also entry #{seen[name] + 1}); names must be unique"
                )
            )
            clusters.pop(name, None)
            continue
        if name is not None:
            seen[name] = index
        if own:
            found = [ConfigIssue(label, ".".join(x for x in (prefix, f) if x).replace(".[", "["), m) for f, m in own]
            issues += _capped(found, label, prefix)
            continue
        if blocked:
            continue  # never validate (and so never echo) what defaults or production_envs would change
        merged = _merge(defaults, raw)
        env = merged.get("env")
        if isinstance(env, str) and env.strip() in custom_envs:
            if merged.get("production") is False:
                issues.append(
                    ConfigIssue(
                        label,
                        f"{prefix}.production" if prefix else "production",
                        f"env {env.strip()!r} is production (production_envs); production: false cannot unmark it",
                    )
                )
                continue
            merged["production"] = True
        cluster, errs = _validate(ClusterConfig, merged, label, f"{prefix}." if prefix else "")
        issues += errs
        if cluster is not None and name is not None:
            clusters[name] = cluster

    issues += _cross_checks(clusters, routes, bad_routes, set(seen), custom_envs)
    bad = {i.cluster for i in issues if i.cluster is not None}
    good = {n: c for n, c in clusters.items() if n not in bad}
    return Fleet(
        path=p,
        clusters=good,
        issues=tuple(issues),
        alert_routes=routes,
        catalog=catalog or CatalogConfig(),
        settings=settings or FleetSettings(),
    )


def _check_version(doc: Mapping[Any, Any], p: Path) -> None:
    if "version" not in doc:
        return  # a file without a version is version 1
    version = doc["version"]
    known = " or ".join(str(v) for v in KNOWN_VERSIONS)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _unusable(p, f"version must be the number {known} (it is {_kind(version)})")
    if version not in KNOWN_VERSIONS:
        raise _unusable(p, f"version {shown(version)} is not known; this tidbops reads version {known}")


def _clusters_list(doc: Mapping[Any, Any], p: Path) -> list[Any]:
    if "clusters" not in doc:
        raise _unusable(p, "the fleet config has no 'clusters' list; add one (clusters: [...])")
    raw = doc["clusters"]
    if raw is None:
        raise _unusable(p, "'clusters' is empty (null); list the clusters under it, or write 'clusters: []'")
    if not isinstance(raw, list):
        raise _unusable(p, f"'clusters' must be a list of cluster entries; it is {_kind(raw)}")
    if len(raw) > MAX_CLUSTERS:
        raise _unusable(p, f"'clusters' has {len(raw)} entries; the limit is {MAX_CLUSTERS}")
    return raw


def _production_envs(raw: Any, sections: _Sections) -> tuple[frozenset[str], list[ConfigIssue]]:
    """The fleet's own production envs (added to prod, production, prd), or the problems with them."""
    if sections.production_envs:
        return frozenset(), _capped(sections.production_envs, None, "production_envs")
    if raw is None:
        return frozenset(), []
    blocked = "(no cluster loads until it is fixed: which clusters are production depends on it)"
    if not isinstance(raw, list):
        return frozenset(), [
            ConfigIssue(
                None, "production_envs", f"must be a list of env names, e.g. [live]; it is {_kind(raw)} {blocked}"
            )
        ]
    issues = [
        ConfigIssue(
            None,
            f"production_envs[{i}]",
            f"{shown(env)} is not a valid env; use a lower-case word such as live {blocked}",
        )
        for i, env in enumerate(raw)
        if not isinstance(env, str) or not ENV_NAME.match(env) or len(env) > MAX_ENV
    ]
    return (frozenset() if issues else frozenset(raw)), _capped(issues, None, "production_envs")


def _defaults(raw: Any, sections: _Sections) -> tuple[dict[str, Any], list[ConfigIssue]]:
    if sections.defaults:
        return {}, _capped(sections.defaults, None, "defaults")
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [
            ConfigIssue(
                None,
                "defaults",
                f"must be a mapping of cluster fields (storage, br, schedules, …); it is {_kind(raw)} "
                "(no cluster loads until it is fixed)",
            )
        ]
    if _count_values(raw, MAX_DEFAULTS_VALUES) > MAX_DEFAULTS_VALUES:
        return {}, [
            ConfigIssue(
                None,
                "defaults",
                f"holds more than {MAX_DEFAULTS_VALUES} values; it is merged into every cluster, keep it small "
                "(no cluster loads until it is fixed)",
            )
        ]
    return raw, []


def _routes(raw: Any, sections: _Sections) -> tuple[dict[str, AlertRoute], set[str], list[ConfigIssue]]:
    routes: dict[str, AlertRoute] = {}
    bad: set[str] = set(sections.routes)
    issues: list[ConfigIssue] = []
    for name, found in sections.routes.items():
        issues += _capped(found, None, f"alert_routes.{name}")
    if raw is None:
        return routes, bad, issues
    if not isinstance(raw, dict):
        issues.append(
            ConfigIssue(
                None,
                "alert_routes",
                f"must be a mapping of route name to route (kind, to, conn_id); it is {_kind(raw)}",
            )
        )
        return routes, bad, issues
    for name, route_raw in raw.items():
        key = name if isinstance(name, str) else shown(name, 40)
        if key in sections.routes or _key_text(key) != key:
            bad.add(key)
            continue  # its problems are listed already (a name that looks like a secret among them)
        if not isinstance(name, str) or not ROUTE_NAME.match(name):
            issues.append(
                ConfigIssue(
                    None,
                    _path_text(("alert_routes", key)),
                    "not a valid route name; use letters, digits, '-', '_' or '.', at most 64 characters",
                )
            )
            bad.add(key)
            continue
        route, errs = _validate(AlertRoute, route_raw, None, f"alert_routes.{name}.")
        issues += errs
        if route is None:
            bad.add(name)
        else:
            routes[name] = route
    return routes, bad, issues


def _entry_name(raw: Mapping[Any, Any], own: list[tuple[str, str]]) -> str | None:
    """A cluster entry's name, normalised once (surrounding whitespace dropped; case kept, and refused by
    the name pattern with a hint), or None when it has none that may be shown."""
    name = raw.get("name")
    if not isinstance(name, str) or any(f == "name" for f, _ in own):
        return None
    name = name.strip()
    if not name or len(name) > 100:
        return None
    return name


def _production_reason(c: ClusterConfig, custom_envs: frozenset[str]) -> str:
    if c.env in PRODUCTION_ENVS:
        return f"env {c.env!r} is production"
    if c.env in custom_envs:
        return f"env {c.env!r} is production (production_envs)"
    return "production: true marks it production"


def _cross_checks(
    clusters: Mapping[str, ClusterConfig],
    routes: Mapping[str, AlertRoute],
    bad_routes: set[str],
    names: set[str],
    custom_envs: frozenset[str],
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    scratch = _listing(sorted(n for n, c in clusters.items() if c.scratch))
    known = _listing(sorted(clusters))
    pd_owner: dict[str, str] = {}
    for name, c in clusters.items():
        if c.drill.target is not None:
            target = clusters.get(c.drill.target)
            if target is None or not target.scratch:
                if c.drill.target in clusters:
                    why = "is not marked scratch: true"
                elif c.drill.target in names:
                    why = "has problems of its own"
                else:
                    why = "is not a cluster"
                issues.append(
                    ConfigIssue(name, "drill.target", f"{shown(c.drill.target)} {why}; scratch clusters: {scratch}")
                )
        elif c.schedules.drill is not None:
            issues.append(
                ConfigIssue(
                    name, "drill.target", f"a drill is scheduled but no target is set; scratch clusters: {scratch}"
                )
            )
        for i, t in enumerate(c.restore.allowed_targets):
            where = f"restore.allowed_targets[{i}]"
            target = clusters.get(t)
            if target is None:
                why = "has problems of its own" if t in names else "is not a cluster"
                issues.append(ConfigIssue(name, where, f"{shown(t)} {why}; known: {known}"))
            elif t == name and not c.restore.allow_in_place:
                issues.append(
                    ConfigIssue(
                        name,
                        where,
                        "lists the cluster itself; set restore.allow_in_place: true to allow in-place restores",
                    )
                )
            elif target.is_production and not c.restore.allow_production_targets:
                issues.append(
                    ConfigIssue(
                        name,
                        where,
                        f"{t!r} is a production cluster; set restore.allow_production_targets: true to allow "
                        "restores into it",
                    )
                )
        if (
            c.restore.allow_in_place
            and c.is_production
            and not c.restore.allow_production_targets
            and name not in c.restore.allowed_targets
        ):
            issues.append(
                ConfigIssue(
                    name,
                    "restore.allow_in_place",
                    f"{name} is a production cluster; set restore.allow_production_targets: true to allow "
                    "restoring it in place",
                )
            )
        for i, r in enumerate(c.alerts):
            if r in bad_routes:
                issues.append(
                    ConfigIssue(name, f"alerts[{i}]", f"alert route {r!r} has problems (see alert_routes.{r})")
                )
            elif r not in routes:
                issues.append(
                    ConfigIssue(
                        name,
                        f"alerts[{i}]",
                        f"{shown(r)} is not an alert route; defined routes: {_listing(sorted(routes))}",
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
                ConfigIssue(
                    name,
                    "scratch",
                    f"{_production_reason(c, custom_envs)}; a production cluster can never be scratch",
                )
            )
        for addr in c.pd:
            other = pd_owner.setdefault(pd_identity(addr), name)
            if other != name:
                issues.append(
                    ConfigIssue(
                        name, "pd", f"{addr!r} is also the PD of cluster {other!r}; each cluster needs its own PD"
                    )
                )
    return issues


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "::1"})


def pd_identity(addr: str) -> str:
    """The PD endpoint an address names, for "each cluster its own PD": the scheme dropped, the host
    lower-cased without a trailing dot, every loopback spelling (``localhost``, ``127.x.x.x``, ``::1``,
    ``[::1]``) one, the port BR's default 2379 when none is written. Text that differs but names the same
    PD is the same PD."""
    text = addr.strip().split("://", 1)[-1].rstrip("/")
    port = "2379"
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":") or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text  # a bare host, or a bare IPv6 address
    host = host.lower().rstrip(".")
    if host in _LOOPBACK_NAMES or re.fullmatch(r"127(\.\d{1,3}){3}", host) or host == "0:0:0:0:0:0:0:1":
        host = "loopback"
    return f"{host}:{int(port) if port.isdigit() else port}"


# --------------------------------------------------------------------------------------------- cache

_MEMO: OrderedDict[tuple[str, str, str | None], Fleet] = OrderedDict()
_MEMO_SIZE = 8


def load_fleet_cached(
    path: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> Fleet:
    """``load_fleet``, validated once per config content.

    DAG files call this: within one process every DAG file shares one load, and with ``cache_dir`` (a
    private directory: ours, mode 0700, not a symlink; anything else is neither read nor written) the
    dag-processor's many short-lived parse processes share one validation too. The key is the file's
    path, its content (read once: the fleet served is the one of the bytes hashed) and this module's own
    version, so an edited config or a new model is never served stale.
    """
    p = Path(path) if path else default_config_path()
    data = _read_config(p)
    digest = hashlib.sha256(str(p).encode("utf-8", "surrogateescape") + b"\0" + _MODEL_VERSION + b"\0" + data)
    key = (str(p), digest.hexdigest()[:32], str(cache_dir) if cache_dir else None)
    fleet = _MEMO.get(key)
    if fleet is not None:
        _MEMO.move_to_end(key)
        return fleet
    name = f"fleet-{key[1]}.pickle"
    dir_fd = _private_dir(key[2]) if key[2] else None
    try:
        fleet = _read_cache(dir_fd, name) if dir_fd is not None else None
        if fleet is None:
            fleet = _load_bytes(data, p)
            if dir_fd is not None and key[2] is not None:
                _write_cache(key[2], dir_fd, name, fleet)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    _MEMO[key] = fleet
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return fleet


def _private_dir(cache_dir: str) -> int | None:
    """A descriptor of ``cache_dir`` (made 0700 if missing) when it is a real directory (not a symlink),
    owned by us, that nobody else may enter; else None: such a directory is neither read nor written."""
    try:
        os.mkdir(cache_dir, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        fd = os.open(cache_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        return None
    return fd


def _read_cache(dir_fd: int, name: str) -> Fleet | None:
    """Our own cache file (a regular file, ours, 0600, not a symlink), else None: pickle runs code on load."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077 or st.st_nlink != 1:
            return None
        data = f.read()
    try:
        fleet = pickle.loads(data)  # noqa: S301 (our own 0600 file in our own 0700 directory, checked above)
    except Exception:  # a stale or torn cache is just a miss
        return None
    return fleet if isinstance(fleet, Fleet) else None


def _write_cache(cache_dir: str, dir_fd: int, name: str, fleet: Fleet) -> None:
    """Write through ``tempfile.mkstemp`` (a new 0600 file, O_EXCL, never through a planted link) into the
    directory checked by ``_private_dir``, then rename it into place within that same directory."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fleet-", suffix=".tmp", dir=cache_dir)
    except OSError:
        return  # a read-only home only costs speed
    tmp_name = os.path.basename(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            made = os.fstat(f.fileno())
            here = os.stat(tmp_name, dir_fd=dir_fd, follow_symlinks=False)
            if (made.st_dev, made.st_ino) != (here.st_dev, here.st_ino):
                raise OSError("the cache directory was replaced while writing")
            f.write(pickle.dumps(fleet, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _model_version() -> bytes:
    here = Path(__file__)
    st = here.stat()
    return f"{st.st_mtime_ns}:{st.st_size}:{sys.version_info[:2]}".encode()


_MODEL_VERSION = _model_version()
