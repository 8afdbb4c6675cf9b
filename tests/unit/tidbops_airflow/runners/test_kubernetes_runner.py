"""The ``kubernetes`` BR runner on the fake Kubernetes API (tests/helpers/fake_kube.py): the real ``kubernetes``
client behind the provider's ``KubernetesHook`` talks to it over HTTP on loopback.

Covered: pending → running → succeeded (BR's output parsed as a local run's, the pod deleted); failed with BR's
error in the log (``BRError`` with BR's code, through ``BRHook.run``); evicted and image pull failure (a clear
``BRPodError``, the pod deleted); timeout (``BRTimeoutError``, the pod deleted); the task killed mid-run
(``BRHook.kill`` deletes the pod); a retried task adopts its own pod (running, or succeeded) and recreates a
failed one; reads never adopt; ``br log status`` and ``br -V`` of the log check, its trigger and the drill go
through pods for a kubernetes cluster. The fleet config is a real file read by the real loader; the TiDB SQL
side is pymysql's ``connect`` answering ``tidb_version()`` (not our code).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.fake_kube import (
    FakeKube,
    pod_evicted,
    pod_fails,
    pod_image_pull_fails,
    pod_runs,
    pod_succeeds,
)
from tests.helpers.kube_fixtures import KUBE_NAMESPACE, first_trigger_event
from tests.helpers.tidb_version import VersionOnlyTiDB
from tidbops.br.command import backup_argv, log_argv
from tidbops.br.errors import BRError
from tidbops.br.output import parse_br_output
from tidbops.br.runner import BRTimeoutError
from tidbops.config import ClusterConfig, load_fleet
from tidbops.k8s.pod import BRPodError, PodIdentity
from tidbops_airflow.hooks.br import BRHook, read_log_range
from tidbops_airflow.runners import runner_for
from tidbops_airflow.runners.kubernetes import KubernetesRunner

pytestmark = pytest.mark.operators

NS = KUBE_NAMESPACE
SAMPLES = Path(__file__).resolve().parents[2] / "tidbops" / "br" / "samples"
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
CRYPTER_KEY = "0123456789abcdef" * 4
VERSION_TEXT = (
    "Release Version: v8.5.1\nGit Commit Hash: fea86c8e35ad4a86a5e1160701f99493c2ee547c\nGit Branch: HEAD\n"
    "Go Version: go1.23.6\nUTC Build Time: 2025-01-17 07:21:06\nRace Enabled: false\n"
)
TASK = PodIdentity("tidb_backup_full__prod", "scheduled__2026-12-07T00:00:00+00:00", "run_br_backup", -1)


def sample(name: str) -> str:
    """BR's own output (a sample of tests/unit/tidbops/br/samples without its comment lines)."""
    text = (SAMPLES / name).read_text()
    return "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith("#"))



