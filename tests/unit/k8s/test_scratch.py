"""Scratch TidbClusters (tidbops.k8s.scratch): rendered from the fleet config's template, valid against TiDB
Operator v1.6.6's CRD, named per drill, read back for readiness and addresses.

The golden manifest is rewritten with ``TIDBOPS_UPDATE_GOLDEN=1 pytest tests/unit/k8s/test_scratch.py`` (review the
diff).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers.fake_kube import tidbcluster_services, tidbcluster_status
from tests.helpers.k8s_schemas import crd_dir, crd_schema, missing_reason
from tidbops.config import ClusterConfig
from tidbops.k8s.scratch import (
    ScratchTemplateError,
    alias_name,
    alias_owner,
    alias_services,
    endpoints,
    is_ours,
    readiness,
    render_tidbcluster,
    scratch_name,
)

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
# what a fleet config's scratch_kubernetes.template holds: TiDB Operator's basic example, one of each
TEMPLATE: dict[str, Any] = yaml.safe_load(
    """
metadata:
  labels: {team: dba}
spec:
  timezone: UTC
  pvReclaimPolicy: Delete
  configUpdateStrategy: RollingUpdate
  enableDynamicConfiguration: true
  discovery: {}
  helper: {image: alpine:3.16.0}
  pd:
    baseImage: pingcap/pd
    maxFailoverCount: 0
    replicas: 1
    requests: {storage: 10Gi}
    config: {}
  tikv:
    baseImage: pingcap/tikv
    maxFailoverCount: 0
    replicas: 1
    requests: {storage: 50Gi}
    config: {}
  tidb:
    baseImage: pingcap/tidb
    maxFailoverCount: 0
    replicas: 1
    service: {type: ClusterIP}
    config: {}
