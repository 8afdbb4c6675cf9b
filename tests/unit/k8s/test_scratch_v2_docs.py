"""docs/deploy.md "Scratch clusters on Kubernetes" shows manifests that work: its fleet config entry loads and
renders a TidbCluster valid against TiDB Operator v1.6.6's CRD, and its v2 ``Cluster`` + component groups are
valid against the v2 CRDs (both from the reference folder; skipped, saying where it looked, without it)."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers.k8s_schemas import REPO, V2_CRDS, crd_dir, crd_schema, missing_reason
from tidbops.config import ClusterConfig
from tidbops.k8s.scratch import render_tidbcluster, scratch_name

pytestmark = pytest.mark.unit

DOC = REPO / "docs/deploy.md"
V2_FILES = {
    "Cluster": "core.pingcap.com_clusters.yaml",
    "PDGroup": "core.pingcap.com_pdgroups.yaml",
    "TiKVGroup": "core.pingcap.com_tikvgroups.yaml",
    "TiDBGroup": "core.pingcap.com_tidbgroups.yaml",
}


def yaml_blocks(heading: str) -> list[str]:
    """The ```yaml blocks of the section under ``heading`` (up to the next heading of any level)."""
    text = DOC.read_text()
    start = text.index(heading + "\n")
    end = re.search(r"(?m)^#{1,3} ", text[start + len(heading) :])
    section = text[start : start + len(heading) + end.start()] if end else text[start:]
    return re.findall(r"```yaml\n(.*?)```", section, flags=re.S)


def test_the_fleet_entry_loads_and_renders_a_valid_tidbcluster() -> None:
    if crd_dir() is None:
        pytest.skip(missing_reason())
    (block,) = yaml_blocks("## Scratch clusters on Kubernetes")
    (entry,) = yaml.safe_load(block)
    cluster = ClusterConfig(**entry)
    k8s = cluster.scratch_kubernetes
    assert k8s is not None and k8s.ready_timeout == 1800.0
    manifest = render_tidbcluster(
        k8s.template,
        name=scratch_name(cluster.name, "drill-1"),
        namespace=k8s.namespace,
        target=cluster.name,
        plan_id="drill-1",
        version=k8s.version,
    )
    validator = jsonschema.Draft7Validator(crd_schema("pingcap.com_tidbclusters.yaml"))
    assert [e.message for e in validator.iter_errors(manifest)] == []


def test_the_v2_cluster_and_groups_are_valid_against_the_v2_crds() -> None:
    if crd_dir(V2_CRDS) is None:
        pytest.skip(missing_reason(V2_CRDS))
    (block,) = yaml_blocks("### TiDB Operator v2: `Cluster` and component groups")
    docs: list[dict[str, Any]] = list(yaml.safe_load_all(block))
    assert [d["kind"] for d in docs] == ["Cluster", "PDGroup", "TiKVGroup", "TiDBGroup"]
    cluster_name = docs[0]["metadata"]["name"]
    for doc in docs:
        validator = jsonschema.Draft7Validator(crd_schema(V2_FILES[doc["kind"]], V2_CRDS))
        assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)] == [], doc["kind"]
        if doc["kind"] != "Cluster":
            assert doc["spec"]["cluster"]["name"] == cluster_name
    broken = {**docs[1], "spec": {**docs[1]["spec"], "replica": 1}}
    assert list(jsonschema.Draft7Validator(crd_schema(V2_FILES["PDGroup"], V2_CRDS)).iter_errors(broken))