@pytest.fixture
def fleet(tmp_path: Path, kube_conn_id: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """prod runs BR in pods (TLS, an encrypted storage, S3 keys from a Secret); dev runs BR locally."""
    k8s = {
        "conn_id": kube_conn_id,
        "namespace": NS,
        "service_account": "tidbops-br",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "node_selector": {"pool": "backup"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "backup", "effect": "NoSchedule"}],
        "credentials_secret_name": "prod-s3",
        "crypter_secret_name": "prod-crypter",
        "tls_secret_name": "prod-br-tls",
        "poll_seconds": 0.2,
    }
    config = {
        "version": 1,
        "clusters": [
            {
                "name": "prod",
                "env": "prod",
                "pd": ["pd-prod.tidb.svc:2379"],
                "tidb_conn_id": "tidb_prod",
                "storage": {"uri": "s3://tidbops-backups", "conn_id": "s3_playground"},
                "tls": {"conn_id": "tls_prod"},
                "br": {
                    "runner": "kubernetes",
                    "kubernetes": k8s,
                    "encryption": {"method": "aes256-ctr", "key_conn_id": "br_crypter_prod"},
                },
                "log_backup": {"enabled": True, "task_name": "pitr-prod"},
            },
            {
                "name": "dev",
                "env": "dev",
                "pd": ["127.0.0.1:2379"],
                "tidb_conn_id": "tidb_dev",
                "storage": {"uri": "s3://tidbops-backups", "conn_id": "s3_playground"},
            },
        ],
    }
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(path))
    monkeypatch.setenv("TIDBOPS_BR_LOG_DIR", str(tmp_path / "brlogs"))
    monkeypatch.setattr("pymysql.connect", VersionOnlyTiDB)
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_PROD", json.dumps({"conn_type": "mysql", "host": "tidb-prod", "login": "br"}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_S3_PLAYGROUND",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIAPLAYGROUND000001",
                "password": SECRET,
                "extra": {"endpoint_url": "http://127.0.0.1:14900", "region_name": "us-east-1"},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_BR_CRYPTER_PROD", json.dumps({"conn_type": "generic", "password": CRYPTER_KEY}))
    ca = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----"
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7fakefakefake\n-----END PRIVATE KEY-----"
    monkeypatch.setenv(
        "AIRFLOW_CONN_TLS_PROD", json.dumps({"conn_type": "generic", "extra": {"ca": ca, "cert": ca, "key": key}})
    )
    return path


def prod() -> ClusterConfig:
    return load_fleet().get("prod")


def is_backup(name: str) -> bool:
    return "-backup-full-" in name


def is_version(name: str) -> bool:
    return "-version-" in name


def the_pod(fake: FakeKube, predicate: Any) -> dict[str, Any]:
    created = [r.body for r in fake.calls("POST", "/pods") if predicate(r.body["metadata"]["name"])]
    assert len(created) == 1, [c["metadata"]["name"] for c in created]
    return created[0]


def backup(hook: BRHook, timeout: float = 30) -> Any:
    with hook.session("full") as s:
        argv = backup_argv(
            s.cluster,
            kind="full",
            storage_uri="s3://tidbops-backups/prod/full/x",
            crypter_key_file=s.key_file,
            log_file=s.log_file,
        )
        return hook.run(argv, s, timeout=timeout)


# ------------------------------------------------------------------------------------------- the happy path


def test_pending_running_succeeded_through_the_hook(
    fleet: Path, fake_kube: FakeKube, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_kube.script("pods", pod_succeeds(VERSION_TEXT), name=is_version)
    summary = sample("v8_full_backup_success.txt")
    fake_kube.script("pods", pod_succeeds(summary, partial_log=summary.splitlines(keepends=True)[0]), name=is_backup)
    hook = BRHook(cluster=prod())
    assert hook.runner.kind == "kubernetes"

    result = backup(hook)

    assert result.exit_code == 0 and result.outcome.success
    assert result.outcome.backup_ts == 435844546560000000 and result.outcome.size_bytes == 71330
    kept = Path(result.log_file).read_text()
    assert "Full Backup success summary" in kept and "(BR's own --log-file stayed in the pod)" in kept
    pod = the_pod(fake_kube, is_backup)
    name = pod["metadata"]["name"]
    assert ("pods", NS, name) in fake_kube.deleted and fake_kube.get("pods", NS, name) is None, "deleted when done"
    version_pod = the_pod(fake_kube, is_version)
    assert version_pod["spec"]["containers"][0]["args"] == ["--version"], "our version check ran in a pod too"
    assert fake_kube.get("pods", NS, version_pod["metadata"]["name"]) is None
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["image"] == "pingcap/br:v8.5.1", "the cluster's version (tidb_version())"
    assert container["command"] == ["/br"] and container["args"][:2] == ["backup", "full"]
    args = container["args"]
    assert args[args.index("--crypter.key-file") + 1] == "/var/run/secrets/tidbops/crypter/key"
    assert args[args.index("--ca") + 1] == "/var/run/secrets/tidbops/tls/ca.crt"
    assert args[args.index("--key") + 1] == "/var/run/secrets/tidbops/tls/tls.key"
    assert args[args.index("--log-file") + 1] == "/var/lib/br-log/br.log"
    assert args[args.index("--s3.endpoint") + 1] == "http://127.0.0.1:14900", "the endpoint the connection gave"
    assert {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]} == {
        "AWS_ACCESS_KEY_ID": "prod-s3",
        "AWS_SECRET_ACCESS_KEY": "prod-s3",
        "AWS_SESSION_TOKEN": "prod-s3",
    }
    assert spec["serviceAccountName"] == "tidbops-br" and spec["nodeSelector"] == {"pool": "backup"}
    assert spec["tolerations"][0]["effect"] == "NoSchedule" and spec["restartPolicy"] == "Never"
    assert container["resources"]["limits"] == {"memory": "4Gi"}
    text = json.dumps(pod)
    assert SECRET not in text and CRYPTER_KEY not in text and "AKIAPLAYGROUND" not in text and "MIIEv" not in text
    logged = capsys.readouterr().out + caplog.text
    assert f"br ran in pod {NS}/{name}" in logged
    assert "Full Backup success summary" in logged, "the pod's log streamed into the task log"


