"""Scratch clusters on Kubernetes, end to end on the fake API: the operators create (or adopt) the drill's
TidbCluster, wait until it is Ready (in the worker, or deferred to the trigger), point the scratch cluster's stable
Services at it, and always delete it.

The real ``KubernetesHook``/``AsyncKubernetesHook`` talk to tests/helpers/fake_kube.py over HTTP; the fleet
config is a real file loaded by the real loader; the TidbCluster is validated against TiDB Operator v1.6.6's CRD.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

from tests.helpers.fake_kube import FakeKube, Step, tidbcluster_becomes_ready, tidbcluster_status
from tests.helpers.kube_fixtures import KUBE_NAMESPACE
from tidbops.drill import DrillPlan
from tidbops.k8s.scratch import ScratchClusterError, render_tidbcluster, scratch_name
from tidbops.recovery.plan import RestoreStep
from tidbops_airflow.operators.kube_scratch import KubeScratchCreateOperator, KubeScratchDeleteOperator
from tidbops_airflow.triggers.kube_scratch import TidbClusterReadyTrigger

pytestmark = pytest.mark.unit

NS = KUBE_NAMESPACE
TC_API = "pingcap.com/v1alpha1"
TEMPLATE = {
    "spec": {
        "version": "v8.5.0",
        "pvReclaimPolicy": "Delete",
        "pd": {"baseImage": "pingcap/pd", "replicas": 1, "requests": {"storage": "1Gi"}},
        "tikv": {"baseImage": "pingcap/tikv", "replicas": 1, "requests": {"storage": "1Gi"}},
        "tidb": {"baseImage": "pingcap/tidb", "replicas": 1},
    }
}


@pytest.fixture
def fleet_file(tmp_path: Path, kube_conn_id: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fleet: uat drills into scratch1, made on Kubernetes through the fake's connection."""
    storage = {"uri": f"local://{tmp_path / 'backups'}"}
    config = {
        "clusters": [
            {
                "name": "uat",
                "env": "uat",
                "pd": ["pd-uat:2379"],
                "tidb_conn_id": "tidb_uat",
                "storage": storage,
                "drill": {"target": "scratch1"},
            },
            {
                "name": "scratch1",
                "env": "scratch",
                "scratch": True,
                "pd": [f"scratch1-pd.{NS}.svc:2379"],
                "tidb_conn_id": "tidb_scratch1",
                "storage": storage,
                "scratch_kubernetes": {
                    "conn_id": kube_conn_id,
                    "namespace": NS,
                    "template": TEMPLATE,
                    "ready_timeout": 30,
                    "poll_seconds": 0.2,
                },
            },
            {
                "name": "scratch2",
                "env": "scratch",
                "scratch": True,
                "pd": ["pd-scratch2:2379"],
                "tidb_conn_id": "tidb_scratch2",
                "storage": storage,
            },
        ]
    }
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(path))
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_SCRATCH1", f"mysql://root@scratch1-tidb.{NS}.svc:4000")
    return path


def plan(drill_id: str = "uat-drill-20261201-0001", target: str = "scratch1") -> dict[str, Any]:
    step = RestoreStep(kind="full", backup_id="full-1", storage_uri="local:///b/uat/full-1", backup_ts=4500)
    return DrillPlan(
        plan_id=drill_id,
        source="uat",
        target=target,
        mode="snapshot",
        restore_ts=4500,
        steps=(step,),
        reason="test",
        chosen_at=datetime(2026, 12, 1, tzinfo=UTC),
    ).to_dict()


class TI:
    """The XComs a task instance pulls and pushes (the plan task's, and its own)."""

    def __init__(self, plan_value: dict[str, Any] | None) -> None:
        self.plan = plan_value
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        assert task_ids == "choose_restore_point"
        return self.plan

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(plan_value: dict[str, Any] | None) -> Any:
    return {"ti": TI(plan_value)}


def create(**kw: Any) -> KubeScratchCreateOperator:
    return KubeScratchCreateOperator(task_id="create_scratch_cluster", plan_task_id="choose_restore_point", **kw)


def delete() -> KubeScratchDeleteOperator:
    return KubeScratchDeleteOperator(task_id="delete_scratch_cluster", plan_task_id="choose_restore_point")


def tc_name(drill_id: str = "uat-drill-20261201-0001") -> str:
    return scratch_name("scratch1", drill_id)