"""
)


def rendered(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": scratch_name("scratch_1", "drill-20260101-0001"),
        "namespace": "tidb-scratch",
        "target": "scratch_1",
        "plan_id": "drill-20260101-0001",
        "version": "v8.5.0",
    }
    return render_tidbcluster(TEMPLATE, **{**args, **kw})


def crd_validator() -> jsonschema.Draft7Validator:
    if crd_dir() is None:
        pytest.skip(missing_reason())
    return jsonschema.Draft7Validator(crd_schema("pingcap.com_tidbclusters.yaml"))


def test_the_rendered_tidbcluster_is_valid_against_the_v1_6_6_crd() -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in crd_validator().iter_errors(rendered())]
    assert errors == []


def test_a_misspelt_template_field_fails_the_crd_schema() -> None:
    bad = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "tikv": {**TEMPLATE["spec"]["tikv"], "replica": 1}}}
    manifest = render_tidbcluster(bad, name="s-1", namespace="ns", target="s", plan_id="d", version="v8.5.0")
    assert any("replica" in e.message for e in crd_validator().iter_errors(manifest))


def test_golden_scratch_tidbcluster() -> None:
    text = yaml.safe_dump(rendered(), sort_keys=True)
    path = GOLDEN / "scratch-tidbcluster.yaml"
    if os.environ.get("TIDBOPS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} differs; if deliberate, rewrite with TIDBOPS_UPDATE_GOLDEN=1"


def test_names_come_from_the_target_and_the_drill_id() -> None:
    a = scratch_name("scratch_1", "drill-1")
    assert a == scratch_name("scratch_1", "drill-1")  # a retry of the same drill: the same cluster
    assert a != scratch_name("scratch_1", "drill-2") and a != scratch_name("scratch_2", "drill-1")
    assert a.startswith("scratch-1-") and len(a) == len("scratch-1-") + 8
    long = scratch_name("a" * 64, "drill-1")
    assert len(long) <= 40 and long.startswith("a" * 20)
    with pytest.raises(ValueError, match="drill or restore id"):
        scratch_name("scratch_1", " ")
    assert alias_name("scratch_1", "pd") == "scratch-1-pd"


def test_render_sets_what_is_ours_and_keeps_the_template() -> None:
    tc = rendered()
    assert tc["metadata"]["labels"] == {
        "team": "dba",
        "app.kubernetes.io/managed-by": "tidbops",
        "tidbops/scratch-of": "scratch-1",
        "tidbops/plan": "drill-20260101-0001",
    }
    assert tc["spec"]["version"] == "v8.5.0" and tc["spec"]["tikv"] == TEMPLATE["spec"]["tikv"]
    assert is_ours(tc, target="scratch_1") and not is_ours(tc, target="scratch_2")
    assert "version" not in TEMPLATE["spec"]  # the template itself is left alone
    spec_only = render_tidbcluster(
        TEMPLATE["spec"] | {"version": "v7.5.1"}, name="s-1", namespace="ns", target="s", plan_id="d"
    )
    assert spec_only["spec"]["version"] == "v7.5.1"


@pytest.mark.parametrize(
    ("template", "match"),
    [
        pytest.param(
            {"metadata": {"name": "fixed"}, "spec": TEMPLATE["spec"]}, "metadata.name is set by tidbops", id="named"
        ),
        pytest.param({"kind": "Cluster", "spec": TEMPLATE["spec"]}, "TidbCluster is expected", id="v2-kind"),
        pytest.param({"spec": {"pd": {}, "tidb": {}}}, r"spec\.tikv missing", id="no-tikv"),
        pytest.param(
            {"metadata": {"finalizers": ["x"]}, "spec": TEMPLATE["spec"]},
            "labels and annotations only",
            id="finalizers",
        ),
        pytest.param(TEMPLATE, "no spec.version", id="no-version"),
    ],
)
def test_templates_that_cannot_become_a_scratch_cluster(template: dict[str, Any], match: str) -> None:
    with pytest.raises(ScratchTemplateError, match=match):
        render_tidbcluster(template, name="s-1", namespace="ns", target="s", plan_id="d")


@pytest.mark.parametrize(
    ("status", "ready", "waiting"),
    [
        pytest.param(
            {},
            False,
            "no Ready condition yet (the operator has not reconciled it); pd phase unknown; tikv phase unknown; "
            "tidb phase unknown",
            id="new",
        ),
        pytest.param(
            tidbcluster_status(ready=False, tikv="Scale", tidb="Scale"),
            False,
            "Ready=False (TiKVStoreNotUp: TiKV store(s) are not up); tikv phase Scale; tidb phase Scale",
            id="scaling",
        ),
        pytest.param(tidbcluster_status(ready=True, tidb="Upgrade"), False, "tidb phase Upgrade", id="upgrading"),
        pytest.param(tidbcluster_status(ready=True), True, "", id="ready"),
    ],
)
def test_readiness(status: dict[str, Any], ready: bool, waiting: str) -> None:
    state = readiness({"status": status})
    assert state.ready is ready
    assert "; ".join(state.waiting_for) == waiting
    assert state.describe() == ("ready" if ready else "waiting for " + waiting)


def test_endpoints_and_aliases_come_from_the_tidbclusters_services() -> None:
    tc = rendered()
    name = tc["metadata"]["name"]
    services = tidbcluster_services(tc)
    found = endpoints(name, "tidb-scratch", services)
    assert found.to_dict() == {"pd": f"{name}-pd.tidb-scratch.svc:2379", "sql": f"{name}-tidb.tidb-scratch.svc:4000"}
    aliases = alias_services("scratch_1", name, "tidb-scratch", services)
    assert [a["metadata"]["name"] for a in aliases] == ["scratch-1-pd", "scratch-1-tidb"]
    assert [a["spec"]["selector"] for a in aliases] == [s["spec"]["selector"] for s in services]
    assert [p["port"] for p in aliases[1]["spec"]["ports"]] == [4000, 10080]
    assert {alias_owner(a) for a in aliases} == {name}
    with pytest.raises(LookupError, match=f"no Service {name}-tidb"):
        endpoints(name, "tidb-scratch", services[:1])


def test_config_points_pd_at_the_alias() -> None:
    base: dict[str, Any] = {
        "name": "scratch_1",
        "env": "scratch",
        "scratch": True,
        "tidb_conn_id": "tidb_scratch_1",
        "storage": {"uri": "s3://backups/scratch"},
        "scratch_kubernetes": {
            "namespace": "tidb-scratch",
            "template": TEMPLATE,
            "version": "v8.5.0",
            "ready_timeout": "20m",
        },
    }
    ok = ClusterConfig(**base, pd=["scratch-1-pd.tidb-scratch.svc.cluster.local:2379"])
    assert ok.scratch_kubernetes is not None and ok.scratch_kubernetes.ready_timeout == 1200.0
    with pytest.raises(ValueError, match=r"use scratch-1-pd\.tidb-scratch\.svc:2379"):
        ClusterConfig(**base, pd=["pd-0:2379"])
    with pytest.raises(ValueError, match="only a cluster marked scratch: true"):
        ClusterConfig(**{**base, "scratch": False, "env": "dev"}, pd=["scratch-1-pd.tidb-scratch.svc:2379"])
    with pytest.raises(ValueError, match=r"spec\.tikv, spec\.tidb missing"):
        ClusterConfig(
            **{**base, "scratch_kubernetes": {"namespace": "n", "template": {"spec": {"pd": {}}}}},
            pd=["scratch-1-pd.n.svc:2379"],
        )