def test_br_log_metadata_in_a_pod_reads_the_range(fleet: Path, fake_kube: FakeKube) -> None:
    fake_kube.script("pods", pod_succeeds(sample("v8_log_metadata.txt")), name=lambda n: "-log-metadata-" in n)
    found = read_log_range(BRHook(cluster=prod()))
    assert found is not None and (found.min_ts, found.max_ts) == (434582449885806593, 434834300106964993)
    assert fake_kube.names("pods", NS) == []


# ------------------------------------------------------------------------------------------- failures


def test_failed_pod_is_a_brerror_with_brs_code(fleet: Path, fake_kube: FakeKube) -> None:
    fake_kube.script("pods", pod_succeeds(VERSION_TEXT), name=is_version)
    fake_kube.script("pods", pod_fails(sample("v8_incremental_gc_safepoint.txt")), name=is_backup)
    with pytest.raises(BRError) as caught:
        backup(BRHook(cluster=prod()))
    assert caught.value.code == "BR:Backup:ErrBackupGCSafepointExceeded" and caught.value.exit_code == 1
    assert "[BR:Backup:ErrBackupGCSafepointExceeded]" in str(caught.value)
    assert fake_kube.names("pods", NS) == [], "the failed pod is deleted"


def test_evicted_pod_is_a_clear_retriable_error(fleet: Path, fake_kube: FakeKube) -> None:
    fake_kube.script("pods", pod_succeeds(VERSION_TEXT), name=is_version)
    fake_kube.script("pods", pod_evicted("[INFO] backup started\n"), name=is_backup)
    with pytest.raises(BRPodError, match="evicted: The node was low on resource: memory") as caught:
        backup(BRHook(cluster=prod()))
    assert caught.value.retriable
    assert fake_kube.names("pods", NS) == []


def test_image_pull_failure_names_the_image_and_deletes_the_pod(fleet: Path, fake_kube: FakeKube) -> None:
    fake_kube.script("pods", pod_image_pull_fails(), name=is_version)
    with pytest.raises(BRPodError, match=r"the BR image pingcap/br:v8\.5\.1 cannot be pulled \(ErrImagePull") as caught:
        backup(BRHook(cluster=prod()))
    assert not caught.value.retriable
    assert fake_kube.names("pods", NS) == []
    assert not [r for r in fake_kube.calls("POST", "/pods") if is_backup(r.body["metadata"]["name"])], "BR never ran"


