"""The fake Kubernetes API answers the real client and the provider's hooks as an API server would.

What the runners' and scratch clusters' tests rely on: ``KubernetesHook`` (sync) and ``AsyncKubernetesHook``
(async) reach it through an ordinary ``kubernetes`` connection; pods are created, read, logged and deleted; custom
resources are validated against their CRD; errors come back as the ``ApiException`` a cluster would raise, with a
``kind: Status`` body; scripted objects move on as they are read.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.helpers.fake_kube import (
    FakeKube,
    Step,
    cr_goes_through,
    pod_evicted,
    pod_fails,
    pod_image_pull_fails,
    pod_succeeds,
    tidbcluster_becomes_ready,
)
from tests.helpers.kube_fixtures import KUBE_NAMESPACE

pytestmark = pytest.mark.unit

NS = KUBE_NAMESPACE
TC_API = "pingcap.com/v1alpha1"
BR_LOG = '[INFO] [collector.go:77] ["Full Backup success summary"] [total-ranges=3] [backup-total-regions=3]\n'


def br_pod(name: str, *, image: str = "pingcap/br:v8.5.0") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "tidbops", "tidbops/run": "r1"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "br",
                    "image": image,
                    "args": ["backup", "full"],
                    "envFrom": [{"secretRef": {"name": "s3-creds"}}],
                }
            ],
        },
    }


def backup_cr(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "Backup",
        "metadata": {"name": name},
        "spec": {
            "backupType": "full",
            "br": {"cluster": "prod", "clusterNamespace": "tidb"},
            "s3": {"provider": "aws", "bucket": "backups", "prefix": "prod/full", "secretName": "s3-creds"},
            **spec,
        },
    }


def body_of(e: ApiException) -> dict[str, Any]:
    data = json.loads(e.body)
    assert isinstance(data, dict)
    return data


def test_the_sync_hook_creates_reads_logs_and_deletes_a_pod(fake_kube: FakeKube, kube_conn_id: str) -> None:
    fake_kube.script("pods", pod_succeeds(BR_LOG, partial_log="[INFO] starting\n"), name="br-1")
    hook = KubernetesHook(conn_id=kube_conn_id)
    assert hook.get_namespace() == NS
    v1 = hook.core_v1_client

    created = v1.create_namespaced_pod(NS, br_pod("br-1"))
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    assert created.status.phase == "Pending"
    with pytest.raises(ApiException) as waiting:  # a container not started yet has no log: 400, as a kubelet says
        v1.read_namespaced_pod_log("br-1", NS)
    assert waiting.value.status == 400 and "is waiting to start: ContainerCreating" in body_of(waiting.value)["message"]

    phases = [hook.get_pod("br-1", NS).status.phase for _ in range(3)]
    assert phases == ["Running", "Succeeded", "Succeeded"]
    pod = hook.get_pod("br-1", NS)
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    # kubernetes 36.0.3 returns the log's bytes repr ("b'...'") from a preloaded read (kubernetes-client/python
    # #2596): read it raw, as the provider's own get_pod_logs does
    assert v1.read_namespaced_pod_log("br-1", NS).startswith("b'[INFO] starting\\n")
    raw = v1.read_namespaced_pod_log("br-1", NS, _preload_content=False)
    assert raw.data.decode() == "[INFO] starting\n" + BR_LOG
    assert b"".join(hook.get_pod_logs("br-1", namespace=NS).stream()).decode() == "[INFO] starting\n" + BR_LOG
    assert [p.metadata.name for p in v1.list_namespaced_pod(NS, label_selector="tidbops/run=r1").items] == ["br-1"]
    assert v1.list_namespaced_pod(NS, label_selector="tidbops/run=r2").items == []

    v1.delete_namespaced_pod("br-1", NS)
    assert fake_kube.deleted == [("pods", NS, "br-1")]
    with pytest.raises(ApiException) as gone:
        hook.get_pod("br-1", NS)
    assert gone.value.status == 404
    assert body_of(gone.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "br-1" not found',
        "reason": "NotFound",
        "details": {"name": "br-1", "kind": "pods"},
        "code": 404,
    }


def test_a_second_create_of_one_name_is_409_already_exists(fake_kube: FakeKube, kube_conn_id: str) -> None:
    v1 = KubernetesHook(conn_id=kube_conn_id).core_v1_client
    v1.create_namespaced_pod(NS, br_pod("br-2"))
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod(NS, br_pod("br-2"))
    assert e.value.status == 409
    assert body_of(e.value)["reason"] == "AlreadyExists"
    assert body_of(e.value)["message"] == 'pods "br-2" already exists'


@pytest.mark.parametrize(
    ("steps", "phase", "check"),
    [
        pytest.param(
            pod_fails("[ERROR] [BR:KV:ErrKVStorage] storage unreachable\n", exit_code=1),
            "Failed",
            lambda pod: pod.status.container_statuses[0].state.terminated.exit_code == 1,
            id="br-fails",
        ),
        pytest.param(pod_evicted(), "Failed", lambda pod: pod.status.reason == "Evicted", id="evicted"),
        pytest.param(
            pod_image_pull_fails(),
            "Pending",
            lambda pod: (
                pod.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
                and "pingcap/br:v0.0.0-missing" in pod.status.container_statuses[0].state.waiting.message
            ),
            id="image-pull",
        ),
    ],
)
def test_scripted_pod_endings(
    fake_kube: FakeKube, kube_conn_id: str, steps: list[Step], phase: str, check: Any
) -> None:
    fake_kube.script("pods", steps)
    hook = KubernetesHook(conn_id=kube_conn_id)
    hook.core_v1_client.create_namespaced_pod(NS, br_pod("br-3", image="pingcap/br:v0.0.0-missing"))
    for _ in range(4):
        pod = hook.get_pod("br-3", NS)
    assert pod.status.phase == phase
    assert check(pod)


def test_a_script_can_apply_once_so_a_recreated_pod_behaves_anew(fake_kube: FakeKube, kube_conn_id: str) -> None:
    fake_kube.script("pods", pod_evicted(), name="br-4", times=1)
    fake_kube.script("pods", pod_succeeds(BR_LOG), name="br-4")
    hook = KubernetesHook(conn_id=kube_conn_id)
    for expected in ("Failed", "Succeeded"):
        hook.core_v1_client.create_namespaced_pod(NS, br_pod("br-4"))
        for _ in range(3):
            pod = hook.get_pod("br-4", NS)
        assert pod.status.phase == expected
        hook.core_v1_client.delete_namespaced_pod("br-4", NS)


def test_steps_can_advance_on_time_instead_of_reads(fake_kube: FakeKube, kube_conn_id: str) -> None:
    fake_kube.script("pods", [Step({"phase": "Pending"}, gets=None, seconds=0.2), Step({"phase": "Running"})])
    hook = KubernetesHook(conn_id=kube_conn_id)
    hook.core_v1_client.create_namespaced_pod(NS, br_pod("br-5"))
    assert [hook.get_pod("br-5", NS).status.phase for _ in range(3)] == ["Pending"] * 3
    asyncio.run(asyncio.sleep(0.25))
    assert hook.get_pod("br-5", NS).status.phase == "Running"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda p: p["spec"].update(containers=[]), "spec.containers", id="no-containers"),
        pytest.param(lambda p: p["spec"]["containers"][0].pop("name"), "name", id="container-without-name"),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(volumeMounts=[{"name": "key", "mountPath": "/k"}]),
            "Not found: 'key'",
            id="mount-of-no-volume",
        ),
        pytest.param(lambda p: p["metadata"].update(name="BR_Upper"), "RFC 1123", id="bad-name"),
    ],
)
def test_an_invalid_pod_is_422_invalid(fake_kube: FakeKube, kube_conn_id: str, change: Any, message: str) -> None:
    pod = br_pod("br-6")
    change(pod)
    with pytest.raises(ApiException) as e:
        KubernetesHook(conn_id=kube_conn_id).core_v1_client.create_namespaced_pod(NS, pod)
    assert e.value.status == 422
    assert body_of(e.value)["reason"] == "Invalid" and message in body_of(e.value)["message"]
    assert fake_kube.names("pods") == []


def test_secrets_keep_data_base64_and_take_string_data(fake_kube: FakeKube, kube_conn_id: str) -> None:
    v1 = KubernetesHook(conn_id=kube_conn_id).core_v1_client
    v1.create_namespaced_secret(
        NS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-creds"},
            "stringData": {"AWS_ACCESS_KEY_ID": "AKIAFAKE"},
        },
    )
    secret = v1.read_namespaced_secret("s3-creds", NS)
    assert base64.b64decode(secret.data["AWS_ACCESS_KEY_ID"]) == b"AKIAFAKE"
    v1.delete_namespaced_secret("s3-creds", NS)
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_secret("s3-creds", NS)
    assert e.value.status == 404


def test_custom_resources_are_validated_against_the_crd(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    hook = KubernetesHook(conn_id=kube_conn_id)
    hook.create_custom_object(
        group="pingcap.com", version="v1alpha1", plural="backups", body=backup_cr("full-1"), namespace=NS
    )
    with pytest.raises(ApiException) as e:  # a misspelt field: refused, as fieldValidation=Strict does
        hook.create_custom_object(
            group="pingcap.com",
            version="v1alpha1",
            plural="backups",
            body=backup_cr("full-2", backupTyp="full"),
            namespace=NS,
        )
    assert e.value.status == 422 and "backupTyp" in body_of(e.value)["message"]
    with pytest.raises(ApiException) as e:
        hook.create_custom_object(
            group="pingcap.com",
            version="v1alpha1",
            plural="backups",
            body=backup_cr("full-3", logSubcommand="log-rewind"),
            namespace=NS,
        )
    assert e.value.status == 422 and "logSubcommand" in body_of(e.value)["message"]
    with pytest.raises(ApiException) as e:
        hook.create_custom_object(
            group="pingcap.com", version="v1alpha1", plural="backups", body=backup_cr("full-1"), namespace=NS
        )
    assert e.value.status == 409
    assert body_of(e.value)["message"] == 'backups.pingcap.com "full-1" already exists'
    assert body_of(e.value)["details"] == {"name": "full-1", "group": "pingcap.com", "kind": "backups"}
    with pytest.raises(ApiException) as e:
        hook.get_custom_object(group="pingcap.com", version="v1alpha1", plural="backups", name="none", namespace=NS)
    assert e.value.status == 404 and body_of(e.value)["reason"] == "NotFound"
    hook.delete_custom_object(group="pingcap.com", version="v1alpha1", plural="backups", name="full-1", namespace=NS)
    assert tidb_operator_crds.names("backups", api="pingcap.com/v1alpha1") == []


def test_a_scripted_backup_walks_its_conditions(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    tidb_operator_crds.script(
        "backups",
        cr_goes_through(
            "Scheduled",
            "Running",
            "Complete",
            fields={"backupPath": "s3://backups/prod/full", "backupSize": 1024, "commitTs": "4500"},
        ),
        api="pingcap.com/v1alpha1",
    )
    hook = KubernetesHook(conn_id=kube_conn_id)
    created = hook.create_custom_object(
        group="pingcap.com", version="v1alpha1", plural="backups", body=backup_cr("full-4"), namespace=NS
    )
    assert created["status"]["phase"] == "Scheduled"
    seen = [
        hook.get_custom_object(group="pingcap.com", version="v1alpha1", plural="backups", name="full-4", namespace=NS)[
            "status"
        ]
        for _ in range(2)
    ]
    assert [s["phase"] for s in seen] == ["Running", "Complete"]
    assert [c["type"] for c in seen[-1]["conditions"]] == ["Scheduled", "Running", "Complete"]
    assert seen[-1]["backupPath"] == "s3://backups/prod/full" and seen[-1]["commitTs"] == "4500"
    # a v1.6.6 CRD has no status subresource: the controller writes status through the object itself
    api = client.CustomObjectsApi(hook.api_client)
    with pytest.raises(ApiException) as e:
        api.patch_namespaced_custom_object_status("pingcap.com", "v1alpha1", NS, "backups", "full-4", {})
    assert e.value.status == 404
    patched = api.patch_namespaced_custom_object(
        "pingcap.com", "v1alpha1", NS, "backups", "full-4", {"status": {"phase": "Failed"}}
    )
    assert patched["status"]["phase"] == "Failed" and patched["status"]["backupPath"] == "s3://backups/prod/full"
    with pytest.raises(ApiException) as e:  # the status the CRD allows, and nothing else
        api.patch_namespaced_custom_object(
            "pingcap.com", "v1alpha1", NS, "backups", "full-4", {"status": {"backupSize": "big"}}
        )
    assert e.value.status == 422


def test_a_tidbcluster_becomes_ready_and_its_services_appear(tidb_operator_crds: FakeKube, kube_conn_id: str) -> None:
    tidb_operator_crds.script("tidbclusters", tidbcluster_becomes_ready(), api="pingcap.com/v1alpha1")
    hook = KubernetesHook(conn_id=kube_conn_id)
    tc = {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "TidbCluster",
        "metadata": {"name": "scratch-1"},
        "spec": {
            "version": "v8.5.0",
            "pd": {"replicas": 1, "requests": {"storage": "1Gi"}},
            "tikv": {"replicas": 1, "requests": {"storage": "1Gi"}},
            "tidb": {"replicas": 1},
        },
    }
    hook.create_custom_object(group="pingcap.com", version="v1alpha1", plural="tidbclusters", body=tc, namespace=NS)
    states = [
        hook.get_custom_object(
            group="pingcap.com", version="v1alpha1", plural="tidbclusters", name="scratch-1", namespace=NS
        ).get("status", {})
        for _ in range(3)
    ]
    assert [s.get("conditions", [{}])[0].get("status") for s in states] == ["False", "True", "True"]
    services = hook.core_v1_client.list_namespaced_service(NS).items
    assert sorted((s.metadata.name, s.spec.ports[0].port) for s in services) == [
        ("scratch-1-pd", 2379),
        ("scratch-1-tidb", 4000),
    ]


def test_the_async_hook_reads_the_pod_and_its_log_and_deletes_it(fake_kube: FakeKube, kube_conn_id: str) -> None:
    fake_kube.script("pods", pod_succeeds(BR_LOG, pending_gets=1, running_gets=1))
    KubernetesHook(conn_id=kube_conn_id).core_v1_client.create_namespaced_pod(NS, br_pod("br-7"))

    async def go() -> tuple[list[str], list[str]]:
        hook = AsyncKubernetesHook(conn_id=kube_conn_id)
        phases = [(await hook.get_pod("br-7", NS)).status.phase for _ in range(2)]
        lines = await hook.read_logs("br-7", NS)
        await hook.delete_pod("br-7", NS)
        await hook.delete_pod("br-7", NS)  # the provider treats a second delete's 404 as done
        return phases, lines

    phases, lines = asyncio.run(go())
    assert phases == ["Running", "Succeeded"]
    # timestamps=True: each line the kubelet's RFC 3339 stamp, then the text
    assert [line.split(" ", 1)[1] for line in lines] == BR_LOG.splitlines()
    assert fake_kube.names("pods") == []
    assert fake_kube.deleted == [("pods", NS, "br-7")]
    assert [r.method for r in fake_kube.calls(path_contains="/pods/br-7")][-2:] == ["DELETE", "DELETE"]


def test_a_script_that_puts_an_object_where_its_schema_forbids_fails_loudly(
    tidb_operator_crds: FakeKube, kube_conn_id: str
) -> None:
    tidb_operator_crds.script(
        "backups", [Step({"phase": "Running"}), Step({"phase": "Complete", "backupSize": "big"})], api=TC_API
    )
    hook = KubernetesHook(conn_id=kube_conn_id)
    hook.create_custom_object(
        group="pingcap.com", version="v1alpha1", plural="backups", body=backup_cr("full-9"), namespace=NS
    )
    with pytest.raises(ApiException) as e:  # the raw client: the provider's own calls retry a 500 (with backoff)
        client.CustomObjectsApi(hook.api_client).get_namespaced_custom_object(
            "pingcap.com", "v1alpha1", NS, "backups", "full-9"
        )
    assert e.value.status == 500 and "backupSize" in body_of(e.value)["message"]
    assert len(tidb_operator_crds.script_errors) == 1
    tidb_operator_crds.script_errors.clear()  # seen: the fixture would otherwise fail the test at teardown
