"""Owner-held backup keys (#17) through a real Airflow on the playground.

The module adds a cluster ``vault`` to the e2e fleet for its own tests (and puts the file back after):
``br.encryption.mode: owner-key`` with a public key made here, ``restore.owner_key_conn_id:
owner_key_vault``. vault is an emulated cluster of its own (tests/e2e/conftest.py starts it with the
others: ``E2E_EXTRA_CLUSTERS``), with its own PD, SQL, backups and log storage under ``vault/``.

* log backup: vault's log check DAG starts the log task (its repair step) with a fresh log key: catalogued
  and in a manifest beside the log, only wrapped, given to BR as ``--log.crypter.key-file``; the log files
  are encrypted with it;
* a full backup and an incremental: each has its own data key, catalogued and in its manifest only wrapped
  to the public key; BR (the emulator) opens a backup with its key file, and with a wrong key fails with
  BR's own text (``parse backupmeta failed because of wrong aes cipher``);
* a drill and an on-demand PITR restore with the private key connection: the PITR gets the log key as
  ``--log.crypter.key-file``; the data equals the source;
* the same restore without the connection: refused before BR runs (no ``br restore`` in the journal),
  naming the key id (for the PITR: the log key and its key id); with another owner's private key: refused,
  naming both key ids;
* rotation: the fleet config gets a new public key (a new backup uses it at once), ``tidbops keys rewrap``
  rewraps every retained backup's data key and every log key; a restore with the new private key works,
  and the old private key no longer opens any manifest;
* a secret scan over everything the run left: task logs (API and files), XComs, rendered fields, run notes
  and confs, the catalog, every object under ``vault/`` in the bucket, the BR emulator's journal and the
  full argv of every BR process (``capture-argv``), BR's log files: no clear data key, no clear log key, no
  private key. Not scanned: the emulated PD's state (``<home>/clusters/*``), where BR itself keeps a log
  task's key in plaintext for the task's life (``generateSecurityConfig``): that is BR's design, not ours.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyrage import x25519

from tidbops import tso
from tidbops.catalog.logkeys import list_log_keys
from tidbops.catalog.records import BackupStatus
from tidbops.catalog.store import Catalog
from tidbops.config import load_fleet
from tidbops.keys import owner
from tidbops.keys.logkeys import LogKey, unwrap_log_key
from tidbops.keys.owner import OwnerKeyError, WrappedKey
from tidbops_playground import journal, manager
from tidbops_playground.airflow import AirflowAPI, AirflowError, ensure_pools
from tidbops_playground.registry import Registry

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
VAULT = "vault"
TASK = "pitr-vault"
CONN = "owner_key_vault"
RESTORE = "tidb_restore"
REASON = "e2e: owner-held keys"
RUN_TIMEOUT = 600.0


def pair() -> tuple[str, str]:
    ident = x25519.Identity.generate()
    return str(ident.to_public()), str(ident)


class State:
    """What the module's tests share: the key pairs, the runs made, the clear keys seen."""

    def __init__(self) -> None:
        self.old = pair()
        self.stranger = pair()
        self.new = pair()
        self.runs: list[tuple[str, str]] = []
        self.clear: dict[str, str] = {}  # backup id → clear data key (hex), recovered by unwrapping
        self.clear_log: dict[str, str] = {}  # log key id → clear log key (hex), recovered by unwrapping


