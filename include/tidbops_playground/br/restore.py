"""``br restore full|db|table|point`` (``task.RunRestore`` / ``runSnapshotRestore`` / ``RunStreamRestore``).

A snapshot restore recreates databases and tables from the recorded ``SHOW CREATE`` statements (system
versioning included), loads rows with multi-row ``INSERT`` (foreign-key checks off) and verifies the
recorded table checksum. An incremental backup (``StartVersion > 0``) is applied on top: every changed key
is deleted and its version as of the backup TS re-inserted. ``restore point`` restores the snapshot (with
``--full-backup-storage``) and then replays the log backup's change events up to ``--restored-ts``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import cancel, codec
from . import db as dbm
from .cli import CommonConfig, Runtime, enclose, parse_common
from .common import connect_cluster, get_storage, read_backup_meta, read_tidb_var
from .errors import BRError, br_error, plain
from .filter import TableFilter
from .logstore import get_log_range, list_metas, read_log_file
from .output import LOG, SUMMARY, Progress, console
from .pd import Cluster, alloc_ts, register_restore, resolve_cluster, unregister_restore
from .tso import TSParseError, format_date, go_time_string, human_size, parse_ts_string

NOT_FRESH_BANNER = (
    "#######################################################################\n"
    "# the target cluster is not fresh, cannot restore.\n"
    "# you can drop existing databases and tables and start restore again\n"
    "#######################################################################"
)


@dataclass
class RestoreConfig:
    common: CommonConfig
    with_sys_table: bool
    reset_sys_users: list[str]
    load_stats: bool
    start_ts: int = 0
    restored_ts: int = 0
    full_backup_storage: str = ""


def run_full(rt: Runtime) -> None:
    _run(rt, "Full Restore")


def run_db(rt: Runtime) -> None:
    _run(rt, "DataBase Restore")


def run_table(rt: Runtime) -> None:
    _run(rt, "Table Restore")


def run_point(rt: Runtime) -> None:
    _run(rt, "Point Restore")


def parse_restore_flags(rt: Runtime, point: bool) -> RestoreConfig:
    common = parse_common(rt)
    if rt.has("type") and rt.get("type") not in ("kv", "aws-ebs"):
        raise plain("invalid full backup type")
    cfg = RestoreConfig(
        common=common,
        with_sys_table=bool(rt.get("with-sys-table")),
        reset_sys_users=list(rt.get("reset-sys-users")),
        load_stats=bool(rt.get("load-stats")),
    )
    if point:
        try:
            cfg.start_ts = parse_ts_string(rt.get("start-ts"), tz_check=True)
            cfg.restored_ts = parse_ts_string(rt.get("restored-ts"), tz_check=True)
        except TSParseError as exc:
            raise plain(str(exc)) from None
        cfg.full_backup_storage = rt.get("full-backup-storage")
        if cfg.start_ts > 0 and cfg.full_backup_storage:
            raise br_error("ErrInvalidArgument", "start-ts and full-backup-storage are mutually exclusive")
    return cfg


def _run(rt: Runtime, cmd_name: str) -> None:
    cfg = parse_restore_flags(rt, point=cmd_name == "Point Restore")
    c = cfg.common
    cluster = resolve_cluster(c.pd, ca=c.tls_ca)
    with cluster.state() as st:
        tasks = sorted(st.get("log_tasks", {}))
    if tasks:
        raise plain(
            f"log backup task is running: {tasks[0]}, please stop the task before restore, and after PITR operation "
            "finished, create log-backup task again and create a full backup on this cluster"
        ).annotate("failed to check task exists")
    task_id = f"restore-{uuid.uuid4()}"
    register_restore(cluster, task_id)
    try:
        connect_cluster(c)
        if cmd_name == "Point Restore":
            PointRestore(cfg, cluster).run()
        else:
            try:
                SnapshotRestore(cfg, cluster, cmd_name).run()
            except BRError as exc:
                if exc.kind == "ErrRestoreNotFreshCluster" and cmd_name == "Full Restore":
                    console(NOT_FRESH_BANNER)
                raise
    finally:
        unregister_restore(cluster, task_id)


# --------------------------------------------------------------------------- snapshot restore


def _user_tables(conn: dbm.Connection) -> list[tuple[str, list[str]]]:
    result = []
    for db in dbm.list_user_databases(conn):
        tables = [name for name, _t, _c in dbm.list_tables(conn, db)]
        if not tables and db.lower() == "test":
            continue  # TiDB creates an empty `test` on a fresh cluster
        result.append((db, tables))
    return result


def ensure_fresh(conn: dbm.Connection) -> None:
    """``CheckTargetClusterFresh`` / ``EnsureNoUserTables``."""
    user = _user_tables(conn)
    if not user:
        return
    names: list[str] = []
    full = False
    for db, tables in user:
        for name in [db, *tables]:
            if len(names) == 10:
                names.append("...")
                full = True
                break
            names.append(name.lower())
        if full:
            break
    LOG.error("client.go:1082", "not fresh cluster", ("user tables", "[" + ",".join(names) + "]"))
    raise br_error("ErrRestoreNotFreshCluster", "user db/tables: " + ", ".join(names))


class SnapshotRestore:
    def __init__(
        self,
        cfg: RestoreConfig,
        cluster: Cluster,
        cmd_name: str,
        storage_url: str | None = None,
        summary_name: str | None = None,
        corrupt: bool = True,
    ) -> None:
        self.cfg = cfg
        self.cluster = cluster
        self.cmd_name = cmd_name
        self.storage_url = storage_url or cfg.common.storage
        self.summary_name = summary_name or cmd_name
        self.corrupt = corrupt  # the restore_corrupt_rows fault (PointRestore applies it after the log)

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            SUMMARY.emit(self.summary_name)

    def _run(self) -> dict[str, Any]:
        cfg, c = self.cfg, self.cfg.common
        LOG.info("restore.go:1001", "starting snapshot restore")
        storage = get_storage(self.storage_url, c, self.cluster)
        meta = read_backup_meta(storage, c.cipher)
        if meta.get("IsRawKv") or meta.get("IsTxnKv"):
            raise br_error("ErrRestoreModeMismatch", "cannot do transactional restore from raw/txn kv data")
        emu = meta.get("Emulator") or {}
        if emu.get("log_backup"):
            raise br_error("ErrRestoreInvalidBackup", "the storage holds a log backup, use `br restore point`")
        incremental = int(meta.get("StartVersion", 0)) > 0
        conn = dbm.connect(self.cluster.entry)
        try:
            target_collation = read_tidb_var(conn, "new_collation_enabled", "True")
            backup_collation = str(meta.get("NewCollationsEnabled", ""))
            if backup_collation == "" and c.check_requirements:
                raise br_error(
                    "ErrUnknown",
                    "the value 'new_collation_enabled' not found in backupmeta. you can use \"SELECT VARIABLE_VALUE "
                    "FROM mysql.tidb WHERE VARIABLE_NAME='new_collation_enabled';\" to manually check the config. if "
                    "you ensure the value 'new_collation_enabled' in backup cluster is as same as restore cluster, use "
                    "--check-requirements=false to skip this check",
                )
            if backup_collation and backup_collation.lower() != target_collation.lower():
                raise br_error(
                    "ErrUnknown",
                    f"the config 'new_collation_enabled' not match, upstream:{backup_collation}, "
                    f"downstream: {target_collation}",
                )
            databases = list(emu.get("databases", []))
            tables = list(emu.get("tables", []))
            self._verify_in_backup(databases, tables)
            if self.cmd_name == "Full Restore" and not incremental and not c.explicit_filter:
                LOG.info("client.go:1060", "checking whether target cluster is fresh")
                ensure_fresh(conn)
            flt = c.table_filter
            dbs = [d for d in databases if flt.match_schema(d["name"])]
            tables = [t for t in tables if flt.match_table(t["db"], t["name"])]
            LOG.info(
                "restore.go:1150", "found items to restore after filtering", ("tables", len(tables)), ("db", len(dbs))
            )
            if c.check_requirements and not incremental:
                self._check_table_existence(conn, tables)
            archive = sum(f["size"] for t in tables for f in t.get("files", []))
            SUMMARY.record(SUMMARY.RESTORE_DATA_SIZE, archive)
            SUMMARY.record("Size", archive)
            with self.cluster.state() as st:
                restore_ts = alloc_ts(st)
            SUMMARY.record("BackupTS", int(meta.get("EndVersion", 0)))
            SUMMARY.record("RestoreTS", restore_ts)
            dbm.prepare_restore_session(conn)
            t0 = time.monotonic()
            self._create_schemas(conn, dbs, tables, incremental)
            SUMMARY.collect_duration("split region", time.monotonic() - t0)
            n_files = sum(len(t.get("files", [])) for t in tables)
            SUMMARY.collect_int("restore ranges", n_files)
            total_kvs, total_bytes = self._restore_data(conn, storage, tables, incremental)
            if c.checksum and not incremental:
                self._validate_checksums(conn, tables)
            self._create_views(conn, tables)
            if self.corrupt:
                corrupt_rows(conn, self.cluster, [(t["db"], t["name"]) for t in tables if t.get("files")])
            if (
                self.cmd_name == "Full Restore"
                and cfg.with_sys_table
                and emu.get("privileges")
                and (flt.match_table("mysql", "user") or flt.match_table("mysql", "global_priv"))
            ):
                self._restore_privileges(conn, emu["privileges"])
            SUMMARY.record("total kv", total_kvs)
            SUMMARY.record(SUMMARY.TOTAL_BYTES, total_bytes)
            LOG.info("restore.go:1400", "snapshot restore success")
            SUMMARY.success = True
            return meta
        finally:
            conn.close()

    def _verify_in_backup(self, databases: list[dict[str, Any]], tables: list[dict[str, Any]]) -> None:
        """``VerifyDBAndTableInBackup``."""
        c = self.cfg.common
        if not c.schemas and not c.tables:
            return
        schemas = {enclose(d["name"].lower()) for d in databases}
        table_set = {f"{enclose(t['db'].lower())}.{enclose(t['name'].lower())}" for t in tables}
        for schema in sorted(c.schemas):
            if schema.lower() not in schemas:
                raise br_error(
                    "ErrUndefinedRestoreDbOrTable",
                    f"[database: {schema}] has not been backup, please ensure you has input a correct database name",
                )
        for table in sorted(c.tables):
            if table.lower() not in table_set:
                raise br_error(
                    "ErrUndefinedRestoreDbOrTable",
                    f"[table: {table}] has not been backup, please ensure you has input a correct table name",
                )

    def _check_table_existence(self, conn: dbm.Connection, tables: list[dict[str, Any]]) -> None:
        existing: set[tuple[str, str]] = set()
        for db in dbm.list_user_databases(conn):
            for name, _t, _c in dbm.list_tables(conn, db):
                existing.add((db.lower(), name.lower()))
        message = "table already exists: "
        clash = False
        for t in tables:
            if (t["db"].lower(), t["name"].lower()) in existing:
                message += f"{t['db']}.{t['name']} "
                clash = True
        if clash:
            raise br_error("ErrTablesAlreadyExisted", message)

    def _create_schemas(
        self, conn: dbm.Connection, dbs: list[dict[str, Any]], tables: list[dict[str, Any]], incremental: bool
    ) -> None:
        existing_dbs = {d.lower() for d in dbm.list_databases(conn)}
        wanted = {t["db"] for t in tables} | {d["name"] for d in dbs}
        by_name = {d["name"]: d for d in dbs}
        for name in sorted(wanted):
            if name.lower() in existing_dbs:
                continue
            create = by_name.get(name, {}).get("create_sql") or f"CREATE DATABASE {dbm.qi(name)}"
            dbm.execute(conn, create.replace("CREATE DATABASE", "CREATE DATABASE IF NOT EXISTS", 1))
            LOG.info("client.go:640", "create database", ("db", name))
        for t in tables:
            if t.get("table_type") == "VIEW":
                continue
            present = {n.lower() for n, _t, _c in dbm.list_tables(conn, t["db"])}
            if t["name"].lower() in present:
                continue
            dbm.execute(conn, f"USE {dbm.qi(t['db'])}")
            dbm.execute(conn, t["create_sql"])
            LOG.info("client.go:701", "table created", ("table", t["name"]), ("database", t["db"]))

    def _create_views(self, conn: dbm.Connection, tables: list[dict[str, Any]]) -> None:
        pending = [t for t in tables if t.get("table_type") == "VIEW"]
        for _round in range(len(pending) + 1):
            if not pending:
                return
            failed = []
            for t in pending:
                try:
                    dbm.execute(conn, f"USE {dbm.qi(t['db'])}")
                    dbm.execute(conn, t["create_sql"].replace("CREATE ", "CREATE OR REPLACE ", 1))
                except Exception:
                    failed.append(t)
            if len(failed) == len(pending):
                names = ", ".join(f"{t['db']}.{t['name']}" for t in failed)
                raise plain(f"failed to create views: {names}")
            pending = failed

    def _restore_data(
        self, conn: dbm.Connection, storage: Any, tables: list[dict[str, Any]], incremental: bool
    ) -> tuple[int, int]:
        fault = self.cluster.faults().get("restore_fail_midway")
        data_tables = [t for t in tables if t.get("files")]
        fail_after = -1
        if fault is not None:
            fail_after = int(fault.get("after_tables", max(1, (len(data_tables) + 1) // 2)))
        n_files = sum(len(t["files"]) for t in data_tables)
        progress = Progress("Restore Pipeline", max(n_files, 1))
        cipher = self.cfg.common.cipher
        total_kvs = total_bytes = 0
        for i, t in enumerate(data_tables):
            if 0 <= fail_after <= i:
                message = fault.get("message") if fault else None
                store = self.cluster.store_ids()[0]
                raise br_error(
                    "ErrKVDownloadFailed",
                    message
                    or f"failed to restore files: rpc error: code = Unavailable desc = error reading from "
                    f"server: EOF, store: {store}",
                )
            for f in t["files"]:
                cancel.check()
                raw = cipher.decrypt(storage.read_file(f["name"]))
                obj = codec.decode_container(raw, f["name"])
                self._apply_file(conn, t, obj, incremental)
                total_kvs += int(f.get("total_kvs", 0))
                total_bytes += int(f.get("total_bytes", 0))
                SUMMARY.collect_success_unit("", 1, 0.0)
                progress.inc()
            LOG.info("pipeline_items.go:260", "restore table finished", ("db", t["db"]), ("table", t["name"]))
        progress.close()
        return total_kvs, total_bytes

    def _apply_file(self, conn: dbm.Connection, t: dict[str, Any], obj: dict[str, Any], incremental: bool) -> None:
        columns = obj["columns"]
        kinds = obj["kinds"]
        rows = codec.decode_rows(kinds, obj.get("rows", []))
        if incremental:
            if obj.get("replace_all"):
                dbm.execute(conn, f"DELETE FROM {dbm.qt(t['db'], t['name'])}")
            pk = list(t.get("pk") or columns)
            idx = [columns.index(p) for p in pk]
            pk_kinds = [kinds[i] for i in idx]
            keys = [[r[i] for i in idx] for r in rows]
            keys += codec.decode_rows(pk_kinds, obj.get("deletes", []))
            for stmt in dbm.delete_statements(t["db"], t["name"], pk, pk_kinds, keys):
                dbm.execute(conn, stmt)
        for stmt in dbm.insert_statements(t["db"], t["name"], columns, kinds, rows):
            dbm.execute(conn, stmt)

    def _validate_checksums(self, conn: dbm.Connection, tables: list[dict[str, Any]]) -> None:
        t0 = time.monotonic()
        for t in tables:
            expected = t.get("checksum")
            if t.get("table_type") == "VIEW":
                continue
            if not expected:
                LOG.info(
                    "pipeline_items.go:330",
                    "table has no checksum, skipping checksum",
                    ("db", t["db"]),
                    ("table", t["name"]),
                )
                continue
            info = dbm.describe_table(conn, t["db"], t["name"], "BASE TABLE")
            count, crc, size = dbm.table_checksum(conn, info, None)
            if (crc, size, count) != (expected["crc64xor"], expected["total_bytes"], expected["rows"]):
                LOG.error(
                    "pipeline_items.go:345",
                    "failed in validate checksum",
                    ("database", t["db"]),
                    ("table", t["name"]),
                    ("origin tidb crc64", expected["crc64xor"]),
                    ("calculated crc64", crc),
                    ("origin tidb total kvs", expected["total_kvs"]),
                    ("calculated total kvs", count * (1 + int(t.get("index_count", 0)))),
                )
                raise br_error("ErrRestoreChecksumMismatch", "failed to validate checksum")
        SUMMARY.collect_duration("restore checksum", time.monotonic() - t0)

    def _restore_privileges(self, conn: dbm.Connection, privileges: dict[str, Any]) -> None:
        """``RestoreSystemSchemas`` for the privilege tables; users in ``--reset-sys-users`` (and the
        cluster's own login and MariaDB's internal accounts) are left as they are."""
        keep = {u.lower() for u in self.cfg.reset_sys_users} | {
            self.cluster.entry.sql_user.lower(),
            "mariadb.sys",
            "public",
            "",
        }
        for table, data in privileges.items():
            columns = data["columns"]
            kinds = data["kinds"]
            if "User" not in columns:
                continue
            ui = columns.index("User")
            rows = [r for r in codec.decode_rows(kinds, data["rows"]) if (r[ui] or "").lower() not in keep]
            if not rows:
                continue
            for stmt in dbm.insert_statements("mysql", table, columns, kinds, rows):
                dbm.execute(conn, "REPLACE" + stmt[len("INSERT") :])
        dbm.execute(conn, "FLUSH PRIVILEGES")
        LOG.info("systable_restore.go:110", "restore system schemas finished")


# --------------------------------------------------------------------------- PITR


class PointRestore:
    def __init__(self, cfg: RestoreConfig, cluster: Cluster) -> None:
        self.cfg = cfg
        self.cluster = cluster

    def run(self) -> None:
        cfg, c = self.cfg, self.cfg.common
        log_storage = get_storage(c.storage, c, self.cluster)
        info = get_log_range(log_storage)
        restored_ts = cfg.restored_ts or info.max_ts
        start_ts = cfg.start_ts
        if cfg.full_backup_storage:
            full_storage = get_storage(cfg.full_backup_storage, c, self.cluster)
            full_meta = read_backup_meta(full_storage, c.cipher)
            start_ts = int(full_meta.get("EndVersion", 0))
            full_cluster = int(full_meta.get("ClusterId", 0))
            if info.cluster_id > 0 and full_cluster > 0 and info.cluster_id != full_cluster:
                raise br_error(
                    "ErrInvalidArgument",
                    f"the full snapshot(from cluster ID:{full_cluster}) and log(from cluster ID:{info.cluster_id}) "
                    "come from different cluster.",
                )
            if start_ts < info.min_ts:
                raise br_error(
                    "ErrInvalidArgument",
                    f"it has gap between full backup ts:{start_ts}({go_time_string(start_ts)}) and log backup "
                    f"ts:{info.min_ts}({go_time_string(info.min_ts)}). ",
                )
        LOG.info(
            "stream.go:1180",
            "start restore on point",
            ("restore-from", start_ts),
            ("restore-to", restored_ts),
            ("log-min-ts", info.min_ts),
            ("log-max-ts", info.max_ts),
        )
        if info.min_ts > start_ts or start_ts > restored_ts or restored_ts > info.max_ts:
            raise br_error(
                "ErrInvalidArgument",
                f"restore log from {start_ts}({go_time_string(start_ts)}) to {restored_ts}"
                f"({go_time_string(restored_ts)}),  but the current existed log from {info.min_ts}"
                f"({go_time_string(info.min_ts)}) to {info.max_ts}({go_time_string(info.max_ts)})",
            )
        if cfg.full_backup_storage:
            conn = dbm.connect(self.cluster.entry)
            try:
                user = [db for db, _tables in _user_tables(conn)]
            finally:
                conn.close()
            if user:
                raise br_error(
                    "ErrDatabasesAlreadyExisted",
                    f"databases {','.join(user)} existed in restored cluster, please drop them before execute PiTR",
                )
            snap_cfg = RestoreConfig(
                common=c,
                with_sys_table=cfg.with_sys_table,
                reset_sys_users=cfg.reset_sys_users,
                load_stats=cfg.load_stats,
            )
            SnapshotRestore(
                snap_cfg, self.cluster, "Full Restore", storage_url=cfg.full_backup_storage, corrupt=False
            ).run()
        self._restore_log(log_storage, info.meta, start_ts, restored_ts)
        if self.cluster.faults().get("restore_corrupt_rows") is not None:
            conn = dbm.connect(self.cluster.entry)
            try:
                dbm.prepare_restore_session(conn)
                corrupt_rows(conn, self.cluster, [(db, t) for db, tables in _user_tables(conn) for t in tables])
            finally:
                conn.close()

    def _restore_log(self, storage: Any, log_meta: dict[str, Any], start_ts: int, restored_ts: int) -> None:
        t0 = time.monotonic()
        total_kvs = total_size = 0
        target_ts = 0
        try:
            with self.cluster.state() as st:
                target_ts = alloc_ts(st)
            flt = self.cfg.common.table_filter
            files = []
            for _path, m in list_metas(storage):
                for f in m.get("files", []):
                    if int(f["max_ts"]) > start_ts and int(f["min_ts"]) <= restored_ts:
                        files.append(f)
            meta_progress = Progress("Restore Meta Files", 1)
            schemas = _SchemaBook(log_meta)
            changes: dict[tuple[str, str], dict[tuple[Any, ...], tuple[str, list[Any] | None]]] = {}
            group_cols: dict[tuple[str, str], tuple[list[str], list[str], list[str]]] = {}
            ddl_events: list[dict[str, Any]] = []
            kv_progress = Progress("Restore KV Files", max(len(files), 1))
            for f in sorted(files, key=lambda x: (int(x["min_ts"]), x["path"])):
                cancel.check()
                obj = read_log_file(storage, f["path"], f, self.cfg.common.log_cipher)
                total_size += int(f.get("length", 0))
                for ev in obj.get("ddl", []):
                    if start_ts < int(ev["ts"]) <= restored_ts:
                        ddl_events.append(ev)
                    else:
                        schemas.remember(ev)
                for g in obj.get("groups", []):
                    key = (g["db"], g["table"])
                    if not flt.match_table(*key):
                        continue
                    columns, kinds, pk = g["columns"], g["kinds"], g["pk"]
                    group_cols[key] = (columns, kinds, pk)
                    idx = [columns.index(p) for p in pk]
                    pk_kinds = [kinds[i] for i in idx]
                    table_changes = changes.setdefault(key, {})
                    for ts, op, payload in sorted(g["events"], key=lambda e: (int(e[0]), e[1] != "delete")):
                        if not start_ts < int(ts) <= restored_ts:
                            continue
                        total_kvs += 1
                        if op == "put":
                            row = codec.decode_rows(kinds, [payload])[0]
                            table_changes[tuple(row[i] for i in idx)] = ("put", row)
                        else:
                            pkv = codec.decode_rows(pk_kinds, [payload])[0]
                            table_changes[tuple(pkv)] = ("delete", None)
                kv_progress.inc()
            meta_progress.close()
            ddl_events.sort(key=lambda e: int(e["ts"]))
            for ev in ddl_events:
                schemas.apply(ev)
            conn = dbm.connect(self.cluster.entry)
            try:
                dbm.prepare_restore_session(conn)
                self._apply_ddl(conn, ddl_events, schemas, flt, pre=True)
                for key, table_changes in changes.items():
                    if not table_changes:
                        continue
                    self._ensure_table(conn, key, schemas)
                    columns, kinds, pk = group_cols[key]
                    idx = [columns.index(p) for p in pk]
                    pk_kinds = [kinds[i] for i in idx]
                    keys = [list(k) for k in table_changes]
                    for stmt in dbm.delete_statements(key[0], key[1], pk, pk_kinds, keys):
                        dbm.execute(conn, stmt)
                    rows = [row for op, row in table_changes.values() if op == "put" and row is not None]
                    for stmt in dbm.insert_statements(key[0], key[1], columns, kinds, rows):
                        dbm.execute(conn, stmt)
                self._apply_ddl(conn, ddl_events, schemas, flt, pre=False)
            finally:
                conn.close()
            kv_progress.close()
        except BaseException as exc:
            LOG.summary("restore log failed summary", ("error", str(exc)))
            raise
        elapsed = time.monotonic() - t0
        LOG.summary(
            "restore log success summary",
            ("total-take", _dur(elapsed)),
            ("source-start-point", start_ts),
            ("source-end-point", restored_ts),
            ("target-end-point", target_ts),
            ("source-start", format_date(start_ts)),
            ("source-end", format_date(restored_ts)),
            ("target-end", format_date(target_ts)),
            ("total-kv-count", total_kvs),
            ("skipped-kv-count-by-checkpoint", 0),
            ("total-size", human_size(total_size)),
            ("skipped-size-by-checkpoint", human_size(0)),
            ("average-speed", human_size(total_size / max(elapsed, 1e-9)) + "/s"),
        )

    def _ensure_table(self, conn: dbm.Connection, key: tuple[str, str], schemas: _SchemaBook) -> None:
        db, table = key
        if table.lower() in {n.lower() for n, _t, _c in dbm.list_tables(conn, db)}:
            return
        create_db, create_table = schemas.lookup(db, table)
        dbm.execute(
            conn,
            (create_db or f"CREATE DATABASE {dbm.qi(db)}").replace(
                "CREATE DATABASE", "CREATE DATABASE IF NOT EXISTS", 1
            ),
        )
        if not create_table:
            raise br_error("ErrRestoreInvalidBackup", f"no schema of {db}.{table} in the log backup")
        dbm.execute(conn, f"USE {dbm.qi(db)}")
        dbm.execute(conn, create_table)

    def _apply_ddl(
        self, conn: dbm.Connection, events: Iterable[dict[str, Any]], schemas: _SchemaBook, flt: TableFilter, pre: bool
    ) -> None:
        """Creates before the row changes, drops after them (the final DDL state wins)."""
        final = schemas.final_state()
        for (db, table), alive in final.items():
            if not flt.match_table(db, table):
                continue
            if pre and alive:
                self._ensure_table(conn, (db, table), schemas)
            if not pre and not alive:
                dbm.execute(conn, f"DROP TABLE IF EXISTS {dbm.qt(db, table)}")
        del events


class _SchemaBook:
    """Schemas known to the log backup: those at ``log start`` plus the DDL events replayed so far."""

    def __init__(self, log_meta: dict[str, Any]) -> None:
        emu = log_meta.get("Emulator") or {}
        self.dbs = {d["name"]: d.get("create_sql", "") for d in emu.get("databases", [])}
        self.tables = {(t["db"], t["name"]): t.get("create_sql", "") for t in emu.get("tables", [])}
        self.touched: dict[tuple[str, str], bool] = {}
        self.fallback: dict[tuple[str, str], tuple[str, str]] = {}

    def remember(self, ev: dict[str, Any]) -> None:
        """A CREATE outside the restored range: only used when rows in range need a table nobody created."""
        if ev.get("op") == "create_table":
            self.fallback[(ev["db"], ev["table"])] = (ev.get("create_db_sql", ""), ev["create_sql"])

    def apply(self, ev: dict[str, Any]) -> None:
        key = (ev.get("db", ""), ev.get("table", ""))
        if ev["op"] == "create_table":
            self.tables[key] = ev["create_sql"]
            if ev.get("create_db_sql"):
                self.dbs[key[0]] = ev["create_db_sql"]
            self.touched[key] = True
        elif ev["op"] == "drop_table":
            self.touched[key] = False

    def lookup(self, db: str, table: str) -> tuple[str, str]:
        create_table = self.tables.get((db, table), "")
        create_db = self.dbs.get(db, "")
        if not create_table and (db, table) in self.fallback:
            create_db, create_table = create_db or self.fallback[(db, table)][0], self.fallback[(db, table)][1]
        return create_db, create_table

    def final_state(self) -> dict[tuple[str, str], bool]:
        return dict(self.touched)


def _dur(seconds: float) -> Any:
    from .output import Duration

    return Duration.seconds(seconds)


# --------------------------------------------------------------------------- fault: silent corruption

_NUMERIC = {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "double", "float"}
_TEXT = {"varchar", "text", "mediumtext", "longtext", "tinytext", "blob", "mediumblob", "longblob", "varbinary"}
_TIME = {"datetime", "timestamp", "date"}


def corrupt_rows(conn: dbm.Connection, cluster: Cluster, tables: list[tuple[str, str]]) -> None:
    """The ``restore_corrupt_rows`` fault: after BR's own checksum passed, change (or delete) ``rows``
    rows (default 3) of ``table`` (``db.table``; default the first restored table, by name, with rows):
    the rows in the middle of the key order. Silent, as a storage or restore bug would be: the summary
    and the exit code say success; only the BR log file mentions it."""
    fault = cluster.faults().get("restore_corrupt_rows")
    if fault is None or not tables:
        return
    wanted = fault.get("table")
    candidates = sorted(tables) if not wanted else [tuple(str(wanted).split(".", 1))]
    count = int(fault.get("rows", 3))
    mode = str(fault.get("mode", "change"))
    for db, name in candidates:
        present = {n.lower() for n, _t, _c in dbm.list_tables(conn, db)} if db in dbm.list_databases(conn) else set()
        if name.lower() not in present:
            continue
        info = dbm.describe_table(conn, db, name, "BASE TABLE")
        total = int(dbm.query(conn, f"SELECT COUNT(*) FROM {dbm.qt(db, name)}")[0][0])
        if total == 0:
            continue
        key = ", ".join(dbm.qi(k) for k in info.pk)
        where = (
            f"({key}) IN (SELECT {key} FROM (SELECT {key} FROM {dbm.qt(db, name)} ORDER BY {key} "
            f"LIMIT {count} OFFSET {max(0, total // 2 - count // 2)}) AS picked)"
        )
        unique = {
            str(r[0])
            for r in dbm.query(
                conn,
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE NON_UNIQUE = 0 AND TABLE_SCHEMA = "
                + dbm.sql_str(db)
                + " AND TABLE_NAME = "
                + dbm.sql_str(name),
            )
        }
        free = [c for c in info.columns if c.name not in info.pk and c.name not in unique]
        column = next((c for c in free if c.data_type.lower() in _NUMERIC), None) or next(
            (c for c in free if c.data_type.lower() in _TEXT | _TIME), None
        )
        if mode == "delete" or column is None:
            changed = dbm.execute(conn, f"DELETE FROM {dbm.qt(db, name)} WHERE {where}")
            what = "deleted"
        else:
            col = dbm.qi(column.name)
            kind = column.data_type.lower()
            if kind in _NUMERIC:
                new = f"COALESCE({col}, 0) + 1"
            elif kind in _TIME:
                new = f"COALESCE({col}, '2000-01-01') + INTERVAL 1 DAY"
            else:
                new = f"CONCAT(COALESCE({col}, ''), '~')"
            changed = dbm.execute(conn, f"UPDATE {dbm.qt(db, name)} SET {col} = {new} WHERE {where}")
            what = f"changed ({column.name})"
        LOG.info(
            "restore.go:1",
            "[emulator fault restore_corrupt_rows]",
            ("table", f"{db}.{name}"),
            ("rows", changed),
            ("what", what),
        )
        return
