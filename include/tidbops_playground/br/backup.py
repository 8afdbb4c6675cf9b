"""``br backup full|db|table`` — snapshot and incremental backups (``task.RunBackup``).

Storage layout written (in this order): ``backup.lock``; ``checkpoints/backup/checkpoint.meta`` and
``checkpoint.lock`` (checkpoint mode); data files ``store<id>/<region>_<epoch>_<keyhash>_<ts>_write.sst``
(the emulator's container, see ``codec``) with per-table ``checkpoints/backup/data/*.cpt`` records;
``backupmeta`` LAST; then ``checkpoints/backup/`` is removed.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import cancel, codec
from . import db as dbm
from .cli import CommonConfig, Runtime, parse_common
from .common import (
    LOCK_CONTENT,
    LOCK_FILE,
    META_FILE,
    connect_cluster,
    encode_meta,
    get_storage,
    new_backup_meta,
    read_tidb_var,
)
from .errors import BRError, br_error, plain
from .output import LOG, SUMMARY, Progress
from .pd import Cluster, alloc_ts, check_gc_safepoint, update_service_safepoint
from .storage import ExternalStorage
from .tso import TSParseError, compose, logical, parse_ts_string, physical, ts_to_read_us, us_to_sql

CHECKPOINT_DIR = "checkpoints/backup"
CHECKPOINT_META = f"{CHECKPOINT_DIR}/checkpoint.meta"
CHECKPOINT_LOCK = f"{CHECKPOINT_DIR}/checkpoint.lock"
ROWS_PER_FILE = 20000
DEFAULT_GC_TTL = 300
CHECKPOINT_GC_TTL = 4320
SETTLE_SECONDS = 0.25


@dataclass
class BackupConfig:
    common: CommonConfig
    timeago_ns: int
    last_backup_ts: int
    backup_ts: int
    gc_ttl: int
    concurrency: int
    compression: str
    compression_level: int
    use_checkpoint: bool
    ignore_stats: bool
    filter_desc: list[str] = field(default_factory=list)


def run_full(rt: Runtime) -> None:
    _run(rt, "Full Backup")


def run_db(rt: Runtime) -> None:
    _run(rt, "Database Backup")


def run_table(rt: Runtime) -> None:
    _run(rt, "Table Backup")


def parse_backup_flags(rt: Runtime) -> BackupConfig:
    """``BackupConfig.ParseFromFlags`` (same order, so the first error matches)."""
    timeago = int(rt.get("timeago"))
    if timeago < 0:
        raise br_error("ErrInvalidArgument", "negative timeago is not allowed")
    last = int(rt.get("lastbackupts"))
    try:
        backup_ts = parse_ts_string(rt.get("backupts"), tz_check=False)
    except TSParseError as exc:
        raise plain(str(exc)) from None
    use_checkpoint = bool(rt.get("use-checkpoint"))
    if last > 0:
        use_checkpoint = False
        LOG.info("backup.go:214", "since incremental backup is used, turn off checkpoint mode")
    compression = codec.parse_compression(rt.get("compression"))
    common = parse_common(rt)
    label = rt.get("replica-read-label")
    if label and len(label.split(":")) != 2:
        raise br_error("ErrInvalidArgument", f"invalid replica read label '{label}'")
    if rt.has("type") and rt.get("type") not in ("kv", "aws-ebs"):
        raise plain("invalid full backup type")
    if rt.has("type") and rt.get("type") == "aws-ebs":
        raise BRError("EBS volume snapshot backup (--type=aws-ebs) is not emulated by the br emulator")
    return BackupConfig(
        common=common,
        timeago_ns=timeago,
        last_backup_ts=last,
        backup_ts=backup_ts,
        gc_ttl=int(rt.get("gcttl")),
        concurrency=int(rt.get("concurrency")),
        compression=compression,
        compression_level=int(rt.get("compression-level")),
        use_checkpoint=use_checkpoint,
        ignore_stats=bool(rt.get("ignore-stats")),
    )


def _run(rt: Runtime, cmd_name: str) -> None:
    cfg = parse_backup_flags(rt)
    try:
        Backup(cfg, cmd_name, rt).run()
    finally:
        SUMMARY.emit(cmd_name)


def config_hash(cfg: BackupConfig, cluster: Cluster) -> str:
    c = cfg.common
    data = {
        "last-backup-ts": cfg.last_backup_ts,
        "ignore-stats": cfg.ignore_stats,
        "use-checkpoint": cfg.use_checkpoint,
        "storage": c.storage,
        "pd": c.pd,
        "send-credentials-to-tikv": c.send_creds,
        "filter-strings": c.filter_str or sorted(c.schemas | c.tables),
        "cipher": {"method": c.cipher.method, "key-sha256": hashlib.sha256(c.cipher.key).hexdigest()},
        "cluster": cluster.entry.cluster_id,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class Backup:
    def __init__(self, cfg: BackupConfig, cmd_name: str, rt: Runtime) -> None:
        self.cfg = cfg
        self.cmd_name = cmd_name
        self.rt = rt
        self.files_written = 0
        self.region_id = 1000

    # ------------------------------------------------------------------ main flow
    def run(self) -> None:
        cfg, c = self.cfg, self.cfg.common
        concurrency = cfg.concurrency or 4
        concurrency = min(concurrency, 256)
        if c.rate_limit:
            if cfg.concurrency != 0:
                from .tso import human_size

                LOG.warn_term(
                    "backup.go:339",
                    "setting `--ratelimit` and `--concurrency` at the same time, ignoring `--concurrency`: "
                    "`--ratelimit` forces sequential (i.e. concurrency = 1) backup",
                    ("ratelimit", human_size(c.rate_limit) + "/s"),
                    ("concurrency-specified", cfg.concurrency),
                )
            concurrency = 1
        gc_ttl = cfg.gc_ttl or DEFAULT_GC_TTL
        cluster = connect_cluster(c)
        self.cluster = cluster
        faults = cluster.faults()
        conn = dbm.connect(cluster.entry)
        self.conn = conn
        new_collation = read_tidb_var(conn, "new_collation_enabled", "True")
        LOG.info(
            "backup.go:402",
            "get new_collations_enabled_on_first_bootstrap config from mysql.tidb table",
            ("new_collation_enabled", new_collation),
        )

        storage = get_storage(c.storage, c, cluster)
        self.storage = storage
        cp_meta = self._check_storage_not_in_use(storage)
        cfg_hash = config_hash(cfg, cluster)
        if cp_meta is not None and cp_meta.get("config-hash") != cfg_hash:
            raise br_error(
                "ErrInvalidArgument",
                f"failed to backup to {storage.uri}, because the checkpoint mode is used, but the hashs of the "
                "configs are not the same. Please check the config",
            )
        storage.write_file(LOCK_FILE, LOCK_CONTENT)
        if cfg.use_checkpoint and gc_ttl == DEFAULT_GC_TTL:
            gc_ttl = CHECKPOINT_GC_TTL
            LOG.info("backup.go:433", "use checkpoint's default GC TTL", ("GC TTL", gc_ttl))

        backup_ts = self._get_ts(cp_meta)
        SUMMARY.record("BackupTS", backup_ts)
        sp_id = str(cp_meta["gc-service-id"]) if cp_meta else f"br-{uuid.uuid4()}"
        sp_ts = cfg.last_backup_ts if cfg.last_backup_ts > 0 else backup_ts
        with cluster.state() as st:
            update_service_safepoint(st, sp_id, sp_ts, gc_ttl)
        LOG.info(
            "backup.go:457",
            "current backup safePoint job",
            ("safePoint", f'{{ID={sp_id},TTL={gc_ttl},BackupTime="{_ts_time(sp_ts)}",BackupTS={sp_ts}}}'),
        )
        keep_safepoint = False
        try:
            self._backup_body(
                cfg, cluster, storage, conn, backup_ts, new_collation, cp_meta, cfg_hash, sp_id, concurrency, faults
            )
        except BaseException:
            keep_safepoint = cfg.use_checkpoint
            raise
        finally:
            if keep_safepoint:
                LOG.info("backup.go:470", "skip removing gc-safepoint keeper for next retry", ("gc-id", sp_id))
            else:
                with cluster.state() as st:
                    update_service_safepoint(st, sp_id, sp_ts, 0)
                LOG.info("backup.go:480", "finish removing gc-safepoint keeper")
            conn.close()

    def _check_storage_not_in_use(self, storage: ExternalStorage) -> dict[str, Any] | None:
        """``SetStorageAndCheckNotInUse`` (texts from ``backup/client.go``)."""
        if storage.file_exists(META_FILE):
            raise br_error(
                "ErrInvalidArgument",
                f"backup meta file exists in {storage.uri}/{META_FILE}, there may be some backup files in the path "
                "already, please specify a correct backup directory!",
            )
        if storage.file_exists(CHECKPOINT_META):
            LOG.info("client.go:310", "load the checkpoint meta, so the existence of lockfile is allowed.")
            try:
                return dict(json.loads(storage.read_file(CHECKPOINT_META)))
            except (ValueError, BRError) as exc:
                raise plain(f"error occurred when loading {CHECKPOINT_META} file: {exc}") from None
        if storage.file_exists(LOCK_FILE):
            for path, _size in storage.walk():
                if path.endswith(".sst"):
                    raise br_error(
                        "ErrInvalidArgument",
                        f"backup lock file and sst file exist in {storage.uri}/{LOCK_FILE}, there are some backup "
                        "files in the path already, but hasn't checkpoint metadata, please specify a correct backup "
                        "directory!",
                    )
        return None

    def _get_ts(self, cp_meta: dict[str, Any] | None) -> int:
        cfg = self.cfg
        if cp_meta is not None:
            ts = int(cp_meta["backup-ts"])
            LOG.info("client.go:381", "reuse checkpoint BackupTS", ("backup-ts", ts))
            return ts
        if cfg.backup_ts > 0:
            ts = cfg.backup_ts
        else:
            with self.cluster.state() as st:
                ts = alloc_ts(st)
            if cfg.timeago_ns > 0:
                ago_ms = cfg.timeago_ns // 1_000_000
                if physical(ts) < ago_ms:
                    raise br_error("ErrInvalidArgument", "backup ts overflow please choose a smaller timeago")
                ts = compose(physical(ts) - ago_ms, logical(ts))
        check_gc_safepoint(self.cluster, ts)
        LOG.info("client.go:420", "get backup ts", ("ts", ts))
        # let statements that started before the TS commit before the snapshot read starts
        wait = (ts_to_read_us(ts) / 1e6 + SETTLE_SECONDS) - time.time()
        if 0 < wait <= SETTLE_SECONDS:
            time.sleep(wait)
        return ts

    # ------------------------------------------------------------------ schemas
    def _collect_schemas(
        self, conn: dbm.Connection, backup_ts: int
    ) -> tuple[list[dict[str, Any]], list[dbm.TableInfo]]:
        flt = self.cfg.common.table_filter
        dbs: list[dict[str, Any]] = []
        tables: list[dbm.TableInfo] = []
        read_us = ts_to_read_us(backup_ts)
        for db in dbm.list_user_databases(conn):
            if not flt.match_schema(db):
                continue
            has_table = False
            db_tables: list[dbm.TableInfo] = []
            for name, ttype, ctime in dbm.list_tables(conn, db):
                if ttype == "SEQUENCE" or not flt.match_table(db, name):
                    continue
                if ctime and _created_after(str(ctime), read_us):
                    LOG.info("client.go:731", "skip table created after the backup ts", ("db", db), ("table", name))
                    continue
                db_tables.append(dbm.describe_table(conn, db, name, ttype, str(ctime) if ctime else None))
                has_table = True
            if not has_table:
                LOG.info("client.go:765", "backup empty database", ("db", db))
            dbs.append({"name": db, "create_sql": dbm.show_create_database(conn, db)})
            tables.extend(db_tables)
        return dbs, tables

    def _privileges(self, conn: dbm.Connection) -> dict[str, Any] | None:
        flt = self.cfg.common.table_filter
        if not (flt.match_table("mysql", "user") or flt.match_table("mysql", "global_priv")):
            return None
        result: dict[str, Any] = {}
        for table in dbm.PRIVILEGE_TABLES:
            try:
                info = dbm.describe_table(conn, "mysql", table, "BASE TABLE")
            except Exception as exc:  # a table this server version lacks
                LOG.debug("backup.go:300", "skip privilege table", ("table", table), ("error", str(exc)))
                continue
            rows = dbm.query(conn, dbm.snapshot_select(info, None))
            result[table] = {
                "columns": [c.name for c in info.columns],
                "kinds": info.kinds,
                "rows": codec.encode_rows(info.kinds, rows),
            }
        return result

    # ------------------------------------------------------------------ body
    def _backup_body(
        self,
        cfg: BackupConfig,
        cluster: Cluster,
        storage: ExternalStorage,
        conn: dbm.Connection,
        backup_ts: int,
        new_collation: str,
        cp_meta: dict[str, Any] | None,
        cfg_hash: str,
        sp_id: str,
        concurrency: int,
        faults: dict[str, dict[str, Any]],
    ) -> None:
        c = cfg.common
        incremental = cfg.last_backup_ts > 0
        meta = new_backup_meta(cluster, cfg.last_backup_ts, backup_ts, new_collation)
        emu = meta["Emulator"]
        emu["compression"] = cfg.compression
        emu["encrypted_data"] = c.cipher.enabled
        emu["incremental"] = incremental
        emu["filter"] = c.filter_str or sorted(c.schemas | c.tables)

        if "backup_hang" in faults:
            LOG.warn("backup.go:520", "fault injected: backup_hang, sleeping until killed")
            while True:
                time.sleep(0.2)

        dbs, tables = self._collect_schemas(conn, backup_ts)
        emu["databases"] = dbs
        emu["privileges"] = self._privileges(conn) if self.cmd_name == "Full Backup" else None
        data_tables = [t for t in tables if not t.is_view]
        if not data_tables:
            LOG.warn(
                "backup.go:556",
                "Nothing to backup, maybe connected to cluster for restoring",
                ("PD address", ",".join(c.pd)),
            )
            emu["databases"] = []
            emu["tables"] = []
            storage.write_file(META_FILE, encode_meta(meta, c.cipher))
            SUMMARY.record(SUMMARY.BACKUP_DATA_SIZE, 0)
            SUMMARY.success = True
            return
        if incremental:
            if backup_ts <= cfg.last_backup_ts:
                LOG.error("backup.go:570", "LastBackupTS is larger or equal to current TS")
                raise br_error("ErrInvalidArgument", "LastBackupTS is larger or equal to current TS")
            try:
                check_gc_safepoint(cluster, cfg.last_backup_ts)
            except BRError as exc:
                LOG.error("backup.go:576", "Check gc safepoint for last backup ts failed", ("error", str(exc)))
                raise
        SUMMARY.collect_int("backup total ranges", len(data_tables))

        done: dict[str, list[dict[str, Any]]] = {}
        if cfg.use_checkpoint:
            if cp_meta is None:
                storage.write_file(
                    CHECKPOINT_META,
                    json.dumps({"gc-service-id": sp_id, "config-hash": cfg_hash, "backup-ts": backup_ts}).encode(),
                )
            else:
                done = self._load_checkpoint_data(storage)
            storage.write_file(
                CHECKPOINT_LOCK, json.dumps({"lock-id": str(uuid.uuid4()), "expire-at": int(time.time() + 60)}).encode()
            )

        read_us = ts_to_read_us(backup_ts)
        read_sql = us_to_sql(read_us)
        last_sql = us_to_sql(ts_to_read_us(cfg.last_backup_ts)) if incremental else None
        rows_estimate = sum(_approx_rows(conn, t) for t in data_tables)
        regions = max(1, (rows_estimate + ROWS_PER_FILE - 1) // ROWS_PER_FILE)
        SUMMARY.collect_int("backup total regions", regions)
        progress = Progress(self.cmd_name, regions)
        self._rate_start = time.monotonic()
        self._rate_bytes = 0
        fail = faults.get("backup_fail_midway")
        fail_after = int(fail.get("after_files", 1)) if fail is not None else -1
        table_meta: list[dict[str, Any]] = []
        total_kvs = total_bytes = archive = 0
        start = time.monotonic()
        for info in tables:
            cancel.check()
            entry = _table_entry(info)
            table_meta.append(entry)
            if info.is_view:
                continue
            key = f"{info.db}.{info.name}"
            if key in done:
                entry["files"] = done[key]
            else:
                t0 = time.monotonic()
                entry["files"] = self._backup_table(
                    info, read_sql, last_sql, backup_ts, fail_after, progress, concurrency
                )
                if cfg.use_checkpoint:
                    self._save_checkpoint_data(storage, key, entry["files"])
                SUMMARY.collect_success_unit("", 1, time.monotonic() - t0)
            for f in entry["files"]:
                total_kvs += f["total_kvs"]
                total_bytes += f["total_bytes"]
                archive += f["size"]
                entry["rows"] += f["rows"]
            LOG.info("pipeline.go:180", "backup range completed", ("table", key), ("files", len(entry["files"])))
        progress.close()
        LOG.info("backup.go:612", "backup ranges finished", ("take", time.monotonic() - start))

        slow = faults.get("backup_slow")
        if slow is not None:
            seconds = float(slow.get("seconds", 30))
            LOG.warn("backup.go:620", "fault injected: backup_slow", ("seconds", seconds))
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(min(0.2, deadline - time.monotonic()))

        skip_checksum = (not c.checksum) or incremental
        if skip_checksum:
            LOG.info(
                "backup.go:640", "Skip fast checksum in incremental backup" if incremental else "Skip fast checksum"
            )
        checksum_progress = Progress("Checksum", 1 if skip_checksum else len(data_tables))
        if not skip_checksum:
            t0 = time.monotonic()
            for entry, info in zip(table_meta, tables, strict=True):
                if info.is_view:
                    continue
                count, crc, size = dbm.table_checksum(conn, info, read_sql)
                entry["checksum"] = {
                    "crc64xor": crc,
                    "total_kvs": count * (1 + info.index_count),
                    "total_bytes": size,
                    "rows": count,
                }
                checksum_progress.inc()
            SUMMARY.collect_duration("backup checksum", time.monotonic() - t0)
        emu["tables"] = table_meta
        meta["BackupSize"] = archive
        storage.write_file(META_FILE, encode_meta(meta, c.cipher))
        LOG.info("metafile.go:640", "flush backupmeta finished", ("BackupTS", backup_ts), ("size", archive))
        checksum_progress.close()
        if not skip_checksum:
            t0 = time.monotonic()
            for entry in table_meta:
                cs = entry.get("checksum")
                if cs is not None and cs["rows"] != entry["rows"]:
                    raise br_error(
                        "ErrBackupChecksumMismatch",
                        f"checksum mismatch, table {entry['db']}.{entry['name']}: {entry['rows']} rows in data files, "
                        f"{cs['rows']} rows in the cluster",
                    )
            SUMMARY.collect_duration("backup fast checksum", time.monotonic() - t0)
        if cfg.use_checkpoint:
            for path, _ in list(storage.walk(CHECKPOINT_DIR)):
                storage.delete_file(path)
            storage.remove_empty_dirs(CHECKPOINT_DIR)
            LOG.info("backup.go:666", "the checkpoint data for backup is removed.")
        SUMMARY.record(SUMMARY.BACKUP_DATA_SIZE, archive)
        SUMMARY.record("Size", archive)
        SUMMARY.record("total kv", total_kvs)
        SUMMARY.record(SUMMARY.TOTAL_BYTES, total_bytes)
        SUMMARY.success = True

    # ------------------------------------------------------------------ per table
    def _backup_table(
        self,
        info: dbm.TableInfo,
        read_sql: str,
        last_sql: str | None,
        backup_ts: int,
        fail_after: int,
        progress: Progress,
        concurrency: int,
    ) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = []
        pending: list[tuple[Any, ...]] = []
        replace_all = last_sql is not None and not info.versioned
        if last_sql is None or replace_all:
            if replace_all:
                LOG.warn(
                    "backup.go:700",
                    "table is not system-versioned, the incremental backup copies all of it",
                    ("db", info.db),
                    ("table", info.name),
                )
            sql = dbm.snapshot_select(info, read_sql)
        else:
            sql = dbm.snapshot_select(info, read_sql, " WHERE " + _changed_in(info, last_sql, read_sql, as_of=read_sql))
        for batch in dbm.stream_rows(self.conn, sql):
            cancel.check()
            pending.extend(batch)
            while len(pending) >= ROWS_PER_FILE:
                files.append(
                    self._write_file(
                        info, pending[:ROWS_PER_FILE], [], backup_ts, fail_after, replace_all and not files
                    )
                )
                pending = pending[ROWS_PER_FILE:]
                progress.inc()
        deletes: list[list[Any]] = []
        if last_sql is not None and info.versioned:
            pk_cols = [c for c in info.columns if c.name in info.pk]
            pk_cols.sort(key=lambda col: info.pk.index(col.name))
            raw = ", ".join(dbm.qi(p) for p in info.pk)
            dsql = (
                f"SELECT DISTINCT {', '.join(col.select_expr() for col in pk_cols)} FROM {dbm.qt(info.db, info.name)} "
                f"FOR SYSTEM_TIME ALL WHERE {_changed_in(info, last_sql, read_sql)} AND ({raw}) NOT IN "
                f"(SELECT {raw} FROM {dbm.qt(info.db, info.name)} FOR SYSTEM_TIME AS OF TIMESTAMP '{read_sql}')"
            )
            pk_kinds = [col.kind for col in pk_cols]
            deletes = codec.encode_rows(pk_kinds, dbm.query(self.conn, dsql))
        if pending or deletes or (replace_all and not files):
            files.append(self._write_file(info, pending, deletes, backup_ts, fail_after, replace_all and not files))
            progress.inc()
        return files

    def _write_file(
        self,
        info: dbm.TableInfo,
        rows: list[tuple[Any, ...]],
        deletes: list[list[Any]],
        backup_ts: int,
        fail_after: int,
        replace_all: bool = False,
    ) -> dict[str, Any]:
        c = self.cfg.common
        stores = self.cluster.store_ids()
        store = stores[self.files_written % len(stores)]
        self.region_id += 1
        key_hash = hashlib.sha256(f"{info.db}.{info.name}/{self.region_id}".encode()).hexdigest()
        name = f"store{store}/{self.region_id}_{1 + self.files_written % 7}_{key_hash}_{backup_ts}_write.sst"
        payload = {
            "db": info.db,
            "table": info.name,
            "columns": [col.name for col in info.columns],
            "kinds": info.kinds,
            "rows": codec.encode_rows(info.kinds, rows),
            "deletes": deletes,
            "replace_all": replace_all,
        }
        raw, row_bytes = codec.encode_container_sized(payload, self.cfg.compression, self.cfg.compression_level)
        data = c.cipher.encrypt(raw)
        self.storage.write_file(name, data)
        self.files_written += 1
        self._throttle(len(data))
        if 0 <= fail_after <= self.files_written:
            store_addr = f"127.0.0.1:{20160 + store}"
            fault = self.cluster.faults().get("backup_fail_midway", {})
            message = fault.get("message") or (
                f"error happen in store {store} at {store_addr}: Io(Os {{ code: 28, kind: StorageFull, "
                'message: "No space left on device" })'
            )
            raise br_error("ErrKVStorage", message)
        return {
            "name": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "rows": len(rows),
            "deletes": len(deletes),
            "total_kvs": (len(rows) + len(deletes)) * (1 + info.index_count),
            "total_bytes": row_bytes,
            "cf": "write",
            "start_key": f"t_{info.db}.{info.name}_{self.region_id}",
            "end_key": f"t_{info.db}.{info.name}_{self.region_id + 1}",
            "store_id": store,
        }

    def _throttle(self, size: int) -> None:
        rate = self.cfg.common.rate_limit * len(self.cluster.store_ids())
        if rate <= 0:
            return
        self._rate_bytes += size
        expected = self._rate_bytes / rate
        elapsed = time.monotonic() - self._rate_start
        if expected > elapsed:
            time.sleep(expected - elapsed)

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint_data(self, storage: ExternalStorage, key: str, files: list[dict[str, Any]]) -> None:
        blob = self.cfg.common.cipher.encrypt(json.dumps({"table": key, "files": files}).encode())
        storage.write_file(f"{CHECKPOINT_DIR}/data/{uuid.uuid4()}.cpt", blob)

    def _load_checkpoint_data(self, storage: ExternalStorage) -> dict[str, list[dict[str, Any]]]:
        done: dict[str, list[dict[str, Any]]] = {}
        for path, _ in storage.walk(f"{CHECKPOINT_DIR}/data"):
            if not path.endswith(".cpt"):
                continue
            try:
                rec = json.loads(self.cfg.common.cipher.decrypt(storage.read_file(path)))
            except ValueError:
                continue
            done[str(rec["table"])] = list(rec["files"])
        LOG.info("checkpoint.go:512", "load checkpoint data", ("tables", len(done)))
        return done


def _table_entry(info: dbm.TableInfo) -> dict[str, Any]:
    return {
        "db": info.db,
        "name": info.name,
        "table_type": info.table_type,
        "create_sql": info.create_sql,
        "columns": [c.name for c in info.columns],
        "kinds": info.kinds,
        "pk": info.pk,
        "index_count": info.index_count,
        "rows": 0,
        "files": [],
        "checksum": None,
    }


def _changed_in(info: dbm.TableInfo, last_sql: str, read_sql: str, as_of: str | None = None) -> str:
    """Rows whose key has a version starting or ending in (last, read]."""
    cond = (
        f"((ROW_START > '{last_sql}' AND ROW_START <= '{read_sql}') OR "
        f"(ROW_END > '{last_sql}' AND ROW_END <= '{read_sql}'))"
    )
    if as_of is None:
        return cond
    raw = ", ".join(dbm.qi(p) for p in info.pk)
    return f"({raw}) IN (SELECT {raw} FROM {dbm.qt(info.db, info.name)} FOR SYSTEM_TIME ALL WHERE {cond})"


def _approx_rows(conn: dbm.Connection, info: dbm.TableInfo) -> int:
    rows = dbm.query(
        conn,
        "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        + dbm.sql_str(info.db)
        + " AND TABLE_NAME = "
        + dbm.sql_str(info.name),
    )
    try:
        return int(rows[0][0] or 0)
    except (IndexError, TypeError, ValueError):
        return 0


def _created_after(ctime: str, read_us: int) -> bool:
    """``information_schema.TABLES.CREATE_TIME`` (seconds, server zone +00:00) later than the read point."""
    from .tso import sql_to_us

    try:
        created = sql_to_us(ctime)
    except ValueError:
        return False
    return created > read_us + 1_000_000


def _ts_time(ts: int) -> str:
    from .tso import go_time_string

    return go_time_string(ts)
