"""``br log start|status|pause|resume|stop|truncate|metadata`` and the checkpoint advancer.

The task lives in the emulated PD (``pd.json``). Its checkpoint advances only when :func:`advance` runs
(the playground daemon calls it every few seconds): it reads the change events of the source's
system-versioned history in ``(checkpoint, now - lag]``, writes them as ``.log`` files plus a ``.meta`` per
store into the log storage, then moves ``v1/global_checkpoint/<store>.ts`` and the task checkpoint.
``br restore point`` reads only those files (and the snapshot), never the live source.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import codec, tso
from . import db as dbm
from .cli import Runtime, parse_common, version_tuple
from .common import LOCK_CONTENT, LOCK_FILE, META_FILE, connect_cluster, get_storage, new_backup_meta, read_tidb_var
from .crypter import PLAINTEXT, Cipher
from .errors import BRError, br_error, plain
from .filter import parse as parse_filter
from .logstore import (
    CHECKPOINT_PREFIX,
    META_PREFIX,
    TRUNCATE_LOCK,
    TRUNCATE_SAFEPOINT_FILE,
    get_log_range,
    get_ts_from_file,
    list_metas,
    set_ts_to_file,
)
from .output import LOG, SUMMARY, Obj, bold, console, green, red, stdin_is_tty, yellow
from .pd import (
    LOG_BACKUP_SERVICE_ID,
    Cluster,
    alloc_ts,
    cluster_by_name,
    effective_gc_safepoint,
    resolve_cluster,
    running_restores,
    update_service_safepoint,
)
from .storage import Backend, ExternalStorage, WriteFault

DEFAULT_END_TS = 999999999999999999
ADVANCE_LAG_MS = int(os.environ.get("TIDBOPS_BR_ADVANCE_LAG_MS", "1500"))
HINT_ON_TRUNCATE_LOCK = (
    "There might be another truncate task running, or a truncate task that didn't exit properly. You may check the "
    "metadata and continue by wait other task finish or manually delete the lock file truncating.lock at the "
    "external storage."
)


def _task_obj(task: dict[str, Any]) -> Obj:
    return Obj(
        (
            ("taskName", task["name"]),
            ("startTs", task["start_ts"]),
            ("endTS", task["end_ts"]),
            ("tableFilter", ",".join(task.get("table_filter", []))),
        )
    )


def _task_name(rt: Runtime) -> str:
    name = rt.get("task-name")
    if not name:
        raise br_error("ErrInvalidArgument", "Miss parameters task-name")
    return str(name)


def _run_stream(cmd_name: str, fn: Any, *args: Any) -> None:
    """``RunStreamCommand``: the summary (except status/truncate) and the failure unit."""
    skip = cmd_name in ("log status", "log truncate")
    try:
        fn(*args)
        SUMMARY.success = True
    except BaseException as exc:
        LOG.error("stream.go:439", "failed to stream", ("command", cmd_name), ("error", str(exc)))
        SUMMARY.success = False
        SUMMARY.collect_failure_unit(cmd_name, str(exc))
        raise
    finally:
        if not skip:
            SUMMARY.emit(cmd_name)


# --------------------------------------------------------------------------- start


def run_start(rt: Runtime) -> None:
    cfg = parse_common(rt)
    name = _task_name(rt)
    try:
        start_ts = tso.parse_ts_string(rt.get("start-ts"), tz_check=True)
        end_ts = tso.parse_ts_string(rt.get("end-ts"), tz_check=True)
    except tso.TSParseError as exc:
        raise plain(str(exc)) from None
    gc_ttl = int(rt.get("gc-ttl")) or 1800
    if gc_ttl <= 0:
        gc_ttl = 1800
    _run_stream("log start", _start, cfg, name, start_ts, end_ts, gc_ttl)


def _start(cfg: Any, name: str, start_ts: int, end_ts: int, gc_ttl: int) -> None:
    cluster = connect_cluster(cfg)
    storage = get_storage(cfg.storage, cfg, cluster)
    with cluster.state() as st:
        current = alloc_ts(st)
    if start_ts == 0:
        start_ts = current
    if current < start_ts:
        raise br_error(
            "ErrInvalidArgument", f"invalid timestamps, startTS {start_ts} should be smaller than currentTS {current}"
        )
    if end_ts <= current:
        raise br_error(
            "ErrInvalidArgument", f"invalid timestamps, endTS {end_ts} should be larger than currentTS {current}"
        )
    with cluster.state() as st:
        restores = running_restores(st)
        if restores:
            raise plain(
                f"There are some lightning/restore tasks running: [{', '.join(restores)}] please stop or wait "
                "finishing at first. If the lightning/restore task is forced to terminate by system, "
                "please wait for ttl to decrease to 0."
            )
        if st.get("log_tasks"):
            raise br_error("ErrStreamLogTaskExist", "It supports single stream log task currently")
    restart = storage.file_exists(LOCK_FILE)
    conn = dbm.connect(cluster.entry)
    try:
        flt_strings = list(cfg.filter_str or ["*.*"])
        flt = parse_filter(flt_strings)
        if restart:
            info = get_log_range(storage)
            if info.cluster_id > 0 and info.cluster_id != cluster.entry.cluster_id:
                raise br_error(
                    "ErrInvalidArgument",
                    f"the stream log files from cluster ID:{info.cluster_id} and current cluster ID:"
                    f"{cluster.entry.cluster_id} ",
                )
            start_ts = info.max_ts
            known: dict[str, str] = {}
        else:
            known = {}
        sp_id = f"br-{uuid.uuid4()}"
        with cluster.state() as st:
            sp = effective_gc_safepoint(st, cluster.faults())
            if start_ts <= sp:
                raise br_error("ErrBackupGCSafepointExceeded", f"GC safepoint {sp} exceed TS {start_ts}").annotate(
                    f"failed to check gc safePoint, ts {start_ts}"
                )
            update_service_safepoint(st, sp_id, start_ts, gc_ttl)
        LOG.info(
            "stream.go:380", "set stream safePoint", ("safePoint", f"{{ID={sp_id},TTL={gc_ttl},BackupTS={start_ts}}}")
        )
        if not restart:
            storage.write_file(LOCK_FILE, LOCK_CONTENT)
            meta = new_backup_meta(cluster, start_ts, 0, read_tidb_var(conn, "new_collation_enabled", "True"))
            emu = meta["Emulator"]
            emu["log_backup"] = True
            dbs, tables = _schemas(conn, flt)
            emu["databases"] = dbs
            emu["tables"] = tables
            known = {f"{t['db']}\x00{t['name']}": _schema_key(t["create_sql"]) for t in tables}
            storage.write_file(META_FILE, codec_json(meta))
        range_count = 1 + (1 if flt_strings == ["*.*"] else sum(1 for _ in known))
    finally:
        conn.close()
    task = {
        "name": name,
        "start_ts": start_ts,
        "end_ts": end_ts,
        "storage": storage.backend.to_json(),
        "storage_uri": storage.uri,
        "table_filter": flt_strings,
        "paused": False,
        "checkpoint": start_ts,
        "last_errors": {},
        "pause_v2": None,
        "created_ms": tso.now_ms(),
        "known_tables": known,
        "qps": 0.0,
    }
    if cfg.log_cipher.enabled:
        # ``generateSecurityConfig``: the data key goes into the task's definition in PD, in plaintext, for the
        # life of the task (TiKV reads it there to encrypt each log file); a restart takes the key it is given
        task["security_config"] = {
            "plaintext_data_key": {"cipher_type": cfg.log_cipher.method, "cipher_key": cfg.log_cipher.key.hex()}
        }
    with cluster.state() as st:
        if st.get("log_tasks"):
            raise br_error("ErrStreamLogTaskExist", "It supports single stream log task currently")
        st["log_tasks"] = {name: task}
        update_service_safepoint(st, LOG_BACKUP_SERVICE_ID, max(start_ts - 1, 0), 86400)
    LOG.summary("log start", ("streamTaskInfo", _task_obj(task)), ("pausing", False), ("rangeCount", range_count))


def _schema_key(create_sql: str) -> str:
    """What counts as a schema change: the CREATE statement without its AUTO_INCREMENT counter."""
    return hashlib.sha256(re.sub(r" AUTO_INCREMENT=\d+", "", create_sql).encode()).hexdigest()


def codec_json(obj: dict[str, Any]) -> bytes:
    import json

    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _schemas(conn: dbm.Connection, flt: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dbs: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    for db in dbm.list_user_databases(conn):
        if not flt.match_schema(db):
            continue
        dbs.append({"name": db, "create_sql": dbm.show_create_database(conn, db)})
        for name, ttype, _ctime in dbm.list_tables(conn, db):
            if ttype in ("VIEW", "SEQUENCE") or not flt.match_table(db, name):
                continue
            tables.append({"db": db, "name": name, "create_sql": dbm.show_create_table(conn, db, name)})
    return dbs, tables


# --------------------------------------------------------------------------- status


def run_status(rt: Runtime) -> None:
    cfg = parse_common(rt)
    name = str(rt.get("task-name") or "")
    if not name:
        raise br_error("ErrInvalidArgument", "Miss parameters task-name")
    as_json = bool(rt.get("json"))
    _run_stream("log status", _status, cfg, name, as_json)


def _status(cfg: Any, name: str, as_json: bool) -> None:
    if not cfg.pd:
        raise br_error("ErrInvalidArgument", "the command needs access to PD, please specify `-u` or `--pd`")
    cluster = resolve_cluster(cfg.pd, ca=cfg.tls_ca)
    with cluster.state() as st:
        tasks = dict(st.get("log_tasks", {}))
    if name != "*":
        if name not in tasks:
            raise br_error("ErrPiTRTaskNotFound", f"no such task {name}")
        tasks = {name: tasks[name]}
    if as_json:
        console(_status_json(list(tasks.values())))
    else:
        _status_table(list(tasks.values()))


def _status_string(task: dict[str, Any]) -> str:
    paused = bool(task.get("paused"))
    pause_v2 = task.get("pause_v2") or {}
    if paused and (task.get("last_errors") or pause_v2.get("severity") == "ERROR"):
        return "ERROR"
    if paused:
        return "PAUSE"
    return "NORMAL"


def _status_json(tasks: list[dict[str, Any]]) -> str:
    import json

    with_status = version_tuple() >= (9, 0, 0)
    items = []
    for t in tasks:
        parts = [f'"name":{json.dumps(t["name"], ensure_ascii=False)}']
        if t.get("start_ts"):
            parts.append(f'"start_ts":{t["start_ts"]}')
        if t.get("end_ts"):
            parts.append(f'"end_ts":{t["end_ts"]}')
        if with_status:
            parts.append(f'"status":"{_status_string(t)}"')
        parts.append(
            '"table_filter":' + json.dumps(t.get("table_filter", []), ensure_ascii=False, separators=(",", ":"))
        )
        parts.append('"progress":[]')
        parts.append('"storage":' + json.dumps(t["storage_uri"], ensure_ascii=False))
        parts.append(f'"checkpoint":{t["checkpoint"]}')
        parts.append(f'"estimate_qps":{tso.go_float(float(t.get("qps", 0.0)))}')
        errs = []
        for store, e in sorted(t.get("last_errors", {}).items(), key=lambda kv: int(kv[0])):
            inner = []
            if e.get("happen_at"):
                inner.append(f'"happen_at":{int(e["happen_at"])}')
            if e.get("error_code"):
                inner.append('"error_code":' + json.dumps(e["error_code"], ensure_ascii=False))
            if e.get("error_message"):
                inner.append('"error_message":' + json.dumps(e["error_message"], ensure_ascii=False))
            inner.append(f'"store_id":{int(store)}')
            errs.append(f'{{"store_id":{int(store)},"last_error":{{{",".join(inner)}}}}}')
        parts.append('"last_errors":[' + ",".join(errs) + "]")
        items.append("{" + ",".join(parts) + "}")
    return "[" + ",".join(items) + "]"


def _status_table(tasks: list[dict[str, Any]]) -> None:
    if not tasks:
        console(red("○") + bold(" No Task Yet."))
        return
    console(green("●") + bold(f" Total {len(tasks)} Tasks."))
    now = time.time()

    def fmt_ts(ts: int) -> str:
        gap_s = round(now - tso.physical(ts) / 1000)
        gap = tso.go_duration(gap_s * 10**9)
        return f"{tso.format_date(ts)}; gap={red(gap) if gap_s > 600 else green(gap)}"

    for i, t in enumerate(tasks, 1):
        console(f"> #{i} <")
        status = _status_string(t)
        rows: list[tuple[str, str]] = [("name", t["name"])]
        if status == "ERROR":
            rows.append(("status", red("○") + bold(" ERROR")))
        elif status == "PAUSE":
            rows.append(("status", yellow("●") + bold(" PAUSE")))
        else:
            rows.append(("status", green("●") + bold(" NORMAL")))
        rows.append(("start", tso.format_date(int(t["start_ts"]))))
        if int(t.get("end_ts", 0)) > 0:
            rows.append(("end", tso.format_date(int(t["end_ts"]))))
        rows.append(("storage", t["storage_uri"]))
        rows.append(("speed(est.)", bold(f"{float(t.get('qps', 0.0)):.2f}") + " ops/s"))
        rows.append(("checkpoint[global]", fmt_ts(int(t["checkpoint"]))))
        for store, e in t.get("last_errors", {}).items():
            rows.append((f"error[store={store}]", e.get("error_code", "")))
            rows.append((f"error-happen-at[store={store}]", fmt_ts(tso.compose(int(e.get("happen_at", 0)), 0))))
            rows.append((f"error-message[store={store}]", e.get("error_message", "")))
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            console(f"{key.rjust(width)}: {bold(value) if not value.startswith(chr(27)) else value}")


# --------------------------------------------------------------------------- pause / resume / stop


def run_pause(rt: Runtime) -> None:
    cfg = parse_common(rt)
    name = _task_name(rt)
    gc_ttl = int(rt.get("gc-ttl"))
    if gc_ttl <= 0:
        gc_ttl = 86400
    _run_stream("log pause", _pause, cfg, name, gc_ttl)


def _get_task(st: dict[str, Any], name: str) -> dict[str, Any]:
    task = st.get("log_tasks", {}).get(name)
    if task is None:
        raise br_error("ErrPiTRTaskNotFound", f"no such task {name}")
    return dict(task)


def _pause(cfg: Any, name: str, gc_ttl: int) -> None:
    cluster = connect_cluster(cfg)
    with cluster.state() as st:
        task = _get_task(st, name)
        if task.get("paused"):
            raise br_error("ErrKVUnknown", f"The task {name} is paused already.")
        cp = int(task["checkpoint"])
        sp = effective_gc_safepoint(st, cluster.faults())
        if cp <= sp:
            raise br_error("ErrBackupGCSafepointExceeded", f"GC safepoint {sp} exceed TS {cp}").annotate(
                f"failed to check gc safePoint, ts {cp}"
            )
        update_service_safepoint(st, f"{name}_pause_safepoint", cp, gc_ttl)
        st["log_tasks"][name]["paused"] = True
        st["log_tasks"][name]["pause_v2"] = {
            "severity": "MANUAL",
            "operator_hostname": os.uname().nodename,
            "operator_pid": os.getpid(),
            "paused_at_ms": tso.now_ms(),
        }
    LOG.summary("log pause", ("streamTaskInfo", _task_obj(task)))


def run_resume(rt: Runtime) -> None:
    cfg = parse_common(rt)
    name = _task_name(rt)
    _run_stream("log resume", _resume, cfg, name)


def _resume(cfg: Any, name: str) -> None:
    cluster = connect_cluster(cfg)
    with cluster.state() as st:
        task = _get_task(st, name)
        if not task.get("paused"):
            raise br_error("ErrKVUnknown", f"The task {name} is active already.")
        cp = int(task["checkpoint"])
        sp = effective_gc_safepoint(st, cluster.faults())
        if cp <= sp:
            raise br_error("ErrBackupGCSafepointExceeded", f"GC safepoint {sp} exceed TS {cp}").annotate(
                f"the global checkpoint ts: {cp}({tso.go_time_string(cp)}) has been gc. "
            )
        live = st["log_tasks"][name]
        live["paused"] = False
        live["last_errors"] = {}
        live["pause_v2"] = None
        update_service_safepoint(st, f"{name}_pause_safepoint", cp, 1800)
    LOG.summary("log resume", ("streamTaskInfo", _task_obj(task)))


def run_stop(rt: Runtime) -> None:
    cfg = parse_common(rt)
    name = _task_name(rt)
    _run_stream("log stop", _stop, cfg, name)


def _stop(cfg: Any, name: str) -> None:
    cluster = connect_cluster(cfg)
    with cluster.state() as st:
        task = _get_task(st, name)
        del st["log_tasks"][name]
        update_service_safepoint(st, f"{name}_pause_safepoint", 0, 0)
        update_service_safepoint(st, LOG_BACKUP_SERVICE_ID, 0, 0)
    LOG.summary("log stop", ("streamTaskInfo", _task_obj(task)))


# --------------------------------------------------------------------------- metadata / truncate


def run_metadata(rt: Runtime) -> None:
    cfg = parse_common(rt)
    _run_stream("log metadata", _metadata, cfg)


def _metadata(cfg: Any) -> None:
    storage = get_storage(cfg.storage, cfg, None)
    info = get_log_range(storage)
    LOG.summary(
        "log metadata",
        ("log-min-ts", info.min_ts),
        ("log-min-date", tso.format_date(info.min_ts)),
        ("log-max-ts", info.max_ts),
        ("log-max-date", tso.format_date(info.max_ts)),
        caller="collector.go:69",
    )


def run_truncate(rt: Runtime) -> None:
    cfg = parse_common(rt)
    try:
        until = tso.parse_ts_string(rt.get("until"), tz_check=True)
    except tso.TSParseError as exc:
        raise plain(str(exc)) from None
    _run_stream("log truncate", _truncate, cfg, until, bool(rt.get("yes")), bool(rt.get("dry-run")))


def _prompt(message: str) -> bool:
    """``ConsoleOperations.PromptBool``: not interactive → yes; EOF / empty → no."""
    if not stdin_is_tty():
        return True
    sys.stdout.write(message + "(y/N) ")
    sys.stdout.flush()
    line = sys.stdin.readline()
    return line.strip().lower() in ("y", "yes")


def _truncate(cfg: Any, until: int, yes: bool, dry_run: bool) -> None:
    if until == 0:
        raise br_error("ErrInvalidArgument", "please provide the `--until` ts")
    storage = get_storage(cfg.storage, cfg, None)
    if storage.file_exists(TRUNCATE_LOCK):
        raise plain(
            f"failed to acquire lock on '{TRUNCATE_LOCK}': there is a lock file {TRUNCATE_LOCK} in the "
            f"storage: {HINT_ON_TRUNCATE_LOCK}"
        )
    storage.write_file(
        TRUNCATE_LOCK,
        codec_json(
            {"pid": os.getpid(), "hostname": os.uname().nodename, "lock_at": time.time(), "hint": HINT_ON_TRUNCATE_LOCK}
        ),
    )
    try:
        sp = get_ts_from_file(storage, TRUNCATE_SAFEPOINT_FILE)
        if until < sp:
            console("According to the log, you have truncated backup data before " + bold(tso.format_fixed4(sp)))
            if not yes and not _prompt("Continue? "):
                return
        t0 = time.monotonic()
        console("Reading Metadata... ", end="")
        metas = list_metas(storage)
        console(f"{green('DONE')} {{ take = {bold(tso.go_duration_seconds(time.monotonic() - t0))} }}")
        doomed: list[tuple[str, dict[str, Any]]] = []
        for path, m in metas:
            for f in m.get("files", []):
                if int(f["max_ts"]) < until:
                    doomed.append((path, f))
        kv_count = sum(int(f.get("kv_count", 0)) for _, f in doomed)
        size = sum(int(f.get("length", 0)) for _, f in doomed)
        console(f"We are going to remove {bold(str(len(doomed)))} files, until {bold(tso.format_fixed4(until))}.")
        if not yes and not _prompt(red("Sure? ")):
            return
        if until > sp and not dry_run:
            set_ts_to_file(storage, until, TRUNCATE_SAFEPOINT_FILE)
        t1 = time.monotonic()
        not_deleted: list[str] = []
        if not dry_run:
            doomed_paths = {f["path"] for _, f in doomed}
            for path, m in metas:
                keep = [f for f in m.get("files", []) if f["path"] not in doomed_paths]
                removed = [f for f in m.get("files", []) if f["path"] in doomed_paths]
                for f in removed:
                    try:
                        storage.delete_file(f["path"])
                    except BRError as exc:
                        LOG.warn("stream.go:610", "failed to delete file", ("file", f["path"]), ("error", str(exc)))
                        not_deleted.append(f["path"])
                if not removed:
                    continue
                if keep:
                    m["files"] = keep
                    m["min_ts"] = min(int(f["min_ts"]) for f in keep)
                    storage.write_file(path, codec_json(m))
                else:
                    storage.delete_file(path)
        human = tso.human_size(size)
        console(
            f"Clearing Data Files and Metadata {green('DONE')} {{ take = "
            f"{bold(tso.go_duration_seconds(time.monotonic() - t1))}, kv-count = {bold(str(kv_count))}, "
            f"kv-size = {bold(f'{size}({human})')} }}"
        )
        if not_deleted:
            console("Files below are not deleted due to error, you may clear it manually, check log for detail error:")
            console(f"- Total {bold(str(len(not_deleted)))} items.")
            if len(not_deleted) > 16:
                console(f"- {bold(str(len(not_deleted) - 16))} items omitted.")
            for f in not_deleted[:16]:
                console(f)
    finally:
        storage.delete_file(TRUNCATE_LOCK)


# --------------------------------------------------------------------------- the advancer


def _task_storage(task: dict[str, Any], cluster: Cluster) -> ExternalStorage:
    fault = cluster.faults().get("storage_write_error")
    wf = WriteFault(int(fault.get("after", 0))) if fault is not None else None
    return ExternalStorage(Backend.from_json(task["storage"]), wf)


def _error_task(task: dict[str, Any], store: int, code: str, message: str) -> None:
    task["paused"] = True
    task["last_errors"] = {
        str(store): {"happen_at": tso.now_ms(), "error_code": code, "error_message": message, "store_id": store}
    }
    task["pause_v2"] = {
        "severity": "ERROR",
        "payload_type": "application/x-protobuf;messagetype=brpb.StreamBackupError",
    }


def advance(home: Path, cluster: str, now_ms: int | None = None) -> int | None:
    """Flush the running task's changes up to ``now - lag`` and move its global checkpoint.

    Returns the global checkpoint TSO after this run, or ``None`` when there is no running task (none,
    paused, or put into ERROR/PAUSE by a fault). Safe to call concurrently with ``br`` (PD-state lock).
    """
    cl = cluster_by_name(Path(home), cluster)
    faults = cl.faults()
    now = tso.now_ms() if now_ms is None else int(now_ms)
    with cl.state() as st:
        tasks = st.get("log_tasks", {})
        if not tasks:
            return None
        name = sorted(tasks)[0]
        task = tasks[name]
        if task.get("paused"):
            return None
        stores = cl.store_ids()
        if "log_task_error" in faults:
            f = faults["log_task_error"]
            store = int(f.get("store_id", stores[0]))
            _error_task(
                task,
                store,
                str(f.get("code", "KV:LogBackup:RaftReq")),
                str(
                    f.get(
                        "message",
                        (
                            "retry time exceeds: and error failed to get initial snapshot: failed to get the "
                            "snapshot (region_id = 94812): Error during requesting raftstore: message: "
                            '"read index not ready, reason can not read index due to merge, region 94812" '
                            'read_index_not_ready { reason: "can not read index due to merge" region_id: 94812 }'
                        ),
                    )
                ),
            )
            return None
        if "log_task_pause" in faults:
            task["paused"] = True
            task["pause_v2"] = {"severity": "MANUAL", "operator_hostname": "tikv", "operator_pid": 0}
            return None
        cp = int(task["checkpoint"])
        if "log_checkpoint_frozen" in faults:
            return cp
        new_cp = tso.compose(now - ADVANCE_LAG_MS, 0)
        end_ts = int(task.get("end_ts") or 0)
        if end_ts and new_cp > end_ts:
            new_cp = end_ts
        if new_cp <= cp:
            return cp
        try:
            storage = _task_storage(task, cl)
            events = _flush(cl, task, storage, cp, new_cp, stores)
        except BRError as exc:
            _error_task(task, stores[0], "KV:LogBackup:Io", str(exc))
            return None
        window = max((tso.physical(new_cp) - tso.physical(cp)) / 1000.0, 1e-3)
        task["qps"] = round(events / window, 2)
        task["checkpoint"] = new_cp
        update_service_safepoint(st, LOG_BACKUP_SERVICE_ID, new_cp - 1, 86400)
        return new_cp


def _flush(
    cl: Cluster, task: dict[str, Any], storage: ExternalStorage, cp: int, new_cp: int, stores: tuple[int, ...]
) -> int:
    flt = parse_filter(task.get("table_filter") or ["*.*"])
    key = (task.get("security_config") or {}).get("plaintext_data_key")
    cipher = Cipher(key["cipher_type"], bytes.fromhex(key["cipher_key"])) if key else PLAINTEXT
    lo, hi = tso.us_to_sql(tso.ts_to_read_us(cp)), tso.us_to_sql(tso.ts_to_read_us(new_cp))
    known: dict[str, str] = task.setdefault("known_tables", {})
    conn = dbm.connect(cl.entry)
    ddl: list[dict[str, Any]] = []
    groups: dict[int, list[dict[str, Any]]] = {}
    total = 0
    try:
        seen: set[str] = set()
        for db in dbm.list_user_databases(conn):
            if not flt.match_schema(db):
                continue
            for name, ttype, ctime in dbm.list_tables(conn, db):
                if ttype in ("VIEW", "SEQUENCE") or not flt.match_table(db, name):
                    continue
                key = f"{db}\x00{name}"
                seen.add(key)
                info = dbm.describe_table(conn, db, name, ttype, str(ctime) if ctime else None)
                if known.get(key) != _schema_key(info.create_sql):
                    ts = new_cp
                    if ctime:
                        try:
                            # CREATE_TIME has second precision: the end of that second is not before the DDL
                            ts = tso.us_to_commit_ts(tso.sql_to_us(str(ctime)) + 999_999)
                        except ValueError:
                            ts = new_cp
                    ts = max(cp + 1, min(ts, new_cp))
                    ddl.append(
                        {
                            "ts": ts,
                            "op": "create_table",
                            "db": db,
                            "table": name,
                            "create_sql": info.create_sql,
                            "create_db_sql": dbm.show_create_database(conn, db),
                        }
                    )
                    known[key] = _schema_key(info.create_sql)
                if not info.versioned:
                    continue
                group = _table_events(conn, info, lo, hi)
                if group is None:
                    continue
                total += len(group["events"])
                store = stores[int(hashlib.md5(key.encode()).hexdigest(), 16) % len(stores)]  # noqa: S324
                groups.setdefault(store, []).append(group)
        for key in [k for k in known if k not in seen]:
            db, name = key.split("\x00", 1)
            ddl.append({"ts": new_cp, "op": "drop_table", "db": db, "table": name})
            del known[key]
    finally:
        conn.close()
    if ddl:
        groups.setdefault(stores[0], [])
    for store, store_groups in sorted(groups.items()):
        store_ddl = ddl if store == stores[0] else []
        ts_list = [int(e[0]) for g in store_groups for e in g["events"]] + [int(d["ts"]) for d in store_ddl]
        if not ts_list:
            continue
        min_ts, max_ts = min(ts_list), max(ts_list)
        day = datetime.fromtimestamp(tso.physical(min_ts) / 1000, tz=UTC)
        path = f"v1/{day:%Y%m%d}/{day:%H}/{store}/{min_ts}-{uuid.uuid4()}.log"
        data = codec.encode_container({"store_id": store, "groups": store_groups, "ddl": store_ddl}, "zstd")
        encryption = None
        sha256 = hashlib.sha256(data).hexdigest()  # DataFileInfo.Sha256: of the content before encryption
        if cipher.enabled:
            data = cipher.encrypt(data)  # IV || AES-CTR (real TiKV keeps the IV in FileEncryptionInfo.FileIv)
            encryption = {"method": cipher.method, "checksum": hashlib.sha256(data).hexdigest(), "mode": "plaintext"}
        storage.write_file(path, data)
        kv_count = sum(len(g["events"]) for g in store_groups) + len(store_ddl)
        meta = {
            "store_id": store,
            "resolved_ts": new_cp,
            "min_ts": min_ts,
            "max_ts": max_ts,
            "files": [
                {
                    "path": path,
                    "min_ts": min_ts,
                    "max_ts": max_ts,
                    "kv_count": kv_count,
                    "length": len(data),
                    "tables": [f"{g['db']}.{g['table']}" for g in store_groups],
                    "is_meta": bool(store_ddl),
                    "sha256": sha256,
                    **({"encryption": encryption} if encryption else {}),
                }
            ],
        }
        storage.write_file(f"{META_PREFIX}/{new_cp:016X}-{uuid.uuid4()}.meta", codec_json(meta))
    packed = struct.pack("<Q", new_cp)
    for store in stores:
        storage.write_file(f"{CHECKPOINT_PREFIX}/{store}.ts", packed)
    return total


def _table_events(conn: dbm.Connection, info: dbm.TableInfo, lo: str, hi: str) -> dict[str, Any] | None:
    cols = ", ".join(c.select_expr() for c in info.columns)
    sql = (
        f"SELECT {cols}, ROW_START, ROW_END FROM {dbm.qt(info.db, info.name)} FOR SYSTEM_TIME ALL WHERE "
        f"(ROW_START > '{lo}' AND ROW_START <= '{hi}') OR (ROW_END > '{lo}' AND ROW_END <= '{hi}')"
    )
    rows = dbm.query(conn, sql)
    if not rows:
        return None
    lo_us, hi_us = tso.sql_to_us(lo), tso.sql_to_us(hi)
    n = len(info.columns)
    pk_idx = info.pk_indexes()
    kinds = info.kinds
    puts: list[tuple[int, list[Any]]] = []
    put_keys: set[tuple[Any, ...]] = set()
    deletes: list[tuple[int, tuple[Any, ...]]] = []
    for r in rows:
        row = list(r[:n])
        start_us, end_us = tso.sql_to_us(str(r[n])), tso.sql_to_us(str(r[n + 1]))
        pk = tuple(row[i] for i in pk_idx)
        if lo_us < start_us <= hi_us:
            puts.append((start_us, row))
            put_keys.add((start_us, *pk))
        if lo_us < end_us <= hi_us:
            deletes.append((end_us, pk))
    events: list[list[Any]] = []
    pk_kinds = [kinds[i] for i in pk_idx]
    for end_us, pk in deletes:
        if (end_us, *pk) in put_keys:
            continue  # an UPDATE: the new version's put carries it
        events.append(
            [
                tso.us_to_commit_ts(end_us),
                "delete",
                [codec.encode_value(k, v) for k, v in zip(pk_kinds, pk, strict=True)],
            ]
        )
    for start_us, row in puts:
        events.append([tso.us_to_commit_ts(start_us), "put", codec.encode_rows(kinds, [tuple(row)])[0]])
    events.sort(key=lambda e: (int(e[0]), e[1] != "delete"))
    return {
        "db": info.db,
        "table": info.name,
        "columns": [c.name for c in info.columns],
        "kinds": kinds,
        "pk": info.pk,
        "events": events,
    }