def test_create_waits_until_ready_points_the_aliases_and_delete_removes_it(
    tidb_operator_crds: FakeKube, fleet_file: Path
) -> None:
    fake = tidb_operator_crds
    fake.script("tidbclusters", tidbcluster_becomes_ready(starting_gets=2), api=TC_API)
    ctx = context(plan())
    result = create(deferrable=False).execute(ctx)

    name = tc_name()
    assert result == {
        "target": "scratch1",
        "namespace": NS,
        "tidbcluster": name,
        "pd": f"{name}-pd.{NS}.svc:2379",
        "sql": f"{name}-tidb.{NS}.svc:4000",
    }
    assert ctx["ti"].pushed == {"tidbcluster": name}
    tc = fake.get("tidbclusters", NS, name, api=TC_API)
    assert tc is not None and tc["spec"]["version"] == "v8.5.0"
    assert tc["metadata"]["labels"]["tidbops/plan"] == "uat-drill-20261201-0001"
    for component in ("pd", "tidb"):
        alias = fake.get("services", NS, f"scratch1-{component}")
        own = fake.get("services", NS, f"{name}-{component}")
        assert alias is not None and own is not None
        assert alias["spec"]["selector"] == own["spec"]["selector"]
        assert alias["metadata"]["labels"]["app.kubernetes.io/instance"] == name
    # polled until Ready: created, then read until the scripted Ready
    assert len(fake.calls("GET", f"/tidbclusters/{name}")) >= 3

    done = delete().execute(context(plan()))
    assert done == {
        "target": "scratch1",
        "tidbcluster": name,
        "deleted": [f"TidbCluster {name}", "Service scratch1-pd", "Service scratch1-tidb"],
    }
    assert fake.names("tidbclusters", api=TC_API) == []
    assert fake.names("services") == sorted([f"{name}-pd", f"{name}-tidb"])  # the operator's own go with it


def test_a_cluster_that_never_gets_ready_fails_naming_what_it_waits_for_and_is_still_deleted(
    tidb_operator_crds: FakeKube, fleet_file: Path
) -> None:
    fake = tidb_operator_crds
    fake.script("tidbclusters", [Step(tidbcluster_status(ready=False, tikv="Scale"), gets=None)], api=TC_API)
    fleet_file.write_text(fleet_file.read_text().replace("ready_timeout: 30", "ready_timeout: 1"))
    started = time.monotonic()
    with pytest.raises(ScratchClusterError, match=r"not Ready after 1s .*waiting for Ready=False \(TiKVStoreNotUp"):
        create(deferrable=False).execute(context(plan()))
    assert time.monotonic() - started < 10
    # the DAG's teardown (all_done) runs after the failure: the cluster goes
    assert delete().execute(context(plan()))["deleted"] == [f"TidbCluster {tc_name()}"]
    assert fake.names("tidbclusters", api=TC_API) == []
    assert ("tidbclusters", NS, tc_name()) in fake.deleted


def test_a_retried_create_adopts_the_cluster_its_earlier_try_made(
    tidb_operator_crds: FakeKube, fleet_file: Path
) -> None:
    fake = tidb_operator_crds
    earlier = render_tidbcluster(
        TEMPLATE, name=tc_name(), namespace=NS, target="scratch1", plan_id="uat-drill-20261201-0001"
    )
    fake.put(earlier, steps=tidbcluster_becomes_ready())  # the first try made it, then its worker died
    result = create(deferrable=False).execute(context(plan()))
    assert result is not None and result["tidbcluster"] == tc_name()
    posts = fake.calls("POST", "/tidbclusters")
    assert len(posts) == 1  # tried once, got 409 AlreadyExists, adopted: no second cluster
    assert fake.names("tidbclusters", api=TC_API) == [tc_name()]


def test_a_cluster_of_that_name_not_made_by_tidbops_is_not_adopted(
    tidb_operator_crds: FakeKube, fleet_file: Path
) -> None:
    fake = tidb_operator_crds
    foreign = render_tidbcluster(TEMPLATE, name=tc_name(), namespace=NS, target="someone-else", plan_id="x")
    fake.put(foreign)
    with pytest.raises(ScratchClusterError, match="was not made by tidbops for scratch1"):
        create(deferrable=False).execute(context(plan()))
    assert delete().execute(context(plan()))["deleted"] == []  # and never deleted by us
    assert fake.names("tidbclusters", api=TC_API) == [tc_name()]


def test_a_second_drill_waits_while_the_scratch_clusters_services_point_at_a_live_one(
    tidb_operator_crds: FakeKube, fleet_file: Path
) -> None:
    fake = tidb_operator_crds
    fake.script("tidbclusters", tidbcluster_becomes_ready(), api=TC_API)
    create(deferrable=False).execute(context(plan("uat-drill-1")))
    with pytest.raises(ScratchClusterError, match=f"scratch cluster scratch1 is in use: .*{tc_name('uat-drill-1')}"):
        create(deferrable=False).execute(context(plan("uat-drill-2")))
    assert fake.names("tidbclusters", api=TC_API) == [tc_name("uat-drill-1")]
    delete().execute(context(plan("uat-drill-1")))
    create(deferrable=False).execute(context(plan("uat-drill-2")))  # the first one gone: the second goes ahead
    assert fake.get("services", NS, "scratch1-tidb")["metadata"]["labels"]["app.kubernetes.io/instance"] == tc_name(
        "uat-drill-2"
    )


