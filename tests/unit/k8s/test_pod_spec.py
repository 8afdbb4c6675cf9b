"""The BR pod of the kubernetes runner (tidbops.k8s.pod): whole manifests against golden files and Kubernetes'
OpenAPI schemas (kubernetes-validate, strict), no worker path nor secret value in a pod, names a retry finds
again, and a pod's status read into what the runner does.

Golden files: tests/unit/k8s/golden/pod-*.yaml. After a deliberate change, rewrite them with
``TIDBOPS_UPDATE_GOLDEN=1 pytest tests/unit/k8s/test_pod_spec.py`` and review the diff.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tidbops.br.command import backup_argv, log_argv, restore_point_argv
from tidbops.br.errors import BRRequestError
from tidbops.config import ClusterConfig
from tidbops.k8s import pod as kpod
from tidbops.k8s.pod import PodIdentity

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
VERSIONS = ("1.30.0", "1.37.0")  # the oldest Kubernetes we document and the newest kubernetes-validate knows
LOG_FILE = "/tmp/tidbops-br-1000/br-prod-full-x1y2.log"
KEY_FILE = "/tmp/tidbops-key-abcd"
PEMS = {"ca": "/tmp/tidbops-key-ca01", "cert": "/tmp/tidbops-key-ce02", "key": "/tmp/tidbops-key-ke03"}
TASK = PodIdentity("tidb_backup_full__prod", "scheduled__2026-12-07T01:00:00+00:00", "run_br_backup", -1)


def cluster(
    name: str = "prod", env: str = "prod", k8s_over: dict[str, Any] | None = None, **br_over: Any
) -> ClusterConfig:
    k8s: dict[str, Any] = {
        "namespace": "tidb-backup",
        "service_account": "tidbops-br",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "node_selector": {"pool": "backup"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "backup", "effect": "NoSchedule"}],
        "credentials_secret_name": "prod-s3",
        "crypter_secret_name": "prod-crypter",
        "tls_secret_name": "prod-br-tls",
        **(k8s_over or {}),
    }
    br: dict[str, Any] = {
        "runner": "kubernetes",
        "version": "v8.5.1",
        "kubernetes": k8s,
        "encryption": {"method": "aes256-ctr", "key_conn_id": "br_crypter_prod"},
        **br_over,
    }
    return ClusterConfig.model_validate(
        {
            "name": name,
            "env": env,
            "pd": ["pd-prod.tidb.svc:2379"],
            "tidb_conn_id": "tidb_prod",
            "storage": {"uri": "s3://backups/fleet", "conn_id": "s3_prod", "endpoint": "https://s3.example.internal"},
            "tls": PEMS,
            "log_backup": {"enabled": True, "task_name": "pitr_prod"},
            "br": br,
        }
    )


def backup_pod() -> dict[str, Any]:
    c = cluster()
    argv = backup_argv(
        c, kind="full", storage_uri="s3://backups/fleet/prod/full/20261207T010000Z", log_file=LOG_FILE,
        crypter_key_file=KEY_FILE,
    )  # fmt: skip
    return kpod.br_pod(c, argv, name=kpod.pod_name(c, argv, TASK), image=kpod.br_image(c), timeout=14400, who=TASK)


def log_start_pod() -> dict[str, Any]:
    c = cluster(encryption=None)
    argv = log_argv(c, "start", log_file=LOG_FILE)
    return kpod.br_pod(c, argv, name=kpod.pod_name(c, argv, TASK), image=kpod.br_image(c), timeout=600, who=TASK)


def status_pod() -> dict[str, Any]:
    c = cluster()
    argv = log_argv(c, "status", log_file=LOG_FILE)
    name = kpod.pod_name(c, argv, PodIdentity(), nonce="0" * 32)
    return kpod.br_pod(c, argv, name=name, image=kpod.br_image(c), timeout=120, storage_credentials=False)


def restore_point_pod() -> dict[str, Any]:
    c = cluster()
    argv = restore_point_argv(
        c,
        full_backup_storage_uri="s3://backups/fleet/prod/full/20261207T010000Z",
        log_storage_uri=c.log_storage_uri,
        restored_ts=435844546560000000,
        log_file=LOG_FILE,
        crypter_key_file=KEY_FILE,
    )
    return kpod.br_pod(c, argv, name=kpod.pod_name(c, argv, TASK), image=kpod.br_image(c), timeout=14400, who=TASK)


PODS = {
    "backup-full": backup_pod,
    "log-start": log_start_pod,
    "log-status": status_pod,
    "restore-point": restore_point_pod,
}


@pytest.mark.parametrize("which", sorted(PODS))
def test_golden(which: str) -> None:
    path = GOLDEN / f"pod-{which}.yaml"
    manifest = PODS[which]()
    if os.environ.get("TIDBOPS_UPDATE_GOLDEN"):
        path.write_text(yaml.safe_dump(manifest, sort_keys=False, width=200))
    assert manifest == yaml.safe_load(path.read_text())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("which", sorted(PODS))
def test_valid_against_kubernetes_openapi(which: str, version: str) -> None:
    kubernetes_validate.validate(PODS[which](), version, strict=True)


def test_validation_is_not_vacuous() -> None:
    wrong = copy.deepcopy(backup_pod())
    wrong["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["nam"] = "prod-s3"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, VERSIONS[-1], strict=True)
    missing = copy.deepcopy(backup_pod())
    del missing["spec"]["containers"][0]["name"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(missing, VERSIONS[-1], strict=True)


@pytest.mark.parametrize("which", sorted(PODS))
def test_no_worker_path_and_no_secret_value_in_a_pod(which: str) -> None:
    text = json.dumps(PODS[which]())
    for path in (LOG_FILE, KEY_FILE, *PEMS.values(), "/tmp"):
        assert path not in text
    for forbidden in ("AKIA", "BEGIN", "password", "stringData"):
        assert forbidden not in text
    for container in PODS[which]()["spec"]["containers"]:
        assert all("value" not in e and set(e["valueFrom"]) == {"secretKeyRef"} for e in container.get("env", []))


def test_the_backup_pod_mounts_what_br_reads() -> None:
    spec = backup_pod()["spec"]
    [container] = spec["containers"]
    args = container["args"]
    assert container["command"] == ["/br"] and args[:2] == ["backup", "full"]
    assert args[args.index("--crypter.key-file") + 1] == "/var/run/secrets/tidbops/crypter/key"
    assert [args[args.index(f) + 1] for f in ("--ca", "--cert", "--key")] == [
        "/var/run/secrets/tidbops/tls/ca.crt",
        "/var/run/secrets/tidbops/tls/tls.crt",
        "/var/run/secrets/tidbops/tls/tls.key",
    ]
    assert args[args.index("--log-file") + 1] == "/var/lib/br-log/br.log"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["crypter"]["secret"] == {
        "secretName": "prod-crypter",
        "defaultMode": 0o400,
        "items": [{"key": "key", "path": "key"}],
    }
    assert volumes["tls"]["secret"]["secretName"] == "prod-br-tls" and "emptyDir" in volumes["br-log"]
    assert spec["activeDeadlineSeconds"] == 14400 + kpod.DEADLINE_MARGIN


def test_a_status_read_gets_no_credentials_and_no_key() -> None:
    [container] = status_pod()["spec"]["containers"]
    assert "env" not in container
    assert {m["name"] for m in container["volumeMounts"]} == {"br-log", "tls"}


def test_a_restore_mounts_the_source_clusters_storage_secrets() -> None:
    target = cluster()
    source = cluster(
        "uat",
        "uat",
        {
            "namespace": "elsewhere",
            "credentials_secret_name": "uat-s3",
            "crypter_secret_name": "uat-crypter",
            "tls_secret_name": "uat-tls",
        },
    )
    argv = backup_argv(target, kind="full", storage_uri="s3://b/p", log_file=LOG_FILE, crypter_key_file=KEY_FILE)
    pod = kpod.br_pod(target, argv, name="x", image="pingcap/br:v8.5.1", timeout=60, secrets_from=source)
    assert pod["metadata"]["namespace"] == "tidb-backup", "the target's namespace"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["crypter"]["secret"]["secretName"] == "uat-crypter"
    assert volumes["tls"]["secret"]["secretName"] == "prod-br-tls", "TLS to the target's PD"
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in pod["spec"]["containers"][0]["env"]} == {"uat-s3"}


def test_names() -> None:
    c = cluster()
    argv = backup_argv(c, kind="full", storage_uri="s3://b/p", log_file=LOG_FILE, crypter_key_file=KEY_FILE)
    again = backup_argv(c, kind="full", storage_uri="s3://b/p", log_file="/tmp/other.log", crypter_key_file="/tmp/k2")
    name = kpod.pod_name(c, argv, TASK)
    assert name == kpod.pod_name(c, again, TASK), "the worker's temp paths do not change the name: a retry finds it"
    assert name.startswith("br-prod-backup-full-") and len(name) <= 63
    other_run = PodIdentity(TASK.dag_id, "manual__2026-12-07T02:00:00+00:00", TASK.task_id)
    assert kpod.pod_name(c, argv, other_run) != name
    status = log_argv(c, "status")
    assert kpod.pod_name(c, status, TASK, nonce="a") != kpod.pod_name(c, status, TASK, nonce="b"), "reads: fresh"
    long = cluster("a" * 60)
    assert len(kpod.pod_name(long, argv, TASK)) <= 63
    assert kpod.mutating(argv) and kpod.mutating(log_argv(c, "stop")) and not kpod.mutating(status)
    assert not kpod.mutating(["br", "-V"]) and kpod.command_label(["br", "-V"]) == "version"


def test_image() -> None:
    assert kpod.br_image(cluster()) == "pingcap/br:v8.5.1"
    assert kpod.br_image(cluster(version=None), "v7.5.4") == "pingcap/br:v7.5.4"
    custom = cluster()
    custom = custom.model_copy(
        update={"br": custom.br.model_copy(update={"kubernetes": custom.br.kubernetes.model_copy(  # type: ignore[union-attr]
            update={"image": "registry.internal/pingcap/br:v8.5.1-fips"})})}
    )  # fmt: skip
    assert kpod.br_image(custom) == "registry.internal/pingcap/br:v8.5.1-fips"
    with pytest.raises(BRRequestError, match="no BR image"):
        kpod.br_image(cluster(version=None))


def test_refusals() -> None:
    with pytest.raises(BRRequestError, match="owner-held log keys"):
        kpod.pod_argv(["br", "log", "start", "--log.crypter.key-file", "/tmp/k"], cluster())
    bare = cluster()
    bare = bare.model_copy(
        update={"br": bare.br.model_copy(update={"kubernetes": bare.br.kubernetes.model_copy(  # type: ignore[union-attr]
            update={"crypter_secret_name": None, "tls_secret_name": None})})}
    )  # fmt: skip
    with pytest.raises(BRRequestError, match="crypter_secret_name"):
        kpod.pod_argv(["br", "backup", "full", "--crypter.key-file", KEY_FILE], bare)
    with pytest.raises(BRRequestError, match="tls_secret_name"):
        kpod.pod_argv(["br", "log", "status", "--ca", PEMS["ca"]], bare)


def _pod(phase: str, state: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "spec": {"containers": [{"name": "br", "image": "pingcap/br:v8.5.1"}]},
        "status": {"phase": phase, "containerStatuses": [{"name": "br", "state": state}], **status},
    }


def test_pod_state() -> None:
    assert kpod.pod_state(_pod("Pending", {"waiting": {"reason": "ContainerCreating"}})).phase == "pending"
    assert kpod.pod_state(_pod("Running", {"running": {}})).phase == "running"
    done = kpod.pod_state(_pod("Succeeded", {"terminated": {"exitCode": 0}}))
    assert (done.phase, done.exit_code, done.finished) == ("succeeded", 0, True)
    failed = kpod.pod_state(_pod("Failed", {"terminated": {"exitCode": 2, "reason": "Error"}}))
    assert (failed.phase, failed.exit_code) == ("failed", 2)
    evicted = kpod.pod_state(_pod("Failed", {}, reason="Evicted", message="low on memory"))
    assert evicted.phase == "evicted" and "low on memory" in evicted.detail
    pull = kpod.pod_state(_pod("Pending", {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}}))
    assert pull.phase == "image-pull" and "pingcap/br:v8.5.1" in pull.detail and pull.finished
    secret = kpod.pod_state(
        _pod("Pending", {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "prod-s3" not found'}})
    )
    assert secret.phase == "cannot-start" and "prod-s3" in secret.detail
    assert kpod.pod_state(None).phase == "gone"


def test_the_config_names_a_missing_block_or_secret_once(tmp_path: Path) -> None:
    from tidbops.config import load_fleet

    def issues(br: dict[str, Any], **extra: Any) -> list[str]:
        doc = {
            "clusters": [
                {"name": "prod", "env": "prod", "pd": ["pd:2379"], "tidb_conn_id": "tidb_prod",
                 "storage": {"uri": "s3://backups/fleet", "conn_id": "s3"}, "br": br, **extra}
            ]
        }  # fmt: skip
        path = tmp_path / "clusters.yaml"
        path.write_text(yaml.safe_dump(doc))
        return [str(i) for i in load_fleet(path).issues]

    [missing] = issues({"runner": "kubernetes"})
    assert "prod" in missing and "br.kubernetes is not set" in missing
    [tls] = issues({"runner": "kubernetes", "kubernetes": {"namespace": "ns"}}, tls={"ca": "/etc/ca.pem"})
    assert "tls_secret_name" in tls
    enc = {"method": "aes256-ctr", "key_conn_id": "k"}
    [key] = issues({"runner": "kubernetes", "kubernetes": {"namespace": "ns"}, "encryption": enc})
    assert "crypter_secret_name" in key
    assert (
        issues(
            {"runner": "kubernetes", "kubernetes": {"namespace": "ns", "crypter_secret_name": "c"}, "encryption": enc}
        )
        == []
    )