def test_timeout_deletes_the_pod(fleet: Path, fake_kube: FakeKube) -> None:
    fake_kube.script("pods", pod_runs("[INFO] backup started\n"))
    runner = KubernetesRunner(prod(), identity=lambda: TASK)
    started = time.monotonic()
    with pytest.raises(BRTimeoutError, match="did not finish within 1s"):
        runner.run(["br", "backup", "full", "--pd", "pd:2379", "--storage", "s3://b/p"], _session(), timeout=1.0)
    assert time.monotonic() - started < 10
    assert fake_kube.names("pods", NS) == [] and len(fake_kube.deleted) == 1


def test_task_killed_mid_run_deletes_the_pod(fleet: Path, fake_kube: FakeKube) -> None:
    fake_kube.script("pods", pod_succeeds(VERSION_TEXT), name=is_version)
    fake_kube.script("pods", pod_runs("[INFO] backup started\n"), name=is_backup)
    hook = BRHook(cluster=prod())
    errors: list[BaseException] = []

    def run() -> None:
        try:
            backup(hook, timeout=60)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 20
    while not [n for n in fake_kube.names("pods", NS) if is_backup(n)] and time.monotonic() < deadline:
        time.sleep(0.05)
    [name] = [n for n in fake_kube.names("pods", NS) if is_backup(n)]
    hook.kill()  # what on_kill does
    worker.join(20)
    assert not worker.is_alive()
    assert fake_kube.get("pods", NS, name) is None and ("pods", NS, name) in fake_kube.deleted
    assert errors and isinstance(errors[0], BRPodError) and "the task was killed" in str(errors[0]), errors


# ------------------------------------------------------------------------------------------- retries


def _session() -> Any:
    from tidbops.br.runner import pd_session

    return pd_session(prod())


ARGV = ["br", "backup", "full", "--pd", "pd-prod.tidb.svc:2379", "--storage", "s3://tidbops-backups/prod/full/x"]


def test_a_retried_task_replaces_its_still_running_pod(fleet: Path, fake_kube: FakeKube) -> None:
    """The retry's own steps before BR ran again (a backup's clear an unfinished backup's files): the earlier
    try's BR must not go on, so its pod is deleted and BR runs anew (no two pods at once)."""
    from tidbops.k8s.pod import br_pod, pod_name

    name = pod_name(prod(), ARGV, TASK)
    fake_kube.script("pods", pod_runs("[INFO] backup started\n"), times=1)
    fake_kube.script("pods", pod_succeeds(sample("v8_full_backup_success.txt")), times=1)
    core = KubernetesRunner(prod()).core
    core.create_namespaced_pod(NS, br_pod(prod(), ARGV, name=name, image="pingcap/br:v8.5.1", timeout=60))
    handles: list[object] = []
    result = KubernetesRunner(prod(), identity=lambda: TASK).run(ARGV, _session(), timeout=30, on_start=handles.append)
    assert result.exit_code == 0 and parse_br_output(result.stdout).backup_ts == 435844546560000000
    assert [r.body["metadata"]["name"] for r in fake_kube.calls("POST", "/pods")] == [name, name]
    assert fake_kube.deleted.count(("pods", NS, name)) == 2, "the earlier try's, then this one's when done"
    assert [str(h) for h in handles] == [f"pod {NS}/{name}"] and result.where == f"pod {NS}/{name}"


def test_a_retried_task_adopts_its_succeeded_pod(fleet: Path, fake_kube: FakeKube) -> None:
    from tidbops.k8s.pod import br_pod, pod_name

    name = pod_name(prod(), ARGV, TASK)
    summary = sample("v8_full_backup_success.txt")
    fake_kube.script("pods", pod_succeeds(summary, pending_gets=0, running_gets=0), times=1)
    KubernetesRunner(prod()).core.create_namespaced_pod(
        NS, br_pod(prod(), ARGV, name=name, image="pingcap/br:v8.5.1", timeout=60)
    )
    for _ in range(3):  # the first try's worker saw it through (then died before deleting it)
        fake_kube.get("pods", NS, name)
        KubernetesRunner(prod()).core.read_namespaced_pod(name, NS)
    result = KubernetesRunner(prod(), identity=lambda: TASK).run(ARGV, _session(), timeout=30)
    assert parse_br_output(result.stdout).backup_ts == 435844546560000000
    assert len(fake_kube.calls("POST", "/pods")) == 1
    assert fake_kube.names("pods", NS) == []