def test_the_deferred_wait_runs_in_the_trigger_through_the_async_hook(
    tidb_operator_crds: FakeKube, fleet_file: Path, kube_conn_id: str
) -> None:
    fake = tidb_operator_crds
    fake.script("tidbclusters", tidbcluster_becomes_ready(), api=TC_API)
    ctx = context(plan())
    with pytest.raises(TaskDeferred) as deferred:
        create().execute(ctx)
    trigger = deferred.value.trigger
    assert isinstance(trigger, TidbClusterReadyTrigger)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "tidbops_airflow.triggers.kube_scratch.TidbClusterReadyTrigger"
    assert kwargs["name"] == tc_name() and kwargs["conn_id"] == kube_conn_id and kwargs["namespace"] == NS

    async def first_event() -> dict[str, Any]:
        async for event in TidbClusterReadyTrigger(**{**kwargs, "poll_seconds": 0.05}).run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event == {"status": "ready", "namespace": NS, "name": tc_name()}
    result = create().execute_complete(ctx, event)
    assert result["pd"] == f"{tc_name()}-pd.{NS}.svc:2379"
    assert fake.get("services", NS, "scratch1-pd") is not None


@pytest.mark.parametrize(
    ("steps", "payload"),
    [
        pytest.param(
            [Step(tidbcluster_status(ready=False, pd="Normal", tikv="Scale"), gets=None)],
            {
                "status": "timeout",
                "waiting_for": ["Ready=False (TiKVStoreNotUp: TiKV store(s) are not up)", "tikv phase Scale"],
                "detail": "Ready=False (TiKVStoreNotUp: TiKV store(s) are not up); tikv phase Scale",
            },
            id="timeout",
        ),
        pytest.param(None, {"status": "gone"}, id="deleted-under-it"),
    ],
)
def test_the_trigger_ends_on_timeout_or_when_the_cluster_is_gone(
    tidb_operator_crds: FakeKube, fleet_file: Path, kube_conn_id: str, steps: list[Step] | None, payload: dict[str, Any]
) -> None:
    if steps is not None:
        tidb_operator_crds.put(
            render_tidbcluster(TEMPLATE, name="scratch1-x", namespace=NS, target="scratch1", plan_id="x"), steps=steps
        )
    trigger = TidbClusterReadyTrigger(
        conn_id=kube_conn_id, namespace=NS, name="scratch1-x", deadline=time.time() + 0.3, poll_seconds=0.05
    )

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    assert asyncio.run(first_event()) == {**payload, "namespace": NS, "name": "scratch1-x"}
    with pytest.raises(
        ScratchClusterError, match="deleted before it was Ready" if payload["status"] == "gone" else "tikv phase Scale"
    ):
        create().execute_complete(context(plan()), {**payload, "namespace": NS, "name": "scratch1-x"})


@pytest.mark.parametrize(
    ("plan_value", "target", "outcome"),
    [
        pytest.param(None, None, "nothing", id="no-plan"),
        pytest.param(plan(target="scratch2"), None, "nothing", id="target-not-on-kubernetes"),
        pytest.param(plan(), "scratch2", "skip", id="another-targets-task"),
    ],
)
def test_nothing_is_made_where_nothing_should_be(
    fake_kube: FakeKube, fleet_file: Path, plan_value: dict[str, Any] | None, target: str | None, outcome: str
) -> None:
    for op in (
        create(target=target, deferrable=False),
        KubeScratchDeleteOperator(task_id="delete", plan_task_id="choose_restore_point", target=target),
    ):
        if outcome == "skip":
            with pytest.raises(AirflowSkipException):
                op.execute(context(plan_value))
        else:
            assert op.execute(context(plan_value)) is None
    assert fake_kube.requests == []  # not one call to the Kubernetes API


def test_a_tidb_connection_that_reaches_elsewhere_is_refused_before_anything_is_made(
    tidb_operator_crds: FakeKube, fleet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_SCRATCH1", "mysql://root@tidb-prod.example.com:4000")
    with pytest.raises(
        ScratchClusterError, match=f"reaches tidb-prod.example.com.*set its host to scratch1-tidb.{NS}.svc"
    ):
        create(deferrable=False).execute(context(plan()))
    assert tidb_operator_crds.requests == []


def _verb(method: str, path: str) -> tuple[str, str, str]:
    """(API group, resource, RBAC verb) of one request the operators made."""
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[parts.index("namespaces") + 2 :]
    resource, item = rest[0], len(rest) > 1
    verb = {"GET": "get" if item else "list", "POST": "create", "PATCH": "patch", "PUT": "update"}.get(method, "")
    return group, resource, verb or ("delete" if method == "DELETE" else method)


def test_the_role_in_deploy_k8s_grants_exactly_what_the_operators_call(
    tidb_operator_crds: FakeKube, fleet_file: Path
) -> None:
    fake = tidb_operator_crds
    fake.script("tidbclusters", tidbcluster_becomes_ready(), api=TC_API)
    create(deferrable=False).execute(context(plan("uat-drill-1")))  # creates, reads, lists, points the aliases
    create(deferrable=False).execute(context(plan("uat-drill-1")))  # a retry: adopts (409, get), patches them
    delete().execute(context(plan("uat-drill-1")))
    called = {_verb(r.method, r.path) for r in fake.requests}
    docs = list(yaml.safe_load_all((Path(__file__).parents[4] / "deploy/k8s/rbac-scratch-clusters.yaml").read_text()))
    (role,) = [d for d in docs if d["kind"] == "Role"]
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert called == granted
