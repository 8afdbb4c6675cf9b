"""deploy/k8s/: the RBAC each BR runner needs and the Secrets' layout, held honest without a cluster.

Every document is valid against Kubernetes' OpenAPI schemas (kubernetes-validate, strict: an unknown field
fails); the Roles grant what the runners call and nothing broader (no wildcard, no Secrets, nothing
cluster-wide); every binding points at a Role and a ServiceAccount defined here; the Secret examples hold
placeholders only, under the keys our code and TiDB Operator read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO
from tidbops.k8s import operator_cr

pytestmark = pytest.mark.unit

K8S = REPO / "deploy/k8s"
FILES = sorted(K8S.glob("*.yaml"))
PLACEHOLDER = "change-me"
# the oldest Kubernetes we document and the newest kubernetes-validate knows
VERSIONS = ("1.30.0", "1.37.0")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


ALL = [(p.name, d) for p in FILES for d in _docs(p)]


def _by(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in ALL if d["kind"] == kind}


def _grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_files_are_there() -> None:
    assert {p.name for p in FILES} >= {
        "rbac-airflow.yaml",
        "rbac-kubernetes-runner.yaml",
        "rbac-tidb-operator-runner.yaml",
        "secrets-example.yaml",
    }


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "doc"), ALL, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in ALL])
def test_valid_against_kubernetes_openapi(name: str, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_validation_is_not_vacuous() -> None:
    role = _by("Role")["tidbops-br-pods"]
    wrong = {**role, "rules": [{**role["rules"][0], "verb": ["get"]}]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, VERSIONS[-1], strict=True)


POD_RULES = {("", "pods", v) for v in ("create", "get", "list", "delete")} | {("", "pods/log", "get")}
NEEDED = {
    # what tidbops_airflow.runners.kubernetes calls: create the pod, read it (adopt on retry), its log, delete it
    "tidbops-br-pods": POD_RULES,
    # what tidbops_airflow.runners.tidb_operator calls, plus the pods of commands no resource expresses
    "tidbops-br-operator": POD_RULES
    | {(operator_cr.GROUP, "backups", v) for v in ("create", "get", "list", "patch", "delete")}
    | {(operator_cr.GROUP, "restores", v) for v in ("create", "get", "list", "delete")},
    # TiDB Operator's BR Jobs: the backup-manager reads its resource, writes its status, records events
    "tidb-backup-manager": {("", "events", "create"), ("", "events", "patch")}
    | {(operator_cr.GROUP, r, v) for r in ("backups", "restores") for v in ("get", "list", "watch", "update")},
}


@pytest.mark.parametrize("role", sorted(NEEDED))
def test_roles_grant_exactly_what_the_runner_uses(role: str) -> None:
    grants = _grants(_by("Role")[role])
    assert grants == NEEDED[role]
    assert not any("*" in g for grant in grants for g in grant), "no wildcard"
    assert not any(resource == "secrets" for _, resource, _ in grants), "Airflow never reads a Secret"


def test_nothing_cluster_wide_and_every_binding_resolves() -> None:
    assert not [d for _, d in ALL if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    roles, accounts = _by("Role"), _by("ServiceAccount")
    bindings = _by("RoleBinding")
    assert set(bindings) == set(roles)
    for binding in bindings.values():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": binding["roleRef"]["name"],
        }
        assert binding["roleRef"]["name"] in roles
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["name"] in accounts
    assert accounts["tidbops-br"].get("automountServiceAccountToken") is False  # BR pods need no API token


def test_secret_examples_hold_placeholders_only() -> None:
    secrets = _by("Secret")
    for name, secret in secrets.items():
        assert "data" not in secret, f"{name}: base64 data hides what it holds; examples use stringData"
        assert secret["stringData"] and all(v == PLACEHOLDER for v in secret["stringData"].values()), name
    text = (K8S / "secrets-example.yaml").read_text()
    assert "BEGIN" not in text and "AKIA" not in text


def test_secret_layouts_are_the_keys_the_readers_use() -> None:
    secrets = {name: set(s["stringData"]) for name, s in _by("Secret").items()}
    assert secrets["tidbops-br-s3"] == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # BR's environment
    assert secrets["s3-backup-keys"] == {"access_key", "secret_key"}  # TiDB Operator's spec.s3.secretName
    assert secrets["tidbops-br-tls"] == {"ca.crt", "tls.crt", "tls.key"}
    # the crypter key file the tidb-operator runner passes is the Secret's one key, mounted
    assert secrets["tidbops-br-crypter"] == {"key"}
    assert f"--crypter.key-file={operator_cr.CRYPTER_MOUNT}/key" in yaml.safe_dump(
        operator_cr.plan(
            [
                "br",
                "backup",
                "full",
                "--storage",
                "s3://b/p",
                "--crypter.method",
                "aes256-ctr",
                "--crypter.key-file",
                "/tmp/k",
            ],
            _encrypted_cluster(),
            attempt="a",
        ).manifest
    )


def _encrypted_cluster() -> Any:
    from tidbops.config import ClusterConfig

    return ClusterConfig.model_validate(
        {
            "name": "prod",
            "env": "prod",
            "pd": ["pd:2379"],
            "tidb_conn_id": "tidb_prod",
            "storage": {"uri": "s3://backups/fleet"},
            "br": {
                "runner": "tidb-operator",
                "encryption": {"method": "aes256-ctr", "key_conn_id": "k"},
                "kubernetes": {"namespace": "tidb-prod", "crypter_secret_name": "tidbops-br-crypter"},
                "tidb_operator": {
                    "namespace": "tidb-prod",
                    "tidbcluster": "prod",
                    "crypter_secret_name": "tidbops-br-crypter",
                },
            },
        }
    )