def test_a_retried_task_replaces_its_failed_pod(fleet: Path, fake_kube: FakeKube) -> None:
    from tidbops.k8s.pod import br_pod, pod_name

    name = pod_name(prod(), ARGV, TASK)
    fake_kube.script("pods", pod_fails(sample("v8_incremental_gc_safepoint.txt"), running_gets=0), times=1)
    fake_kube.script("pods", pod_succeeds(sample("v8_full_backup_success.txt")), times=1)
    core = KubernetesRunner(prod()).core
    core.create_namespaced_pod(NS, br_pod(prod(), ARGV, name=name, image="pingcap/br:v8.5.1", timeout=60))
    for _ in range(3):
        core.read_namespaced_pod(name, NS)
    result = KubernetesRunner(prod(), identity=lambda: TASK).run(ARGV, _session(), timeout=30)
    assert result.exit_code == 0
    assert [r.body["metadata"]["name"] for r in fake_kube.calls("POST", "/pods")] == [name, name]
    assert fake_kube.deleted.count(("pods", NS, name)) == 2, "the failed one, then the finished one"


def test_reads_are_never_adopted(fleet: Path, fake_kube: FakeKube) -> None:
    fake_kube.script("pods", pod_succeeds(json.dumps([])))
    runner = KubernetesRunner(prod(), identity=lambda: TASK)
    with BRHook(cluster=prod()).pd_access() as cluster:
        argv = log_argv(cluster, "status")
        runner.run(argv, _session(), timeout=30)
        runner.run(argv, _session(), timeout=30)
    names = [r.body["metadata"]["name"] for r in fake_kube.calls("POST", "/pods")]
    assert len(set(names)) == 2 and all("-log-status-" in n for n in names)


# ------------------------------------------------------------------------------------------- the other BR calls


def test_log_status_of_the_trigger_runs_in_a_pod(fleet: Path, fake_kube: FakeKube) -> None:
    from tidbops_airflow.triggers.logbackup import read_progress

    target = 434582449885806593
    tasks = [{"name": "pitr-prod", "status": "NORMAL", "checkpoint": target + 5, "start": target - 100}]
    fake_kube.script("pods", pod_succeeds(json.dumps(tasks)), name=lambda n: "-log-status-" in n)
    progress = read_progress("prod", target)
    assert progress["state"] == "reached", progress
    [pod] = [r.body for r in fake_kube.calls("POST", "/pods")]
    args = pod["spec"]["containers"][0]["args"]
    assert args[:2] == ["log", "status"] and "--ca" in args
    assert "env" not in pod["spec"]["containers"][0], "a PD-only read gets no storage credentials"
    assert fake_kube.names("pods", NS) == []


def test_a_local_cluster_keeps_the_local_runner(fleet: Path) -> None:
    assert runner_for(load_fleet().get("dev")).kind == "local"
    assert BRHook(cluster=load_fleet().get("dev")).runner.kind == "local"


# ------------------------------------------------------------------------------------------- deferral


def _context(try_number: int = 1) -> Any:
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id=TASK.dag_id, run_id=TASK.run_id, task_id=TASK.task_id, map_index=-1)
    ti.try_number = try_number
    return {"ti": ti}


