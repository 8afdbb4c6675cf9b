"""Pieces shared by the commands: connecting to the emulated cluster (BR's ``NewMgr``), version checks,
storage with faults, the backupmeta (JSON, optionally encrypted) and the ``mysql.tidb`` mirror."""

from __future__ import annotations

import json
import time
from typing import Any

from . import db as dbm
from .cli import CommonConfig, build_info, emulated_version, version_tuple
from .crypter import Cipher
from .errors import BRError, br_error, plain
from .output import LOG
from .pd import Cluster, resolve_cluster
from .storage import ExternalStorage, WriteFault, open_storage

META_FILE = "backupmeta"
LOCK_FILE = "backup.lock"
LOCK_CONTENT = b"DO NOT DELETE\nThis file exists to remind other backup jobs won't use this path"
EMULATOR_FORMAT = "tidbops-br-emulator/1"

GC_ROW_COMMENTS = {
    "tikv_gc_leader_uuid": "Current GC worker leader UUID. (DO NOT EDIT)",
    "tikv_gc_leader_desc": "Host name and pid of current GC leader. (DO NOT EDIT)",
    "tikv_gc_leader_lease": "Current GC worker leader lease. (DO NOT EDIT)",
    "tikv_gc_auto_concurrency": (
        "Let TiDB pick the concurrency automatically. If set false, tikv_gc_concurrency will be used"
    ),
    "tikv_gc_enable": "Current GC enable status",
    "tikv_gc_run_interval": "GC run interval, at least 10m, in Go format.",
    "tikv_gc_life_time": "All versions within life time will not be collected by GC, at least 10m, in Go format.",
    "tikv_gc_last_run_time": "The time when last GC starts. (DO NOT EDIT)",
    "tikv_gc_safe_point": "All versions after safe point can be accessed. (DO NOT EDIT)",
    "tikv_gc_scan_lock_mode": 'Mode of scanning locks, "physical" or "legacy"',
    "tikv_gc_mode": 'Mode of GC, "central" or "distributed"',
    "new_collation_enabled": (
        "If the new collations are enabled. Notice: This cannot be changed once the cluster is bootstrapped."
    ),
}


def connect_cluster(cfg: CommonConfig) -> Cluster:
    """``NewMgr``: find the cluster behind ``--pd``, check that it answers and (optionally) its version."""
    cluster = resolve_cluster(cfg.pd, ca=cfg.tls_ca)
    conn = dbm.connect(cluster.entry)
    try:
        if cfg.check_requirements:
            check_cluster_version(cluster)
        ensure_mysql_tidb(conn)
    finally:
        conn.close()
    LOG.info("conn.go:167", "new mgr", ("pdAddrs", ",".join(cfg.pd)))
    return cluster


def check_cluster_version(cluster: Cluster) -> None:
    br_major = version_tuple()[0]
    cluster_v = cluster.entry.tidb_version or emulated_version()
    if version_tuple(cluster_v)[0] != br_major:
        store = cluster.entry.store_ids[0] if cluster.entry.store_ids else 1
        raise br_error(
            "ErrVersionMismatch",
            f"TiKV node 127.0.0.1:{20160 + store} version {cluster_v.lstrip('v')} and BR {emulated_version()} "
            "major version mismatch, please use the same version of BR",
        ).annotate(
            "running BR in incompatible version of cluster, if you believe it's OK, "
            "use --check-requirements=false to skip."
        )


def ensure_mysql_tidb(conn: dbm.Connection) -> None:
    """``mysql.tidb`` as TiDB bootstraps it (only the rows BR and GC tooling read)."""
    dbm.execute(
        conn,
        "CREATE TABLE IF NOT EXISTS mysql.tidb (VARIABLE_NAME varchar(64) NOT NULL PRIMARY KEY, "
        "VARIABLE_VALUE varchar(1024) DEFAULT NULL, COMMENT varchar(1024)) ENGINE=InnoDB",
    )
    defaults = {
        "new_collation_enabled": "True",
        "tikv_gc_life_time": "10m0s",
        "tikv_gc_run_interval": "10m0s",
        "tikv_gc_enable": "true",
        "tikv_gc_auto_concurrency": "true",
        "tikv_gc_scan_lock_mode": "legacy",
        "tikv_gc_mode": "distributed",
    }
    values = ",".join(
        f"({dbm.sql_str(k)}, {dbm.sql_str(v)}, {dbm.sql_str(GC_ROW_COMMENTS.get(k, ''))})" for k, v in defaults.items()
    )
    dbm.execute(conn, f"INSERT IGNORE INTO mysql.tidb (VARIABLE_NAME, VARIABLE_VALUE, COMMENT) VALUES {values}")


def read_tidb_var(conn: dbm.Connection, name: str, default: str) -> str:
    rows = dbm.query(conn, "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = " + dbm.sql_str(name))
    return str(rows[0][0]) if rows and rows[0][0] is not None else default


def write_fault_for(cluster: Cluster | None) -> WriteFault | None:
    if cluster is None:
        return None
    fault = cluster.faults().get("storage_write_error")
    if fault is None:
        return None
    return WriteFault(int(fault.get("after", 0)))


def get_storage(raw: str, cfg: CommonConfig, cluster: Cluster | None) -> ExternalStorage:
    return open_storage(raw, cfg.s3, cfg.send_creds, write_fault_for(cluster))


def encode_meta(meta: dict[str, Any], cipher: Cipher) -> bytes:
    return cipher.encrypt(json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def decode_meta(data: bytes, cipher: Cipher) -> dict[str, Any]:
    try:
        raw = cipher.decrypt(data)
    except BRError as exc:
        raise exc.annotate("decrypt failed with wrong key") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise plain(
            "parse backupmeta failed because of wrong aes cipher: proto: BackupMeta: illegal tag 0 (wire type 0)"
        ) from None
    if not isinstance(meta, dict):
        raise plain("parse backupmeta failed because of wrong aes cipher: unexpected EOF")
    return meta


def read_backup_meta(storage: ExternalStorage, cipher: Cipher) -> dict[str, Any]:
    """``task.ReadBackupMeta``."""
    try:
        data = storage.read_file(META_FILE)
    except BRError as exc:
        raise exc.annotate("load backupmeta failed") from None
    return decode_meta(data, cipher)


def new_backup_meta(cluster: Cluster, start_version: int, end_version: int, new_collation: str) -> dict[str, Any]:
    return {
        "ClusterId": cluster.entry.cluster_id,
        "ClusterVersion": f'"{(cluster.entry.tidb_version or emulated_version()).lstrip("v")}"',
        "BrVersion": "BR\n" + build_info(),
        "StartVersion": start_version,
        "EndVersion": end_version,
        "NewCollationsEnabled": new_collation,
        "IsRawKv": False,
        "IsTxnKv": False,
        "ApiVersion": 0,
        "Version": 1,
        "BackupSize": 0,
        "Emulator": {"format": EMULATOR_FORMAT, "created_at": time.time()},
    }


def is_log_backup_meta(meta: dict[str, Any]) -> bool:
    return bool(meta.get("Emulator", {}).get("log_backup"))
