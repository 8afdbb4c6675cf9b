"""BR commands as TiDB Operator v1 resources (tidbops.k8s.operator_cr): every manifest valid against the v1.6.6
CRDs, golden manifests for a full backup, a log start and a PITR restore, names a retry finds again, nothing local
or secret in a resource, and statuses read back into the outcome and log status BR's own output gives.

Golden files: tests/unit/k8s/golden/. After a deliberate change, rewrite them with
``TIDBOPS_UPDATE_GOLDEN=1 pytest tests/unit/k8s/test_operator_cr.py`` and review the diff.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers.k8s_schemas import crd_dir, json_schema, load_crd, missing_reason
from tidbops.br.command import backup_argv, debug_checksum_argv, log_argv, restore_full_argv, restore_point_argv
from tidbops.br.errors import BRRequestError
from tidbops.br.output import parse_log_status
from tidbops.config import ClusterConfig
from tidbops.k8s import operator_cr as cr

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
TS = 435844546560000000
LAST = 435800000000000000
ATTEMPT = "tidb_backup_full__prod/scheduled__2026-12-07T01:00:00+00:00/run_br_backup/-1"
LOG_FILE = "/tmp/tidbops-br-1000/br-prod-full-x1y2.log"
KEY_FILE = "/tmp/tidbops-key-abcd"
needs_crds = pytest.mark.skipif(crd_dir() is None, reason=missing_reason())


def cluster(*, replace: bool = False, **over: Any) -> ClusterConfig:
    """The prod cluster of these tests; ``over`` merges into its sections (``replace``: replaces them)."""
    raw: dict[str, Any] = {
        "name": "prod",
        "env": "prod",
        "pd": ["pd-0:2379"],
        "tidb_conn_id": "tidb_prod",
        "storage": {"uri": "s3://backups/fleet", "conn_id": "s3_prod", "endpoint": "https://s3.example.internal"},
        "log_backup": {"enabled": True, "task_name": "pitr_prod"},
        "br": {
            "runner": "tidb-operator",
            "version": "v8.5.1",
            "kubernetes": {"namespace": "tidb-prod"},
            "tidb_operator": {
                "namespace": "tidb-prod",
                "tidbcluster": "prod",
                "storage_secret_name": "s3-backup-keys",
                "service_account": "tidb-backup-manager",
            },
        },
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict) and not replace:
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return ClusterConfig.model_validate(raw)


PROD = cluster()
ENCRYPTED = cluster(
    br={
        **PROD.br.model_dump(exclude_none=True, exclude_defaults=True),
        "encryption": {"method": "aes256-ctr", "key_conn_id": "br_key_prod"},
        "kubernetes": {"namespace": "tidb-prod", "crypter_secret_name": "br-crypter-key"},
        "tidb_operator": {"namespace": "tidb-prod", "tidbcluster": "prod", "crypter_secret_name": "br-crypter-key"},
    }
)
TLS = cluster(tls={"ca": "/etc/tidb/ca.pem", "cert": "/etc/tidb/client.pem", "key": "/etc/tidb/client-key.pem"})


def full_backup(c: ClusterConfig = PROD, **kw: Any) -> list[str]:
    return backup_argv(
        c, kind="full", storage_uri="s3://backups/fleet/prod/full/20261207T010000Z", log_file=LOG_FILE, **kw
    )


def log_start(c: ClusterConfig = PROD) -> list[str]:
    return log_argv(c, "start", start_ts=TS, log_file=LOG_FILE)


def pitr(c: ClusterConfig = PROD) -> list[str]:
    return restore_point_argv(
        c,
        log_storage_uri="s3://backups/fleet/prod/log",
        full_backup_storage_uri="s3://backups/fleet/prod/full/20261207T010000Z",
        restored_ts=TS,
        log_file=LOG_FILE,
    )


# ----------------------------------------------------------------------------------- validation


@functools.cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json_schema(load_crd(f"pingcap.com_{cr.PLURALS[kind]}.yaml"), cr.VERSION)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _validate(manifest: dict[str, Any]) -> None:
    crd = load_crd(f"pingcap.com_{cr.PLURALS[manifest['kind']]}.yaml")
    assert manifest["apiVersion"] == f"{crd['spec']['group']}/{cr.VERSION}"
    assert manifest["kind"] == crd["spec"]["names"]["kind"]
    _validator(manifest["kind"]).validate(manifest)
    name = manifest["metadata"]["name"]
    assert len(name) <= 52 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    for key, value in manifest["metadata"]["labels"].items():
        assert len(value) <= 63 and re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", value), (key, value)


CASES = {
    "backup-full": lambda: cr.plan(full_backup(), PROD, attempt=ATTEMPT),
    "backup-incremental": lambda: cr.plan(
        backup_argv(PROD, kind="incremental", storage_uri="s3://backups/fleet/prod/incr/1", lastbackupts=LAST),
        PROD,
        attempt=ATTEMPT,
    ),
    "backup-encrypted-filtered": lambda: cr.plan(
        full_backup(ENCRYPTED, crypter_key_file=KEY_FILE, filters=["shop.*", "!shop.audit_*"]),
        ENCRYPTED,
        attempt=ATTEMPT,
    ),
    "backup-tls": lambda: cr.plan(full_backup(TLS), TLS, attempt=ATTEMPT),
    "log-start": lambda: cr.plan(log_start(), PROD, attempt=ATTEMPT),
    "restore-pitr": lambda: cr.plan(pitr(), PROD, attempt=ATTEMPT),
    "restore-table": lambda: cr.plan(
        restore_full_argv(PROD, storage_uri="s3://backups/fleet/prod/full/1", scope="table", db="shop", table="t1"),
        PROD,
        attempt=ATTEMPT,
    ),
    "restore-full-encrypted": lambda: cr.plan(
        restore_full_argv(ENCRYPTED, storage_uri="s3://b/p", with_sys_table=False, crypter_key_file=KEY_FILE),
        ENCRYPTED,
        attempt=ATTEMPT,
    ),
}


@needs_crds
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_manifest_is_valid_against_the_v1_6_6_crd(case: str) -> None:
    planned = CASES[case]()
    assert planned.op == "create" and planned.manifest is not None
    _validate(planned.manifest)


@needs_crds
def test_a_misspelt_field_fails_the_crd_schema() -> None:
    """The validation is not vacuous: a field the CRD does not have, or a wrong type, is rejected."""
    planned = CASES["backup-full"]()
    assert planned.manifest is not None
    wrong = copy.deepcopy(planned.manifest)
    wrong["spec"]["br"]["clusterNamespce"] = "tidb-prod"
    with pytest.raises(jsonschema.ValidationError, match="clusterNamespce"):
        _validate(wrong)
    wrong = copy.deepcopy(planned.manifest)
    wrong["spec"]["br"]["concurrency"] = "4"
    with pytest.raises(jsonschema.ValidationError):
        _validate(wrong)
    wrong = copy.deepcopy(planned.manifest)
    wrong["spec"]["logSubcommand"] = "log-resume"  # v1.6.6's enum: log-start, log-stop, log-pause
    with pytest.raises(jsonschema.ValidationError):
        _validate(wrong)


@needs_crds
@pytest.mark.parametrize("sub", ["pause", "resume", "stop"])
def test_log_patches_keep_the_log_backup_valid(sub: str) -> None:
    started = cr.plan(log_start(), PROD, attempt=ATTEMPT).manifest
    patch = cr.plan(log_argv(PROD, sub), PROD, attempt="other").patch
    assert started is not None and patch is not None
    _validate({**started, "spec": {**started["spec"], **patch["spec"]}})
    truncate = cr.plan(log_argv(PROD, "truncate", until=TS), PROD, attempt="x").patch
    assert truncate == {"spec": {"logTruncateUntil": str(TS)}}
    _validate({**started, "spec": {**started["spec"], **truncate["spec"]}})


# --------------------------------------------------------------------------------------- golden


@pytest.mark.parametrize("case", ["backup-full", "log-start", "restore-pitr"])
def test_golden_manifest(case: str) -> None:
    planned = CASES[case]()
    text = yaml.safe_dump(planned.manifest, sort_keys=True, default_flow_style=False)
    path = GOLDEN / f"operator-{case}.yaml"
    if os.environ.get("TIDBOPS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} differs; if deliberate, rewrite with TIDBOPS_UPDATE_GOLDEN=1"


# ---------------------------------------------------------------------------------- the mapping


def test_full_backup_fields() -> None:
    m = CASES["backup-full"]().manifest
    assert m is not None
    spec = m["spec"]
    assert spec["backupMode"] == "snapshot" and spec["backupType"] == "full"
    assert spec["cleanPolicy"] == "Retain"  # deleting the resource never deletes the backup
    assert spec["s3"] == {
        "provider": "aws",
        "bucket": "backups",
        "prefix": "fleet/prod/full/20261207T010000Z",
        "endpoint": "https://s3.example.internal",
        "secretName": "s3-backup-keys",
    }
    assert spec["br"] == {
        "cluster": "prod",
        "clusterNamespace": "tidb-prod",
        "concurrency": 4,
        "checksum": True,
        "options": ["--compression=zstd"],
    }
    assert spec["toolImage"] == "pingcap/br:v8.5.1" and spec["serviceAccount"] == "tidb-backup-manager"


def test_incremental_and_filters_and_crypter() -> None:
    m = CASES["backup-incremental"]().manifest
    assert m is not None and f"--lastbackupts={LAST}" in m["spec"]["br"]["options"]
    assert m["metadata"]["name"].startswith("tidbops-incr-prod-")
    e = CASES["backup-encrypted-filtered"]().manifest
    assert e is not None
    assert e["spec"]["tableFilter"] == ["shop.*", "!shop.audit_*"]
    assert e["spec"]["br"]["options"][-2:] == [
        "--crypter.method=aes256-ctr",
        f"--crypter.key-file={cr.CRYPTER_MOUNT}/key",
    ]
    assert e["spec"]["additionalVolumes"] == [
        {"name": cr.CRYPTER_VOLUME, "secret": {"secretName": "br-crypter-key", "defaultMode": 0o400}}
    ]
    assert e["spec"]["additionalVolumeMounts"][0]["mountPath"] == cr.CRYPTER_MOUNT


@pytest.mark.parametrize("case", list(CASES))
def test_nothing_local_reaches_a_resource(case: str) -> None:
    """The worker's paths (log file, key file, PEMs) and PD addresses never reach a resource: the operator
    knows the TidbCluster, its TLS and where BR logs; the key comes from a mounted Secret."""
    text = yaml.safe_dump(CASES[case]().manifest)
    for local in (LOG_FILE, KEY_FILE, "/etc/tidb/", "pd-0:2379", "--pd", "--log-file", "--ca", "s3_prod"):
        assert local not in text, (case, local)


def test_pitr_fields() -> None:
    m = CASES["restore-pitr"]().manifest
    assert m is not None
    spec = m["spec"]
    assert spec["restoreMode"] == "pitr" and spec["pitrRestoredTs"] == str(TS)
    assert spec["s3"]["prefix"] == "fleet/prod/log"
    assert spec["pitrFullBackupStorageProvider"]["s3"]["prefix"] == "fleet/prod/full/20261207T010000Z"
    t = CASES["restore-table"]().manifest
    assert t is not None and t["spec"]["backupType"] == "table"
    assert (t["spec"]["br"]["db"], t["spec"]["br"]["table"]) == ("shop", "t1")


def test_names_are_deterministic_per_attempt_and_spec() -> None:
    first = cr.plan(full_backup(), PROD, attempt=ATTEMPT)
    # a retry: a fresh log file, the same attempt → the same resource, found and adopted
    retry = cr.plan(
        backup_argv(
            PROD, kind="full", storage_uri="s3://backups/fleet/prod/full/20261207T010000Z", log_file="/tmp/other.log"
        ),
        PROD,
        attempt=ATTEMPT,
    )
    assert first.name == retry.name and first.name is not None and first.name.startswith("tidbops-full-prod-")
    assert cr.plan(full_backup(), PROD, attempt=ATTEMPT + "x").name != first.name
    other = backup_argv(PROD, kind="full", storage_uri="s3://backups/fleet/prod/full/20261208T010000Z")
    assert cr.plan(other, PROD, attempt=ATTEMPT).name != first.name
    long = cluster(name="a-very-long-cluster-name-for-the-uat-environment-02")
    assert len(str(cr.plan(full_backup(long), long, attempt=ATTEMPT).name)) <= 52


def test_label_values_stay_valid_and_distinct() -> None:
    long_task = "t" * 100
    assert len(cr.label_value(long_task)) <= 63
    assert cr.label_value(long_task) != cr.label_value("t" * 99)
    assert cr.label_value("pitr_prod") == "pitr_prod"
    assert cr.label_value("a/b:c") != cr.label_value("a-b-c")


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(lambda: log_argv(PROD, "metadata"), id="log-metadata"),
        pytest.param(lambda: debug_checksum_argv(PROD, storage_uri="s3://b/p"), id="debug-checksum"),
        pytest.param(lambda: ["br", "-V"], id="version"),
        pytest.param(lambda: log_argv(PROD, "truncate", until=TS, dry_run=True), id="truncate-dry-run"),
        pytest.param(
            lambda: ["br", "backup", "full", "--storage", "s3://b/p", "--use-backupmeta-v2"], id="unknown-flag"
        ),
    ],
)
def test_not_expressible_runs_as_a_pod(argv: Any) -> None:
    with pytest.raises(cr.NotExpressible):
        cr.plan(argv(), PROD, attempt=ATTEMPT)


def test_refusals_before_any_resource() -> None:
    with pytest.raises(BRRequestError, match="S3"):
        cr.plan(backup_argv(PROD, kind="full", storage_uri="local:///backups/x"), PROD, attempt=ATTEMPT)
    with pytest.raises(BRRequestError, match="gc-ttl"):
        cr.plan(log_argv(PROD, "pause", gc_ttl_seconds=3600), PROD, attempt=ATTEMPT)
    no_block = cluster(br={"version": "v8.5.1"}, replace=True)
    with pytest.raises(BRRequestError, match="tidb_operator"):
        cr.plan(full_backup(no_block), no_block, attempt=ATTEMPT)


@pytest.mark.parametrize(
    ("br", "match"),
    [
        ({"runner": "tidb-operator", "kubernetes": {"namespace": "n"}}, "br.tidb_operator is not set"),
        ({"runner": "tidb-operator", "tidb_operator": {"namespace": "n", "tidbcluster": "c"}}, "br.kubernetes"),
        (
            {
                "runner": "tidb-operator",
                "kubernetes": {"namespace": "n"},
                "tidb_operator": {"namespace": "n", "tidbcluster": "c"},
                "encryption": {"method": "aes128-ctr", "key_conn_id": "k"},
            },
            "tidb_operator.crypter_secret_name",
        ),
        (
            {
                "runner": "tidb-operator",
                "kubernetes": {"namespace": "n"},
                "tidb_operator": {"namespace": "n", "tidbcluster": "c", "crypter_secret_name": "k"},
                "encryption": {"method": "aes128-ctr", "key_conn_id": "k"},
            },
            "kubernetes.crypter_secret_name",
        ),
        ({"runner": "tidb-operator", "tidb_operator": {"namespace": "N_", "tidbcluster": "c"}}, "namespace"),
    ],
)
def test_config_errors_name_the_field(br: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cluster(br=br, replace=True)


# ---------------------------------------------------------------------------------------- status


def _with_status(manifest: dict[str, Any] | None, status: dict[str, Any]) -> dict[str, Any]:
    assert manifest is not None
    obj = copy.deepcopy(manifest)
    obj["metadata"].update(uid="1f0c", resourceVersion="7", creationTimestamp="2026-12-07T01:00:02Z")
    obj["status"] = status
    if crd_dir() is not None:  # the statuses we read are ones the CRD allows
        _validator(obj["kind"]).validate(obj)
    return obj


def _cond(kind: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "lastTransitionTime": "2026-12-07T01:05:00Z",
        "reason": reason,
        "message": message,
    }


def test_backup_complete_is_a_catalog_ready_outcome() -> None:
    planned = CASES["backup-full"]()
    running = _with_status(planned.manifest, {"phase": "Running", "conditions": [_cond("Scheduled"), _cond("Running")]})
    state = cr.read_state(planned, running)
    assert not state.finished and "Running" in state.detail
    done = _with_status(
        planned.manifest,
        {
            "phase": "Complete",
            "conditions": [_cond("Scheduled"), _cond("Running"), _cond("Complete")],
            "backupPath": "s3://backups/fleet/prod/full/20261207T010000Z",
            "backupSize": 3221225472,
            "backupSizeReadable": "3 GiB",
            "commitTs": str(TS),
            "timeTaken": "12m3s",
        },
    )
    state = cr.read_state(planned, done)
    assert state.finished and state.outcome is not None
    o = state.outcome
    assert (o.success, o.backup_ts, o.size_bytes, o.command) == (True, TS, 3221225472, "Full Backup")
    assert o.total_take_seconds == 723.0 and o.backup_time is not None
    assert o.fields["backupPath"].endswith("20261207T010000Z") and o.notes == (f"Backup tidb-prod/{planned.name}",)


def test_backup_failed_carries_the_reason_and_br_code() -> None:
    planned = CASES["backup-full"]()
    message = (
        "backup failed: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded: "
        "GC safepoint 435800000000000000 exceed TS 435700000000000000"
    )
    failed = _with_status(
        planned.manifest,
        {"phase": "Failed", "conditions": [_cond("Running"), _cond("Failed", "BackupFailed", message)]},
    )
    state = cr.read_state(planned, failed)
    assert state.finished and state.outcome is not None and state.outcome.success is False
    error = state.outcome.primary_error
    assert error is not None and error.code == "BR:Backup:ErrBackupGCSafepointExceeded"
    assert "BackupFailed" in error.message and planned.name in error.message


def test_operator_retry_is_not_a_failure_yet() -> None:
    planned = CASES["backup-full"]()
    retrying = _with_status(
        planned.manifest,
        {"phase": "RetryFailed", "conditions": [_cond("RetryFailed", "RetryFailedBackup", "reason pod evicted")]},
    )
    state = cr.read_state(planned, retrying)
    assert not state.finished and "retries" in state.detail


def test_restore_outcomes() -> None:
    planned = CASES["restore-pitr"]()
    done = _with_status(
        planned.manifest,
        {"phase": "Complete", "conditions": [_cond("Complete")], "commitTs": str(TS), "timeTaken": "3m"},
    )
    o = cr.read_state(planned, done).outcome
    assert o is not None and o.success and o.restore_end_ts == TS and o.command == "Restore Point"
    not_fresh = _with_status(
        planned.manifest,
        {
            "phase": "Failed",
            "conditions": [_cond("Failed", "RestoreDataFailed", "[BR:Restore:ErrRestoreNotFreshCluster]not fresh")],
        },
    )
    o = cr.read_state(planned, not_fresh).outcome
    assert o is not None and o.success is False and o.not_fresh


def test_log_subcommands_finish_on_the_phase_they_ask_for() -> None:
    start = cr.plan(log_start(), PROD, attempt=ATTEMPT)
    scheduled = _with_status(start.manifest, {"phase": "Scheduled", "conditions": [_cond("Scheduled")]})
    assert not cr.read_state(start, scheduled).finished
    running = _with_status(start.manifest, {"phase": "Running", "commitTs": str(TS), "logCheckpointTs": str(TS + 1)})
    assert cr.read_state(start, running).finished
    pause = cr.plan(log_argv(PROD, "pause"), PROD, attempt=ATTEMPT)
    assert not cr.read_state(pause, running).finished
    paused = _with_status(start.manifest, {"phase": "Paused", "commitTs": str(TS)})
    assert cr.read_state(pause, paused).finished
    stop = cr.plan(log_argv(PROD, "stop"), PROD, attempt=ATTEMPT)
    assert cr.read_state(stop, _with_status(start.manifest, {"phase": "Stopped", "commitTs": str(TS)})).finished
    truncate = cr.plan(log_argv(PROD, "truncate", until=TS + 100), PROD, attempt=ATTEMPT)
    behind = _with_status(start.manifest, {"phase": "Running", "commitTs": str(TS), "logSuccessTruncateUntil": str(TS)})
    assert not cr.read_state(truncate, behind).finished
    done = _with_status(
        start.manifest, {"phase": "Running", "commitTs": str(TS), "logSuccessTruncateUntil": str(TS + 100)}
    )
    assert cr.read_state(truncate, done).finished
    failed_sub = _with_status(
        start.manifest,
        {
            "phase": "Running",
            "commitTs": str(TS),
            "logSubCommandStatuses": {
                "log-truncate": {
                    "command": "log-truncate",
                    "phase": "Failed",
                    "conditions": [_cond("Failed", "TruncateFailed", "access denied")],
                }
            },
        },
    )
    o = cr.read_state(truncate, failed_sub).outcome
    assert o is not None and o.success is False and "access denied" in str(o.primary_error)


def test_log_status_reads_back_like_brs_json() -> None:
    start = cr.plan(log_start(), PROD, attempt=ATTEMPT)
    running = _with_status(start.manifest, {"phase": "Running", "commitTs": str(TS), "logCheckpointTs": str(TS + 5)})
    paused = _with_status(start.manifest, {"phase": "Paused", "commitTs": str(TS), "logCheckpointTs": str(TS + 3)})
    paused["metadata"]["name"] = "tidbops-log-prod-older"
    stopped = _with_status(start.manifest, {"phase": "Stopped", "commitTs": str(TS)})
    stopped["metadata"]["name"] = "tidbops-log-prod-stopped"
    tasks = parse_log_status(cr.log_status_json([running, stopped]))
    assert len(tasks) == 1
    (task,) = tasks
    assert (task.name, task.status, task.start_ts, task.checkpoint_ts) == ("pitr_prod", "NORMAL", TS, TS + 5)
    assert task.storage == "s3://backups/fleet/prod/log" and task.checkpoint_source == "global"
    assert [t.status for t in parse_log_status(cr.log_status_json([paused]))] == ["PAUSE"]
    assert parse_log_status(cr.log_status_json([stopped])) == []
    failed = _with_status(
        start.manifest,
        {"phase": "Failed", "commitTs": str(TS), "conditions": [_cond("Failed", "LogBackupFailed", "store 4 down")]},
    )
    (bad,) = parse_log_status(cr.log_status_json([failed]))
    assert bad.status == "ERROR" and bad.errors[0].message == "store 4 down"


def test_status_plan_selects_by_cluster_and_task() -> None:
    every = cr.plan(log_argv(PROD, "status"), PROD, attempt=ATTEMPT)
    assert every.op == "read" and every.label_selector == "app.kubernetes.io/managed-by=tidbops,tidbops.io/cluster=prod"
    one = cr.plan(log_argv(PROD, "status", task_name="pitr_prod"), PROD, attempt=ATTEMPT)
    assert one.selector[cr.LABEL_LOG_TASK] == "pitr_prod"
    stop = cr.plan(log_argv(PROD, "stop"), PROD, attempt=ATTEMPT)
    assert stop.op == "patch" and stop.patch == {"spec": {"logSubcommand": "log-stop"}}
    resume = cr.plan(log_argv(PROD, "resume"), PROD, attempt=ATTEMPT)
    assert resume.patch == {"spec": {"logSubcommand": "log-start"}} and resume.goal is cr.Goal.LOG_RUNNING


def test_a_fleet_file_with_a_tidb_operator_cluster_loads(tmp_path: Path) -> None:
    """The fleet loader refuses values of secret-named fields: Secrets are named by ``*_secret_name`` fields,
    which hold a Secret's name, never its content."""
    from tidbops.config import load_fleet

    raw = PROD.model_dump(mode="json", exclude_defaults=True)
    (tmp_path / "clusters.yaml").write_text(yaml.safe_dump({"version": 1, "clusters": [raw]}))
    fleet = load_fleet(tmp_path / "clusters.yaml")
    assert fleet.issues == () and fleet.clusters["prod"].br.tidb_operator == PROD.br.tidb_operator


def test_config_refuses_storage_the_operator_cannot_write() -> None:
    with pytest.raises(ValueError, match=r"storage\.uri: br\.runner tidb-operator writes to S3 only"):
        cluster(storage={"uri": "local:///backups"})
    with pytest.raises(ValueError, match=r"log_backup\.storage_uri"):
        cluster(log_backup={"enabled": True, "task_name": "pitr_prod", "storage_uri": "local:///logs"})


def test_config_refuses_it_for_a_scratch_cluster_made_per_drill() -> None:
    template = {"spec": {"version": "v8.5.0", "pd": {"replicas": 1}, "tikv": {"replicas": 1}, "tidb": {"replicas": 1}}}
    with pytest.raises(ValueError, match="no fixed TidbCluster"):
        cluster(
            name="scratch_k8s",
            env="scratch",
            scratch=True,
            pd=["scratch-k8s-pd.tidb-prod.svc:2379"],
            scratch_kubernetes={"namespace": "tidb-prod", "template": template},
        )
