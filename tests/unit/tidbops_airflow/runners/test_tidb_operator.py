"""The tidb-operator runner against the fake Kubernetes API (tests/helpers/fake_kube.py): the real client, through
the provider's KubernetesHook, creates, adopts, patches, reads and deletes TiDB Operator v1 resources that the fake
validates against the v1.6.6 CRDs; the fake's scripts play the operator's part (status phases and conditions)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fake_kube import FakeKube, Step, cr_goes_through
from tests.helpers.kube_fixtures import KUBE_CONN_ID, KUBE_NAMESPACE, first_trigger_event
from tidbops.br.command import backup_argv, log_argv, restore_point_argv
from tidbops.br.errors import BRRequestError
from tidbops.br.output import parse_log_status
from tidbops.br.runner import BRTimeoutError, LocalRunner, pd_session
from tidbops.config import ClusterConfig
from tidbops.k8s import operator_cr as cr
from tidbops_airflow.runners.tidb_operator import TiDBOperatorRunner

pytestmark = pytest.mark.unit

NS = KUBE_NAMESPACE
API = cr.API_VERSION
TS = 435844546560000000
ATTEMPT = "tidb_backup_full__prod/manual__2026-12-07T01:00:00+00:00/run_br_backup/-1"
STORAGE = "s3://backups/fleet/prod/full/20261207T010000Z"
DONE = {
    "backupPath": STORAGE,
    "backupSize": 1073741824,
    "backupSizeReadable": "1 GiB",
    "commitTs": str(TS),
    "timeTaken": "2m5s",
}


def cluster() -> ClusterConfig:
    return ClusterConfig.model_validate(
        {
            "name": "prod",
            "env": "prod",
            "pd": ["pd-0:2379"],
            "tidb_conn_id": "tidb_prod",
            "storage": {"uri": "s3://backups/fleet", "conn_id": "s3_prod"},
            "log_backup": {"enabled": True, "task_name": "pitr_prod"},
            "br": {
                "runner": "tidb-operator",
                "kubernetes": {"conn_id": KUBE_CONN_ID, "namespace": NS},
                "tidb_operator": {
                    "conn_id": KUBE_CONN_ID,
                    "namespace": NS,
                    "tidbcluster": "prod",
                    "storage_secret_name": "s3-backup-keys",
                    "poll_seconds": 0.2,
                },
            },
        }
    )


PROD = cluster()
SESSION = pd_session(PROD)


def runner(**kw: Any) -> TiDBOperatorRunner:
    return TiDBOperatorRunner(
        PROD, kw.pop("hook", None), attempt=kw.pop("attempt", ATTEMPT), sleep=kw.pop("sleep", lambda s: None), **kw
    )


def full() -> list[str]:
    return backup_argv(PROD, kind="full", storage_uri=STORAGE, log_file="/tmp/br-prod-full.log")


def backup_name() -> str:
    name = cr.plan(full(), PROD, attempt=ATTEMPT).name
    assert name is not None
    return name


def test_complete_backup_is_a_catalog_ready_outcome(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    fake = tidb_operator_crds
    fake.script("backups", cr_goes_through("Scheduled", "Running", "Complete", fields=DONE), api=API)
    lines: list[str] = []
    started: list[object] = []
    run = runner().run(full(), SESSION, timeout=60, on_line=lambda s, line: lines.append(line), on_start=started.append)
    assert run.exit_code == 0 and run.outcome is not None and run.outcome.success
    assert (run.outcome.backup_ts, run.outcome.size_bytes, run.outcome.total_take_seconds) == (TS, 1073741824, 125.0)
    assert run.outcome.backup_time is not None and run.outcome.command == "Full Backup"
    name = backup_name()
    assert run.where == f"Backup {NS}/{name}" and started == [f"Backup {NS}/{name}"]
    assert any("Running" in line for line in lines) and any("Complete" in line for line in lines)
    (posted,) = [r.body for r in fake.calls("POST", "/backups")]
    assert posted["spec"]["br"]["cluster"] == "prod" and posted["spec"]["cleanPolicy"] == "Retain"
    assert fake.deleted == [("backups", NS, name)]  # read, then deleted: the data stays (Retain)


def test_failed_backup_carries_the_operators_reason(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    message = "[BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded"
    tidb_operator_crds.script(
        "backups", cr_goes_through("Scheduled", "Running", "Failed", reason="BackupFailed", message=message), api=API
    )
    run = runner().run(full(), SESSION, timeout=60)
    assert run.exit_code == 1 and run.outcome is not None and run.outcome.success is False
    error = run.outcome.primary_error
    assert error is not None and error.code == "BR:Backup:ErrBackupGCSafepointExceeded"
    assert "BackupFailed" in run.stderr_tail and backup_name() in run.stderr_tail
    assert tidb_operator_crds.deleted == [("backups", NS, backup_name())]


def test_timeout_deletes_the_resource(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    tidb_operator_crds.script("backups", cr_goes_through("Scheduled", "Running", gets=1), api=API)
    began = time.monotonic()
    with pytest.raises(BRTimeoutError, match="did not finish within 1s"):
        runner(sleep=time.sleep).run(full(), SESSION, timeout=1.0)
    assert time.monotonic() - began < 10
    assert tidb_operator_crds.deleted == [("backups", NS, backup_name())]


def test_task_kill_deletes_the_resource_and_ends_the_wait(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    tidb_operator_crds.script("backups", cr_goes_through("Scheduled", "Running"), api=API)
    r = runner(sleep=time.sleep)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(r.run(full(), SESSION, timeout=60)))
    thread.start()
    deadline = time.monotonic() + 10
    while not tidb_operator_crds.names("backups", NS, api=API) and time.monotonic() < deadline:
        time.sleep(0.05)
    r.kill()  # what on_kill does, from another thread
    thread.join(10)
    assert not thread.is_alive()
    (run,) = result
    assert run.exit_code == 1 and run.outcome.success is False and "task killed" in run.stderr_tail
    assert tidb_operator_crds.deleted == [("backups", NS, backup_name())]
    assert tidb_operator_crds.names("backups", NS, api=API) == []


def _earlier_try(fake: FakeKube, steps: list[Step]) -> None:
    manifest = cr.plan(full(), PROD, attempt=ATTEMPT).manifest
    assert manifest is not None
    fake.put(manifest, plural="backups", steps=steps)


def test_a_retried_task_adopts_its_completed_backup(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    """The worker died after the operator finished: the retry takes the result, no second backup."""
    _earlier_try(tidb_operator_crds, cr_goes_through("Running", "Complete", fields=DONE))
    lines: list[str] = []
    run = runner().run(full(), SESSION, timeout=60, on_line=lambda s, line: lines.append(line))
    assert run.outcome is not None and run.outcome.success and run.outcome.backup_ts == TS
    assert any("adopting" in line for line in lines)
    # one POST, refused 409 AlreadyExists; no second Backup, nothing deleted before the outcome was read
    assert len(tidb_operator_crds.calls("POST", "/backups")) == 1
    assert tidb_operator_crds.deleted == [("backups", NS, backup_name())]


def test_a_retried_task_replaces_a_backup_still_running(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    """The step before BR cleared the unfinished backup's files again: the earlier BR must stop writing there."""
    _earlier_try(tidb_operator_crds, [Step({"phase": "Running", "conditions": []}, gets=None)])
    tidb_operator_crds.script("backups", cr_goes_through("Scheduled", "Complete", fields=DONE), api=API)
    lines: list[str] = []
    run = runner().run(full(), SESSION, timeout=60, on_line=lambda s, line: lines.append(line))
    assert run.outcome is not None and run.outcome.success
    assert any("was still running in an earlier try" in line for line in lines)
    assert len(tidb_operator_crds.calls("POST", "/backups")) == 2
    assert tidb_operator_crds.deleted == [("backups", NS, backup_name())] * 2