def _backup_step(tmp_path: Path, resume_event: dict[str, Any] | None) -> Any:
    """The backup step's core (``run_backup``) through a real BRHook, as ``BRBackupOperator.execute`` runs it."""
    from datetime import UTC, datetime

    from airflow.sdk.execution_time.context import set_current_context

    from tidbops.backup import RunInfo, run_backup, target_for
    from tidbops.catalog.planning import Plan
    from tidbops.catalog.records import BackupKind
    from tidbops.catalog.store import Catalog
    from tidbops.storage import LocalStorage

    cluster = prod()
    run = RunInfo(TASK.dag_id or "", TASK.run_id or "", 1, datetime(2026, 12, 7, 1, 0, tzinfo=UTC))
    target = target_for(cluster, Plan(cluster.name, BackupKind.FULL, "scheduled"), run)
    catalog = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    storage = LocalStorage(tmp_path / "backup")
    hook = BRHook(cluster=cluster)
    hook.deferrable, hook.resume_event = True, resume_event
    try:
        with set_current_context(_context()), hook.session(target.backup_id) as s:
            outcome = run_backup(
                target,
                run,
                session=s,
                storage=storage,
                catalog=catalog,
                run_br=lambda argv: hook.run(argv, s),
                resumed=resume_event is not None,
            )
        return outcome, catalog.get(target.backup_id)
    finally:
        catalog.close()


def _rows(tmp_path: Path) -> list[Any]:
    from tidbops.catalog.store import Catalog

    cat = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        return cat.list_backups("prod")
    finally:
        cat.close()