def br(home: Path, registry: Registry, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``br`` as a DBA types it (S3 keys in the environment)."""
    assert registry.s3 is not None
    env = {
        **os.environ,
        **manager.playground_env(home),
        "AWS_ACCESS_KEY_ID": registry.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": registry.s3.secret_key,
    }
    argv = [str(manager.BR_PATH), *args, "--log-file", str(home / "logs" / "e2e-owner-keys-br.log")]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 or not check, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def set_connection(api: AirflowAPI, private: str | None) -> None:
    """The owner's private key connection on this Airflow (None: absent, as on a backup-only worker)."""
    with contextlib.suppress(AirflowError):
        api._request("DELETE", f"/api/v2/connections/{CONN}")
    if private is not None:
        api._request(
            "POST", "/api/v2/connections", {"connection_id": CONN, "conn_type": "generic", "password": private}
        )


def write_vault(fleet: Path, original: str, public: str, registry: Registry) -> None:
    doc = yaml.safe_load(original)
    dev = next(c for c in doc["clusters"] if c["name"] == "dev")
    vault = {
        **{k: v for k, v in dev.items() if k not in ("slow_query", "schedules", "log_backup")},
        "name": VAULT,
        "pd": [registry.clusters[VAULT].pd],  # its own emulated cluster
        "tidb_conn_id": manager.conn_id(VAULT),
        "br": {"encryption": {"method": "aes256-ctr", "mode": "owner-key", "owner_public_key": public}},
        "log_backup": {"enabled": True, "task_name": TASK},  # its log storage: s3://…/vault/log
        "drill": {"target": "scratch2", "mode": "snapshot"},
        "restore": {"allowed_targets": ["scratch1", "scratch2"], "owner_key_conn_id": CONN},
        "schedules": {k: None for k in ("full", "incremental", "log_backup_check", "drill", "slow_query_harvest")},
    }
    doc["clusters"] = [c for c in doc["clusters"] if c["name"] != VAULT] + [vault]
    fleet.write_text(yaml.safe_dump(doc, sort_keys=False))
    fresh = load_fleet(fleet)
    assert fresh.ok, [str(i) for i in fresh.issues]


def run_dag(api: AirflowAPI, state: State, dag_id: str, conf: dict[str, Any] | None = None) -> tuple[str, str]:
    api.wait_for_dag(dag_id, timeout=180)
    api.unpause(dag_id)
    run_id = ""
    for attempt in range(60):  # tidb_restore knows vault once the DAG processor has read the new fleet
        try:
            run_id = api.trigger(dag_id, conf=conf)
            break
        except AirflowError as exc:
            if ("HTTP 400" in str(exc) and VAULT in str(exc)) or "HTTP 500" in str(exc):
                if attempt < 59:
                    time.sleep(3)
                    continue
            raise
    state.runs.append((dag_id, run_id))
    return run_id, wait_run(api, dag_id, run_id)


def wait_run(api: AirflowAPI, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
    """``AirflowAPI.wait_run``, but a poll the loaded API server does not answer in time is polled again."""
    deadline = time.monotonic() + timeout
    state = "queued"
    while time.monotonic() < deadline:
        try:
            state = str(api.run(dag_id, run_id)["state"])
        except (TimeoutError, OSError):
            continue
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    raise AirflowError(f"run {run_id} of {dag_id} still {state} after {timeout}s")


def restore_conf(**kw: Any) -> dict[str, Any]:
    return {"source_cluster": VAULT, "target_cluster": "scratch1", "reason": REASON, "dry_run": False, **kw}


def vault_rows(catalog: Catalog) -> list[Any]:
    return [b for b in catalog.list_backups(VAULT) if b.status is BackupStatus.SUCCEEDED]


def manifest_of(bucket: manager.Bucket, storage_uri: str) -> dict[str, Any]:
    doc = json.loads(bucket.get(bucket.key(f"{storage_uri}/tidbops-manifest.json")))
    return dict(doc["backup"])


def wait_checkpoint(home: Path, registry: Registry, past: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = br(home, registry, "log", "status", "--pd", registry.clusters[VAULT].pd, "--json").stdout
        tasks = json.loads(next(ln for ln in out.splitlines() if ln.startswith("[")))
        if tasks and min(int(t["checkpoint"]) for t in tasks) >= past:
            return
        time.sleep(2)
    raise AssertionError(f"vault's log checkpoint did not pass {past} in {timeout}s")


def log_keys_of(catalog: Catalog) -> list[LogKey]:
    return list_log_keys(catalog, VAULT)


@pytest.fixture(scope="module")
def vault(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, e2e_fleet: Path
) -> Iterator[State]:
    """vault in the e2e fleet, its pool, the private key connection, argv capture, and its log backup
    started by its own log check DAG (the repair step: a fresh log key)."""
    state = State()
    fleet = e2e_fleet
    original = fleet.read_text()
    marker = playground_home / journal.ARGV_MARKER
    marker.touch()
    write_vault(fleet, original, state.old[0], registry)
    ensure_pools(airflow, fleet)
    set_connection(airflow, state.old[1])
    try:
        dag_id = f"tidb_log_backup_check__{VAULT}"
        run_id, _ = run_dag(airflow, state, dag_id)
        repair = airflow.xcom(dag_id, run_id, "repair_log_backup")
        assert repair and [o["ok"] for o in repair["outcomes"]] == [True], airflow.run_logs(dag_id, run_id)[-6000:]
        yield state
    finally:
        marker.unlink(missing_ok=True)
        fleet.write_text(original)
        set_connection(airflow, None)
        br(playground_home, registry, "log", "stop", "--task-name", TASK, "--pd", registry.clusters[VAULT].pd,
           check=False)  # fmt: skip


def test_the_log_backup_runs_encrypted_with_a_fresh_log_key_stored_only_wrapped(
    vault: State, catalog: Catalog, bucket: manager.Bucket, e2e_fleet: Path
) -> None:
    [key] = log_keys_of(catalog)
    assert key.key_id == owner.key_id(vault.old[0]) and key.start_ts is not None and key.end_ts is None
    assert key.task_name == TASK and key.storage_uri.endswith("/vault/log")
    m = LogKey.from_manifest(bucket.get(bucket.key(f"{key.storage_uri}/{key.manifest_name()}")), key.storage_uri)
    assert (m.key_id, m.wrapped_key, m.start_ts) == (key.key_id, key.wrapped_key, key.start_ts)
    vault.clear_log[key.id] = unwrap_log_key(load_fleet(e2e_fleet).get(VAULT), key, vault.old[1], what="t").hex
    events = [e.kind for e in catalog.list_events(cluster=VAULT)]
    assert "log_backup.key_created" in events and "log_backup.key_started" in events


# ------------------------------------------------------------------------------------------ backups


def test_every_backup_has_its_own_data_key_stored_only_wrapped(
    airflow: AirflowAPI, vault: State, catalog: Catalog, bucket: manager.Bucket, playground_home: Path,
    registry: Registry, tmp_path: Path,
) -> None:  # fmt: skip
    for dag_id in (f"tidb_backup_full__{VAULT}", f"tidb_backup_incremental__{VAULT}"):
        run_id, state = run_dag(airflow, vault, dag_id)
        assert state == "success", airflow.run_logs(dag_id, run_id)[-6000:]
    rows = vault_rows(catalog)
    assert [r.kind.value for r in rows] == ["full", "incremental"]
    old_id = owner.key_id(vault.old[0])
    for row in rows:
        assert row.key_id == old_id and row.wrapped_key and row.encryption_method == "aes256-ctr"
        m = manifest_of(bucket, row.storage_uri)
        assert (m["key_id"], m["wrapped_key"]) == (row.key_id, row.wrapped_key)
        vault.clear[row.id] = owner.unwrap(WrappedKey(row.key_id, row.wrapped_key), vault.old[1], "aes256-ctr").hex
    assert len(set(vault.clear.values())) == 2  # a fresh key per backup
    assert base64.b64decode(rows[0].wrapped_key or "").startswith(b"age-encryption.org/v1\n")

    # BR opens a backup with its own key file, and with any other key fails with BR's text
    assert registry.s3 is not None
    full = rows[0]
    decode = ["debug", "decode", "--field=end-version", "--storage", full.storage_uri,
              "--s3.endpoint", registry.s3.endpoint, "--crypter.method", "aes256-ctr"]  # fmt: skip
    right, wrong = tmp_path / "right.key", tmp_path / "wrong.key"
    right.write_text(vault.clear[full.id])
    wrong.write_text(vault.clear[rows[1].id])  # another backup's key: a valid key, the wrong one
    for f in (right, wrong):
        f.chmod(0o600)
    ok = br(playground_home, registry, *decode, "--crypter.key-file", str(right))
    assert ok.stdout.strip().splitlines()[-1] == str(full.backup_ts)
    bad = br(playground_home, registry, *decode, "--crypter.key-file", str(wrong), check=False)
    assert bad.returncode != 0 and "parse backupmeta failed because of wrong aes cipher" in bad.stdout + bad.stderr


# ---------------------------------------------------------------------------------- drill and PITR


def test_a_drill_with_the_private_key_restores_data_equal_to_the_source(airflow: AirflowAPI, vault: State) -> None:
    dag_id = f"tidb_restore_drill__{VAULT}"
    run_id, state = run_dag(airflow, vault, dag_id, conf={"chunk_rows": 500})
    assert state == "success", airflow.run_logs(dag_id, run_id)[-8000:]
    plan = airflow.xcom(dag_id, run_id, "choose_restore_point")
    assert [s["kind"] for s in plan["steps"]] == ["full", "incremental"]
    validation = airflow.xcom(dag_id, run_id, "validate_restored_data")
    assert validation["ok"] and validation["mismatches"] == 0 and validation["tables_checked"] >= 7
    log = airflow.task_log(dag_id, run_id, "restore_to_scratch", 1)
    assert f"with the owner's private key (key id {owner.key_id(vault.old[0])})" in log


def test_an_on_demand_pitr_restore_with_the_private_key_equals_the_source(
    airflow: AirflowAPI, vault: State, catalog: Catalog, playground_home: Path, registry: Registry
) -> None:
    full = vault_rows(catalog)[0]
    time.sleep(2)
    point = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    assert tso.from_datetime(point) > (full.backup_ts or 0)
    wait_checkpoint(playground_home, registry, tso.from_datetime(point))
    typed = point.astimezone(timezone(timedelta(hours=1))).isoformat()
    run_id, state = run_dag(airflow, vault, RESTORE, restore_conf(restore_point=typed, validate_after=True))
    assert state == "success", airflow.run_logs(RESTORE, run_id)[-8000:]
    plan = airflow.xcom(RESTORE, run_id, "plan_restore")["plan"]
    assert plan["mode"] == "pitr" and plan["restore_ts"] == tso.from_datetime(point)
    validation = airflow.xcom(RESTORE, run_id, "validate")
    assert validation["ok"] and validation["mismatches"] == 0
    [key] = log_keys_of(catalog)
    log = airflow.task_log(RESTORE, run_id, "restore__scratch1", 1)
    assert f"unwrapped log key {key.id}" in log and key.key_id in log, log[-3000:]
    points = [a for a in journal.captured_argv(playground_home) if a[:2] == ["restore", "point"]]
    assert points and all("--log.crypter.key-file" in a and "--crypter.key-file" in a for a in points)


# --------------------------------------------------------------------------------------- refusals


def test_a_pitr_without_the_private_key_is_refused_before_br_naming_the_log_key(
    airflow: AirflowAPI, vault: State, catalog: Catalog, playground_home: Path, registry: Registry
) -> None:
    [key] = log_keys_of(catalog)
    set_connection(airflow, None)
    try:
        before = journal.size(playground_home)
        point = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
        wait_checkpoint(playground_home, registry, tso.from_datetime(point))
        run_id, state = run_dag(airflow, vault, RESTORE, restore_conf(restore_point=point.isoformat()))
        assert state == "failed"
        log = airflow.task_log(RESTORE, run_id, "restore__scratch1", 1)
        assert "refused before BR ran" in log and f"log key {key.id}" in log and key.key_id in log, log[-3000:]
        assert f"connection '{CONN}' (restore.owner_key_conn_id) is not set on this worker" in log
        assert not any(e["command"][:1] == ["restore"] for e in journal.read(playground_home, before))
    finally:
        set_connection(airflow, vault.old[1])


def test_without_the_private_key_connection_the_restore_is_refused_before_br(
    airflow: AirflowAPI, vault: State, catalog: Catalog, playground_home: Path
) -> None:
    set_connection(airflow, None)
    try:
        before = journal.size(playground_home)
        latest = vault_rows(catalog)[-1].id
        run_id, state = run_dag(airflow, vault, RESTORE, restore_conf(restore_point=latest))
        assert state == "failed"
        log = airflow.task_log(RESTORE, run_id, "restore__scratch1", 1)
        assert "refused before BR ran" in log and owner.key_id(vault.old[0]) in log, log[-3000:]
        assert f"connection '{CONN}' (restore.owner_key_conn_id) is not set on this worker" in log
        ran = [" ".join(e["command"]) for e in journal.read(playground_home, before)]
        assert not any(c.startswith("restore") for c in ran), ran
    finally:
        set_connection(airflow, vault.old[1])


def test_a_wrong_private_key_is_refused_naming_both_key_ids(
    airflow: AirflowAPI, vault: State, catalog: Catalog, playground_home: Path
) -> None:
    set_connection(airflow, vault.stranger[1])
    try:
        before = journal.size(playground_home)
        latest = vault_rows(catalog)[-1].id
        run_id, state = run_dag(airflow, vault, RESTORE, restore_conf(restore_point=latest))
        assert state == "failed"
        log = airflow.task_log(RESTORE, run_id, "restore__scratch1", 1)
        assert "wrong owner private key for backup" in log, log[-3000:]
        assert owner.key_id(vault.old[0]) in log and owner.key_id(vault.stranger[0]) in log
        assert not any(e["command"][:1] == ["restore"] for e in journal.read(playground_home, before))
    finally:
        set_connection(airflow, vault.old[1])


# ---------------------------------------------------------------------------------------- rotation


def test_rewrap_then_restore_with_the_new_key_and_the_old_key_opens_nothing(
    airflow: AirflowAPI, vault: State, catalog: Catalog, bucket: manager.Bucket, playground_home: Path,
    registry: Registry, tmp_path: Path, e2e_fleet: Path,
) -> None:  # fmt: skip
    fleet = e2e_fleet
    write_vault(fleet, fleet.read_text(), vault.new[0], registry)  # the config first: new backups use it
    old_file = tmp_path / "old.key"
    old_file.write_text(vault.old[1] + "\n")
    old_file.chmod(0o600)
    assert registry.s3 is not None
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": registry.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": registry.s3.secret_key,
        "TIDBOPS_FLEET_CONFIG": str(fleet),
    }
    catalog_url = f"sqlite:///{playground_home / 'airflow' / 'tidbops_catalog.db'}"
    argv = [str(Path(sys.executable).parent / "tidbops"), "keys", "rewrap", "--cluster", VAULT, "--from-key", str(old_file),
            "--catalog", catalog_url, "--s3-endpoint", registry.s3.endpoint, "--actor", "e2e", "--json"]  # fmt: skip
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    rows = vault_rows(catalog)
    assert sorted(report["rewrapped"]) == sorted(r.id for r in rows) and report["errors"] == []
    new_id = owner.key_id(vault.new[0])
    for row in rows:
        m = manifest_of(bucket, row.storage_uri)
        assert row.key_id == m["key_id"] == new_id and row.wrapped_key == m["wrapped_key"]
        with pytest.raises(OwnerKeyError, match="wrong owner private key"):
            owner.unwrap(WrappedKey(m["key_id"], m["wrapped_key"]), vault.old[1], "aes256-ctr")
        assert (
            owner.unwrap(WrappedKey(m["key_id"], m["wrapped_key"]), vault.new[1], "aes256-ctr").hex
            == vault.clear[row.id]
        )
    audit = [e for e in catalog.list_events(cluster=VAULT) if e.kind == "backup.key_rewrapped"]
    assert len(audit) == len(rows) and {e.actor for e in audit} == {"e2e"}
    keys = log_keys_of(catalog)
    assert sorted(report["log_keys_rewrapped"]) == sorted(k.id for k in keys) and keys
    for key in keys:
        m = LogKey.from_manifest(bucket.get(bucket.key(f"{key.storage_uri}/{key.manifest_name()}")), key.storage_uri)
        assert key.key_id == m.key_id == new_id and key.wrapped_key == m.wrapped_key
        with pytest.raises(OwnerKeyError, match="wrong owner private key"):
            owner.unwrap(m.wrapped, vault.old[1], "aes256-ctr")
        assert owner.unwrap(m.wrapped, vault.new[1], "aes256-ctr").hex == vault.clear_log[key.id]

    # the restore with the new private key
    set_connection(airflow, vault.new[1])
    latest = rows[-1].id
    run_id, state = run_dag(airflow, vault, RESTORE, restore_conf(restore_point=latest, validate_after=True))
    assert state == "success", airflow.run_logs(RESTORE, run_id)[-8000:]
    assert airflow.xcom(RESTORE, run_id, "validate")["ok"]

    # a new backup uses the new key at once
    run_id, state = run_dag(airflow, vault, f"tidb_backup_full__{VAULT}")
    assert state == "success", airflow.run_logs(f"tidb_backup_full__{VAULT}", run_id)[-6000:]
    newest = vault_rows(catalog)[-1]
    assert newest.id not in vault.clear and newest.key_id == new_id
    vault.clear[newest.id] = owner.unwrap(
        WrappedKey(newest.key_id, newest.wrapped_key or ""), vault.new[1], "aes256-ctr"
    ).hex


# ------------------------------------------------------------------------------------- secret scan


def _texts_of_runs(api: AirflowAPI, runs: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """(where, text) of every run: its JSON (conf, note), each task's log, XComs and rendered fields."""
    for dag_id, run_id in runs:
        yield f"{dag_id}/{run_id} run", json.dumps(api.run(dag_id, run_id))
        for ti in api.task_instances(dag_id, run_id):
            task = ti["task_id"]
            yield f"{dag_id}/{run_id}/{task} instance", json.dumps(ti)  # rendered_fields included
            with contextlib.suppress(AirflowError):
                yield (
                    f"{dag_id}/{run_id}/{task} log",
                    api.task_log(dag_id, run_id, task, max(1, ti.get("try_number") or 1)),
                )
            entries = api._request(
                "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries"
            ).get("xcom_entries", [])
            for entry in entries:
                value = api._request(
                    "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries/{entry['key']}"
                )
                yield f"{dag_id}/{run_id}/{task} xcom {entry['key']}", json.dumps(value)


def _files(root: Path) -> Iterator[tuple[str, str]]:
    for path in root.rglob("*"):
        if path.is_file() and path.stat().st_size < 64 << 20:
            yield str(path), path.read_bytes().decode("latin-1")


def test_no_clear_data_key_and_no_private_key_anywhere(
    airflow: AirflowAPI, vault: State, catalog: Catalog, bucket: manager.Bucket, playground_home: Path
) -> None:
    argvs = journal.captured_argv(playground_home)
    assert any(a[:2] == ["backup", "full"] and "--crypter.key-file" in a for a in argvs), "no argv captured"
    assert any(a[:2] == ["log", "start"] and "--log.crypter.key-file" in a for a in argvs), "no log start argv"
    assert vault.clear and vault.clear_log and len(vault.runs) >= 8
    clear = {**vault.clear, **{f"log key {k}": v for k, v in vault.clear_log.items()}}
    needles = {f"data key of {b}": k for b, k in clear.items()}
    needles |= {f"data key of {b} (upper)": k.upper() for b, k in clear.items()}
    for name, (_, private) in (("old", vault.old), ("stranger", vault.stranger), ("new", vault.new)):
        needles[f"{name} private key"] = private
        needles[f"{name} private key body"] = private.removeprefix("AGE-SECRET-KEY-1")
    haystacks: list[tuple[str, str]] = list(_texts_of_runs(airflow, vault.runs))
    haystacks.append(("BR argv", json.dumps(argvs)))
    haystacks += list(_files(playground_home / "airflow" / "logs"))  # every task log file
    haystacks += list(_files(playground_home / "logs"))  # BR's log files, the playground's logs
    haystacks += [(str(p), p.read_text()) for p in playground_home.glob("*.jsonl")]  # journal, argv
    catalog_file = playground_home / "airflow" / "tidbops_catalog.db"
    haystacks.append((str(catalog_file), catalog_file.read_bytes().decode("latin-1")))
    for row in catalog.list_backups(VAULT):
        haystacks.append((f"catalog row {row.id}", repr(row)))
    for key in bucket.objects(f"{VAULT}/"):
        haystacks.append((f"s3 {key}", bucket.get(key).decode("latin-1")))
    leaks = [(name, where) for where, text in haystacks for name, needle in needles.items() if needle in text]
    assert leaks == [], leaks[:20]
    print(f"\nsecret scan: {len(needles)} secrets over {len(haystacks)} texts "
          f"({sum(len(t) for _, t in haystacks) / 1e6:.1f} MB), {len(argvs)} BR argv; no leak")  # fmt: skip