def test_a_retried_task_adopts_a_completed_backup_without_running_another(
    tidb_operator_crds: FakeKube, kube_conn_id: str
) -> None:
    _earlier_try(tidb_operator_crds, cr_goes_through("Complete", fields=DONE))
    run = runner().run(full(), SESSION, timeout=60)
    assert run.outcome is not None and run.outcome.success and run.outcome.size_bytes == 1073741824


def test_a_retried_task_reruns_a_failed_backup(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    _earlier_try(tidb_operator_crds, cr_goes_through("Failed", reason="BackupFailed", message="pod OOMKilled"))
    tidb_operator_crds.script("backups", cr_goes_through("Scheduled", "Complete", fields=DONE), api=API)
    lines: list[str] = []
    run = runner().run(full(), SESSION, timeout=60, on_line=lambda s, line: lines.append(line))
    assert run.outcome is not None and run.outcome.success
    assert any("failed in an earlier try" in line for line in lines)
    assert len(tidb_operator_crds.calls("POST", "/backups")) == 2  # refused, then created again
    assert tidb_operator_crds.deleted == [("backups", NS, backup_name())] * 2  # the failed one, then this one


def test_pitr_restore(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    tidb_operator_crds.script(
        "restores", cr_goes_through("Scheduled", "Running", "Complete", fields={"commitTs": str(TS)}), api=API
    )
    argv = restore_point_argv(
        PROD, log_storage_uri="s3://backups/fleet/prod/log", full_backup_storage_uri=STORAGE, restored_ts=TS
    )
    run = runner(attempt="tidb_restore/manual__1/restore/-1").run(argv, SESSION, timeout=60)
    assert run.outcome is not None and run.outcome.success and run.outcome.restore_end_ts == TS
    (posted,) = [r.body for r in tidb_operator_crds.calls("POST", "/restores")]
    assert posted["spec"]["restoreMode"] == "pitr" and posted["spec"]["pitrRestoredTs"] == str(TS)
    assert run.where.startswith(f"Restore {NS}/tidbops-pitr-prod-")


def test_log_backup_lifecycle(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    fake = tidb_operator_crds
    running = {"phase": "Running", "commitTs": str(TS), "logCheckpointTs": str(TS + 7), "conditions": []}
    fake.script("backups", [Step({"phase": "Scheduled"}), Step(running, gets=None)], api=API)
    r = runner(attempt="tidb_log_backup_check__prod/scheduled__1/check/-1")
    started = r.run(log_argv(PROD, "start", start_ts=TS), SESSION, timeout=60)
    assert started.outcome is not None and started.outcome.success and started.outcome.command == "log start"
    (name,) = fake.names("backups", NS, api=API)
    assert fake.deleted == []  # the log Backup is the task: never deleted

    status = r.run(log_argv(PROD, "status"), SESSION, timeout=60)
    assert status.exit_code == 0 and status.outcome is None
    (task,) = parse_log_status(status.stdout)
    assert (task.name, task.status, task.checkpoint_ts) == ("pitr_prod", "NORMAL", TS + 7)

    # a second start of the same task (another run) is refused as BR refuses it
    again = runner(attempt="tidb_log_backup_check__prod/scheduled__2/check/-1").run(
        log_argv(PROD, "start"), SESSION, timeout=60
    )
    assert again.exit_code == 1 and "already exists" in again.stderr_tail

    def phase_after_patch(phase: str, extra: dict[str, Any] | None = None) -> None:
        def move() -> None:  # the operator's part: once the patch landed, the phase follows
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if fake.calls("PATCH", f"/backups/{name}")[len(patches) :]:
                    fake.set_status("backups", NS, name, {**running, "phase": phase, **(extra or {})}, api=API)
                    return
                time.sleep(0.02)

        patches = list(fake.calls("PATCH", f"/backups/{name}"))
        threading.Thread(target=move).start()

    phase_after_patch("Paused")
    paused = runner(sleep=time.sleep).run(log_argv(PROD, "pause"), SESSION, timeout=30)
    assert paused.outcome is not None and paused.outcome.success
    assert fake.get("backups", NS, name, api=API)["spec"]["logSubcommand"] == "log-pause"  # type: ignore[index]
    (task,) = parse_log_status(r.run(log_argv(PROD, "status"), SESSION, timeout=60).stdout)
    assert task.status == "PAUSE"

    phase_after_patch("Running", {"logSuccessTruncateUntil": str(TS + 5)})
    truncated = runner(sleep=time.sleep).run(log_argv(PROD, "truncate", until=TS + 5), SESSION, timeout=30)
    assert truncated.outcome is not None and truncated.outcome.success
    assert fake.get("backups", NS, name, api=API)["spec"]["logTruncateUntil"] == str(TS + 5)  # type: ignore[index]

    phase_after_patch("Stopped")
    stopped = runner(sleep=time.sleep).run(log_argv(PROD, "stop"), SESSION, timeout=30)
    assert stopped.outcome is not None and stopped.outcome.success
    assert parse_log_status(r.run(log_argv(PROD, "status"), SESSION, timeout=60).stdout) == []
    assert fake.deleted == []
    # no task on track now: a pause has nothing to act on, like BR's
    nothing = runner().run(log_argv(PROD, "pause"), SESSION, timeout=30)
    assert nothing.exit_code == 1 and "no log backup task" in nothing.stderr_tail


def test_what_no_resource_expresses_goes_to_the_pod_runner(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    """``br log metadata`` has no resource: the runner hands it to its pod runner (here a real LocalRunner running
    echo, standing for the kubernetes runner) and creates nothing itself."""
    argv = ["/bin/echo", "log", "metadata", "--storage", "s3://backups/fleet/prod/log"]
    run = runner(pod_runner=LocalRunner()).run(argv, SESSION, timeout=30)
    assert run.where == "local" and run.stdout.strip() == "log metadata --storage s3://backups/fleet/prod/log"
    assert tidb_operator_crds.calls("POST") == []


def _log_backup(fake: FakeKube, steps: list[Step]) -> str:
    manifest = cr.plan(log_argv(PROD, "start", start_ts=TS), PROD, attempt="an earlier run").manifest
    assert manifest is not None
    return str(fake.put(manifest, plural="backups", steps=steps)["metadata"]["name"])


def test_the_br_hook_runs_the_clusters_runner(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    """BRHook picks the tidb-operator runner from br.runner and turns its status-made outcome into its result."""
    from tidbops_airflow.hooks.br import BRHook

    running = {"phase": "Running", "commitTs": str(TS), "logCheckpointTs": str(TS + 9)}
    name = _log_backup(
        tidb_operator_crds,
        [Step(running, gets=2), Step({**running, "logSuccessTruncateUntil": str(TS + 5)}, gets=None)],
    )
    hook = BRHook(cluster=PROD)
    assert hook.runner.kind == "tidb-operator"
    result = hook.run(log_argv(PROD, "truncate", until=TS + 5), SESSION)
    assert result.outcome.success and result.outcome.command == "log truncate"
    assert result.outcome.fields["logSuccessTruncateUntil"] == str(TS + 5)
    spec = tidb_operator_crds.get("backups", NS, name, api=API)["spec"]  # type: ignore[index]
    assert spec["logTruncateUntil"] == str(TS + 5)


def test_the_br_hook_raises_brs_error_for_a_failed_resource(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    from tidbops.br.errors import BRError
    from tidbops_airflow.hooks.br import BRHook

    failed = {
        "phase": "Running",
        "commitTs": str(TS),
        "logSubCommandStatuses": {
            "log-truncate": {
                "command": "log-truncate",
                "phase": "Failed",
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "LogTruncateFailed",
                        "message": "[BR:ExternalStorage:ErrStorageInvalidPermission]AccessDenied",
                    }
                ],
            }
        },
    }
    _log_backup(tidb_operator_crds, [Step({"phase": "Running", "commitTs": str(TS)}, gets=2), Step(failed, gets=None)])
    with pytest.raises(BRError) as raised:
        BRHook(cluster=PROD).run(log_argv(PROD, "truncate", until=TS + 5), SESSION)
    assert raised.value.code == "BR:ExternalStorage:ErrStorageInvalidPermission"
    assert "LogTruncateFailed" in str(raised.value) and raised.value.exit_code == 1


def test_log_metadata_runs_in_a_br_pod_of_the_kubernetes_runner(
    tidb_operator_crds: FakeKube, kube_conn_id: str
) -> None:
    """No resource expresses ``br log metadata``: the runner hands it to the cluster's kubernetes runner, whose pod
    prints what BR prints; the caller parses it exactly as a local run's output."""
    from tests.helpers.fake_kube import pod_succeeds
    from tidbops.br.output import parse_log_metadata

    sample = Path(__file__).parents[2] / "tidbops/br/samples/v8_log_metadata.txt"
    pinned = ClusterConfig.model_validate(
        {
            **PROD.model_dump(mode="json", exclude_defaults=True),
            "br": {**PROD.br.model_dump(mode="json", exclude_defaults=True), "version": "v8.5.1"},
        }
    )
    tidb_operator_crds.script("pods", pod_succeeds(sample.read_text()))
    run = TiDBOperatorRunner(pinned, None, attempt=ATTEMPT).run(log_argv(pinned, "metadata"), SESSION, timeout=60)
    assert run.where.startswith(f"pod {NS}/") and run.exit_code == 0
    assert parse_log_metadata(run.stdout) == (434582449885806593, 434834300106964993)
    (pod,) = [r.body for r in tidb_operator_crds.calls("POST", "/pods")]
    assert pod["spec"]["containers"][0]["image"] == "pingcap/br:v8.5.1"
    assert tidb_operator_crds.calls("POST", "/backups") == [] and tidb_operator_crds.names("pods", NS) == []


def _deferring_hook(resume_event: dict[str, Any] | None = None) -> Any:
    """The BR hook as the backup step marks it with ``br.tidb_operator.defer`` (``BRBackupOperator._may_defer``)."""
    from tidbops_airflow.hooks.br import BRHook

    hook = BRHook(cluster=PROD)
    hook.deferrable, hook.resume_event = True, resume_event
    return hook


def test_a_deferrable_backup_defers_while_its_backup_runs_then_resumes_with_its_outcome(
    tidb_operator_crds: FakeKube, kube_conn_id: str
) -> None:
    """The task defers (no worker slot) while the Backup runs; the trigger, rebuilt from what it serialised, fires
    when TiDB Operator marks it Complete; the resumed try reads that Backup's outcome: one resource, then deleted."""
    from airflow.sdk.exceptions import TaskDeferred

    from tidbops_airflow.triggers.kube_resource import BRResourceTrigger

    fake = tidb_operator_crds
    fake.script("backups", cr_goes_through("Scheduled", "Running", "Complete", fields=DONE, gets=2), api=API)
    with pytest.raises(TaskDeferred) as deferred:
        runner(hook=_deferring_hook()).run(full(), SESSION, timeout=60)
    trigger = deferred.value.trigger
    assert isinstance(trigger, BRResourceTrigger) and deferred.value.method_name == "resume_br"
    assert trigger.name == backup_name() and fake.deleted == [], "the Backup runs on while the task is deferred"
    path, kwargs = trigger.serialize()
    assert path == "tidbops_airflow.triggers.kube_resource.BRResourceTrigger"
    event = first_trigger_event(BRResourceTrigger(**{**kwargs, "poll_seconds": 0.2}))
    assert event["status"] == "ended" and event["phase"] == "Complete" and event["name"] == backup_name()

    run = runner(hook=_deferring_hook(event)).run(full(), SESSION, timeout=60)

    assert run.exit_code == 0 and run.outcome is not None and run.outcome.success
    assert (run.outcome.backup_ts, run.outcome.size_bytes) == (TS, 1073741824)
    assert len(fake.calls("POST", "/backups")) == 1, "the resumed try made no second Backup"
    assert fake.deleted == [("backups", NS, backup_name())]


def test_a_deferred_backup_that_failed_gives_the_operators_reason_on_resuming(
    tidb_operator_crds: FakeKube, kube_conn_id: str
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from tidbops_airflow.triggers.kube_resource import BRResourceTrigger

    message = "[BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded"
    steps = cr_goes_through("Scheduled", "Running", "Failed", reason="BackupFailed", message=message, gets=2)
    tidb_operator_crds.script("backups", steps, api=API)
    with pytest.raises(TaskDeferred) as deferred:
        runner(hook=_deferring_hook()).run(full(), SESSION, timeout=60)
    event = first_trigger_event(BRResourceTrigger(**{**deferred.value.trigger.serialize()[1], "poll_seconds": 0.2}))
    assert event["status"] == "ended" and event["phase"] == "Failed"
    run = runner(hook=_deferring_hook(event)).run(full(), SESSION, timeout=60)
    error = run.outcome.primary_error if run.outcome is not None else None
    assert run.exit_code == 1 and error is not None and error.code == "BR:Backup:ErrBackupGCSafepointExceeded"
    assert len(tidb_operator_crds.calls("POST", "/backups")) == 1, "a failure seen by the trigger is not re-run"
    assert tidb_operator_crds.deleted == [("backups", NS, backup_name())]


def test_a_deferred_wait_that_times_out_deletes_the_backup(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from tidbops_airflow.triggers.kube_resource import BRResourceTrigger

    tidb_operator_crds.script("backups", cr_goes_through("Scheduled", "Running"), api=API)
    with pytest.raises(TaskDeferred) as deferred:
        runner(hook=_deferring_hook()).run(full(), SESSION, timeout=60)
    kwargs = {**deferred.value.trigger.serialize()[1], "deadline": time.time() + 1, "poll_seconds": 0.2}
    event = first_trigger_event(BRResourceTrigger(**kwargs))
    assert event["status"] == "timeout" and "Running" in event["detail"]
    with pytest.raises(BRTimeoutError):
        runner(hook=_deferring_hook(event)).run(full(), SESSION, timeout=60)
    assert tidb_operator_crds.deleted == [("backups", NS, backup_name())]
    other = {**event, "name": "someone-elses"}
    with pytest.raises(BRRequestError, match="the step changed while it waited"):
        runner(hook=_deferring_hook(other)).run(full(), SESSION, timeout=60)


def test_log_commands_never_defer(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    """Only a snapshot Backup defers (only the backup step marks its hook deferrable); a log start waits in the
    worker even on a deferrable hook."""
    running = {"phase": "Running", "commitTs": str(TS), "logCheckpointTs": str(TS)}
    tidb_operator_crds.script("backups", [Step({"phase": "Scheduled"}, gets=1), Step(running, gets=None)], api=API)
    run = runner(hook=_deferring_hook()).run(log_argv(PROD, "start"), SESSION, timeout=60)
    assert run.exit_code == 0 and run.outcome is not None and run.outcome.success


def test_the_backup_step_defers_on_tidb_operator_only_when_asked_and_never_under_the_fleet_cap() -> None:
    from tidbops_airflow.operators.backup import BRBackupOperator

    operator = PROD.br.tidb_operator
    assert operator is not None
    asked = PROD.model_copy(
        update={"br": PROD.br.model_copy(update={"tidb_operator": operator.model_copy(update={"defer": True})})}
    )
    assert not BRBackupOperator(task_id="a", cluster=PROD, pool="br_prod")._may_defer(), "off by default"
    assert BRBackupOperator(task_id="b", cluster=asked, pool="br_prod")._may_defer()
    assert not BRBackupOperator(task_id="c", cluster=asked, pool="br_fleet")._may_defer(), "the lease would lapse"