def test_a_backup_defers_while_its_pod_runs_then_resumes_with_its_result(
    fleet: Path, fake_kube: FakeKube, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from tidbops.catalog.records import BackupStatus
    from tidbops_airflow.triggers.kubepod import BRPodTrigger

    fake_kube.script("pods", pod_succeeds(VERSION_TEXT), name=is_version)
    fake_kube.script("pods", pod_succeeds(sample("v8_full_backup_success.txt"), running_gets=3), name=is_backup)
    with pytest.raises(TaskDeferred) as deferred:
        _backup_step(tmp_path, None)
    trigger = deferred.value.trigger
    assert isinstance(trigger, BRPodTrigger) and deferred.value.method_name == "resume_br"
    [name] = [n for n in fake_kube.names("pods", NS) if is_backup(n)]
    assert trigger.name == name, "the pod is left running while the task is deferred"
    assert [r.status for r in _rows(tmp_path)] == [BackupStatus.RUNNING]
    _, kwargs = trigger.serialize()
    event = first_trigger_event(BRPodTrigger(**kwargs))  # the triggerer rebuilds it from what it serialised
    assert event["status"] == "ended" and event["phase"] == "succeeded" and event["name"] == name

    outcome, row = _backup_step(tmp_path, event)

    assert outcome.action == "ran" and outcome.backup_ts == 435844546560000000 and outcome.size_bytes == 71330
    assert row.status is BackupStatus.SUCCEEDED and row.size_bytes == 71330 and row.backup_ts == 435844546560000000
    assert len([r for r in fake_kube.calls("POST", "/pods") if is_backup(r.body["metadata"]["name"])]) == 1
    assert fake_kube.get("pods", NS, name) is None, "deleted once its result was read"


def test_a_deferred_backup_whose_pod_failed_fails_its_row_with_brs_error(
    fleet: Path, fake_kube: FakeKube, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from tidbops.catalog.records import BackupStatus
    from tidbops_airflow.triggers.kubepod import BRPodTrigger

    fake_kube.script("pods", pod_succeeds(VERSION_TEXT), name=is_version)
    failure = "Error: [BR:Common:ErrFailedToConnect]failed to connect to PD pd-prod.tidb.svc:2379\n"
    fake_kube.script("pods", pod_fails(failure, running_gets=2), name=is_backup)
    with pytest.raises(TaskDeferred) as deferred:
        _backup_step(tmp_path, None)
    event = first_trigger_event(BRPodTrigger(**deferred.value.trigger.serialize()[1]))
    assert event["phase"] == "failed"
    with pytest.raises(BRError) as caught:
        _backup_step(tmp_path, event)
    assert caught.value.code == "BR:Common:ErrFailedToConnect"
    [row] = _rows(tmp_path)
    assert row.status is BackupStatus.FAILED and "ErrFailedToConnect" in (row.error or "")
    assert fake_kube.names("pods", NS) == []


def test_the_trigger_times_out(fleet: Path, fake_kube: FakeKube) -> None:
    from tidbops.k8s.pod import br_pod
    from tidbops_airflow.triggers.kubepod import BRPodTrigger

    fake_kube.script("pods", pod_runs())
    KubernetesRunner(prod()).core.create_namespaced_pod(
        NS, br_pod(prod(), ARGV, name="br-prod-x", image="pingcap/br:v8.5.1", timeout=60)
    )
    event = first_trigger_event(
        BRPodTrigger(
            conn_id="kubernetes_fake", namespace=NS, name="br-prod-x", deadline=time.time() + 1, poll_seconds=0.2
        )
    )
    assert event["status"] == "timeout" and "running" in event["detail"]
    runner = KubernetesRunner(prod(), identity=lambda: TASK)
    hook = BRHook(cluster=prod())
    hook.resume_event = event
    runner.hook = hook
    with pytest.raises(BRPodError, match="the step changed while it waited"):
        runner.run(ARGV, _session(), timeout=5)


def test_the_backup_step_defers_only_when_asked_and_never_under_the_fleet_cap(fleet: Path) -> None:
    from tidbops_airflow.operators.backup import BRBackupOperator

    cluster = prod()
    asked = cluster.model_copy(
        update={"br": cluster.br.model_copy(update={"kubernetes": cluster.br.kubernetes.model_copy(update={"defer": True})})}  # type: ignore[union-attr]
    )  # fmt: skip
    assert not BRBackupOperator(task_id="a", cluster=cluster, pool="br_prod")._may_defer(), "off by default"
    assert BRBackupOperator(task_id="b", cluster=asked, pool="br_prod")._may_defer()
    assert not BRBackupOperator(task_id="c", cluster=asked, pool="br_fleet")._may_defer(), "the lease would lapse"
    assert not BRBackupOperator(task_id="d", cluster=load_fleet().get("dev"), pool="br_dev")._may_defer()


def test_the_backup_operator_defers_and_resumes(
    fleet: Path, fake_kube: FakeKube, kube_conn_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``BRBackupOperator`` itself: ``execute`` defers on the BR pod, ``resume_br`` (what Airflow calls with the
    trigger's event) finishes the try with that pod's result; one pod, one succeeded row."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from airflow.sdk.exceptions import TaskDeferred
    from airflow.sdk.execution_time.context import set_current_context

    from tidbops.backup import target_for
    from tidbops.catalog.planning import Plan
    from tidbops.catalog.records import BackupKind, BackupStatus
    from tidbops.catalog.store import Catalog
    from tidbops_airflow.operators.backup import BRBackupOperator, run_info
    from tidbops_airflow.triggers.kubepod import BRPodTrigger

    doc = yaml.safe_load(fleet.read_text())
    doc["clusters"].append(
        {
            "name": "onpods",
            "env": "uat",
            "pd": ["pd-onpods.tidb.svc:2379"],
            "tidb_conn_id": "tidb_prod",
            "storage": {"uri": f"local://{tmp_path / 'backups'}"},
            "br": {
                "runner": "kubernetes",
                "version": "v8.5.1",
                "kubernetes": {"conn_id": kube_conn_id, "namespace": NS, "poll_seconds": 0.2, "defer": True},
            },
        }
    )
    fleet.write_text(yaml.safe_dump(doc))
    cluster = load_fleet().get("onpods")
    catalog_path = tmp_path / "catalog.db"
    cat = Catalog.from_url(f"sqlite:///{catalog_path}")
    cat.migrate()
    cat.close()
    ti = SimpleNamespace(dag_id="tidb_backup_full__onpods", run_id="manual__1", task_id="run_br_backup")
    ti.map_index, ti.try_number = -1, 1
    started = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    dag_run = SimpleNamespace(run_type="manual", logical_date=None, run_after=started, start_date=started)
    context: Any = {"ti": ti, "dag_run": dag_run}
    target = target_for(cluster, Plan(cluster.name, BackupKind.FULL, "manual"), run_info(context))
    op = BRBackupOperator(
        task_id="run_br_backup",
        cluster=cluster,
        target=target.to_dict(),
        catalog_sqlite_path=str(catalog_path),
        pool="br_onpods",
    )
    fake_kube.script("pods", pod_succeeds(VERSION_TEXT), name=is_version)
    fake_kube.script("pods", pod_succeeds(sample("v8_full_backup_success.txt"), running_gets=3), name=is_backup)

    with set_current_context(context), pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.method_name == "resume_br"
    event = first_trigger_event(BRPodTrigger(**deferred.value.trigger.serialize()[1]))
    with set_current_context(context):
        result = getattr(op, deferred.value.method_name)(context=context, event=event)

    assert result["action"] == "ran" and result["backup_ts"] == 435844546560000000 and result["size_bytes"] == 71330
    cat = Catalog.from_url(f"sqlite:///{catalog_path}")
    try:
        [row] = cat.list_backups("onpods")
    finally:
        cat.close()
    assert row.status is BackupStatus.SUCCEEDED and row.id == target.backup_id
    assert len([r for r in fake_kube.calls("POST", "/pods") if is_backup(r.body["metadata"]["name"])]) == 1
    assert fake_kube.names("pods", NS) == []


def test_a_restore_from_another_clusters_backups_mounts_that_clusters_secrets(
    fleet: Path, fake_kube: FakeKube, kube_conn_id: str
) -> None:
    """uat restores prod's backup: the pod runs in uat's namespace with uat's TLS to uat's PD, and reads the
    backup with prod's S3 keys and crypter key (Secrets named in prod's entry), as a local BR would with the
    Airflow connections of prod."""
    from tidbops.br.command import restore_full_argv

    doc = yaml.safe_load(fleet.read_text())
    uat = {
        **doc["clusters"][0],
        "name": "uat",
        "env": "uat",
        "pd": ["pd-uat.tidb.svc:2379"],
        "log_backup": {"enabled": False},
        "br": {
            "runner": "kubernetes",
            "kubernetes": {
                "conn_id": kube_conn_id,
                "namespace": "tidb-uat",
                "credentials_secret_name": "uat-s3",
                "crypter_secret_name": "uat-crypter",
                "tls_secret_name": "uat-br-tls",
                "poll_seconds": 0.2,
            },
            "encryption": {"method": "aes256-ctr", "key_conn_id": "br_crypter_prod"},
        },
    }
    doc["clusters"].append(uat)
    fleet.write_text(yaml.safe_dump(doc))
    fleet_now = load_fleet()
    fake_kube.script("pods", pod_succeeds(VERSION_TEXT), name=is_version)
    fake_kube.script("pods", pod_succeeds(sample("v8_database_restore.txt")), name=lambda n: "-restore-" in n)
    hook = BRHook(cluster=fleet_now.get("uat"), storage_source=fleet_now.get("prod"))
    with hook.session("restore") as s:
        argv = restore_full_argv(
            s.cluster,
            storage_uri="s3://tidbops-backups/prod/full/x",
            source=fleet_now.get("prod"),
            log_file=s.log_file,
            crypter_key_file=s.key_file,
        )
        hook.run(argv, s, timeout=30)
    [pod] = [r.body for r in fake_kube.calls("POST", "/pods") if "-restore-" in r.body["metadata"]["name"]]
    assert pod["metadata"]["namespace"] == "tidb-uat"
    container = pod["spec"]["containers"][0]
    assert container["args"][container["args"].index("--pd") + 1] == "pd-uat.tidb.svc:2379"
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]} == {"prod-s3"}
    volumes = {v["name"]: v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v}
    assert volumes == {"crypter": "prod-crypter", "tls": "uat-br-tls"}
    assert fake_kube.names("pods", "tidb-uat") == []
