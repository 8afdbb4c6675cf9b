"""The playground registry: which emulated clusters exist, where their SQL side listens, and the S3 server.

One JSON file, ``$TIDBOPS_PLAYGROUND_HOME/registry.json`` (mode 0600: it holds the playground's own
generated passwords). The ``br`` emulator reads it to map a ``--pd`` address to the MariaDB server that
stands in for that cluster; ``tidbops playground`` writes it. Production code never reads it.

Layout of the playground home::

    registry.json                 this file's data
    faults.json                   fault injection (see faults.py)
    clusters/<name>/data/         MariaDB datadir
    clusters/<name>/mariadb.sock  .pid .err
    clusters/<name>/pd.json       emulated PD state (GC safepoint, service safepoints, log task), owned by br
    logs/                         daemon, writer and S3 server logs
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

REGISTRY_FILE = "registry.json"
DEFAULT_HOME = Path.home() / ".tidbops-playground"


def playground_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The playground home: the explicit path, else ``$TIDBOPS_PLAYGROUND_HOME``, else ``~/.tidbops-playground``."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("TIDBOPS_PLAYGROUND_HOME")
    return Path(env).expanduser().resolve() if env else DEFAULT_HOME


@dataclass(frozen=True)
class ClusterEntry:
    """One emulated TiDB cluster: a private MariaDB server plus a fake PD address."""

    name: str
    kind: Literal["source", "scratch"]
    pd: str  # fake PD address, e.g. "127.0.0.1:23791"; nothing listens there
    sql_host: str
    sql_port: int
    sql_user: str
    sql_password: str
    cluster_id: int  # what BR records as ClusterId in backupmeta
    tidb_version: str  # e.g. "v8.5.1"; MariaDB reports VERSION() = "8.0.11-TiDB-<tidb_version>"
    store_ids: tuple[int, ...] = (1, 4, 5)  # emulated TiKV store ids
    tls_ca: str = ""  # a TLS cluster: the CA its server certificate is signed by (``tlsgen``); "" plain

    def sql_ssl(self) -> dict[str, str] | None:
        """pymysql's ``ssl=`` for this cluster's SQL side (it requires secure transport when TLS); None plain."""
        return {"ca": self.tls_ca} if self.tls_ca else None

    def cluster_dir(self, home: Path) -> Path:
        return home / "clusters" / self.name

    def socket(self, home: Path) -> Path:
        return self.cluster_dir(home) / "mariadb.sock"

    def pd_state_file(self, home: Path) -> Path:
        return self.cluster_dir(home) / "pd.json"


@dataclass(frozen=True)
class S3Endpoint:
    """The local S3 server (moto in server mode) and the bucket backups go to."""

    endpoint: str  # "http://127.0.0.1:<port>"
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


@dataclass(frozen=True)
class Registry:
    clusters: dict[str, ClusterEntry] = field(default_factory=dict)
    s3: S3Endpoint | None = None

    def by_pd(self, pd_addresses: list[str]) -> ClusterEntry | None:
        """The cluster one of whose PD addresses is given (BR takes a comma-separated list)."""
        wanted = {_normalise_pd(a) for a in pd_addresses if a.strip()}
        for entry in self.clusters.values():
            if _normalise_pd(entry.pd) in wanted:
                return entry
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "clusters": {n: {**asdict(c), "store_ids": list(c.store_ids)} for n, c in self.clusters.items()},
            "s3": asdict(self.s3) if self.s3 else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Registry:
        clusters = {
            name: ClusterEntry(**{**raw, "store_ids": tuple(raw.get("store_ids", (1, 4, 5)))})
            for name, raw in data.get("clusters", {}).items()
        }
        s3 = S3Endpoint(**data["s3"]) if data.get("s3") else None
        return cls(clusters=clusters, s3=s3)


def _normalise_pd(address: str) -> str:
    a = address.strip()
    for scheme in ("http://", "https://"):
        if a.startswith(scheme):
            a = a[len(scheme) :]
    return a.rstrip("/").replace("localhost:", "127.0.0.1:")


def load_registry(home: Path | None = None) -> Registry:
    """The registry, or an empty one when the playground was never brought up."""
    path = (home or playground_home()) / REGISTRY_FILE
    if not path.exists():
        return Registry()
    return Registry.from_json(json.loads(path.read_text()))


def save_registry(registry: Registry, home: Path | None = None) -> Path:
    """Write the registry atomically with mode 0600."""
    home = home or playground_home()
    home.mkdir(parents=True, exist_ok=True)
    path = home / REGISTRY_FILE
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".registry.")
    with os.fdopen(fd, "w") as fh:
        json.dump(registry.to_json(), fh, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
