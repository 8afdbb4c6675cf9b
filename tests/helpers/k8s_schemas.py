"""The TiDB Operator CRD schemas as JSON schemas, read from the reference folder beside the repository (never copied in).

A CRD's ``openAPIV3Schema`` is OpenAPI 3.0, not quite JSON schema: ``nullable`` and
``x-kubernetes-preserve-unknown-fields`` need translating. Unknown fields are rejected, as an API server does with
``fieldValidation=Strict`` (``kubectl apply --validate=strict``), so a misspelt field fails a test instead of being
pruned silently.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# $TIDBOPS_REFERENCE_DIR, else the checkout's sibling ../shared/reference, else this workplace's /work/shared/reference
REFERENCE_DIRS = [
    Path(d)
    for d in (os.environ.get("TIDBOPS_REFERENCE_DIR"), REPO.parent / "shared/reference", "/work/shared/reference")
    if d
]
V1_CRDS = "crds/tidb-operator-v1.6.6"
V2_CRDS = "crds/tidb-operator-v2-master"


def crd_dir(which: str = V1_CRDS) -> Path | None:
    """The first reference folder holding ``which`` (a CRD set), or None where none does."""
    return next((d / which for d in REFERENCE_DIRS if (d / which).is_dir()), None)


def missing_reason(which: str = V1_CRDS) -> str:
    """Why tests that need the CRDs skip: where they looked."""
    return f"TiDB Operator CRDs not found: {', '.join(str(d / which) for d in REFERENCE_DIRS)} (set $TIDBOPS_REFERENCE_DIR)"


@functools.cache
def load_crd(filename: str, which: str = V1_CRDS) -> dict[str, Any]:
    """One CRD document (``pingcap.com_tidbclusters.yaml``) from the reference folder; FileNotFoundError if absent."""
    folder = crd_dir(which)
    if folder is None:
        raise FileNotFoundError(missing_reason(which))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the TidbCluster CRD is 1.3 MB of YAML
    with (folder / filename).open() as f:
        data = yaml.load(f, Loader=loader)
    assert isinstance(data, dict) and data.get("kind") == "CustomResourceDefinition", filename
    return data


def served_version(crd: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """The CRD's entry for ``version`` (default: its storage version)."""
    versions = crd["spec"]["versions"]
    for v in versions:
        if (version is None and v.get("storage")) or v["name"] == version:
            return dict(v)
    raise KeyError(f"{crd['metadata']['name']} serves no version {version!r}")


def json_schema(crd: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """The CRD's ``openAPIV3Schema`` for ``version`` translated to a JSON schema (strict about unknown fields)."""
    return _translate(served_version(crd, version)["schema"]["openAPIV3Schema"], top=True)


def _translate(node: Any, *, top: bool = False) -> Any:
    if isinstance(node, list):
        return [_translate(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _translate(v) for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if top:
        # an API server fills metadata itself and checks it by its own rules, not the CRD's
        out.setdefault("properties", {})["metadata"] = {"type": "object"}
    return out


@functools.cache
def crd_schema(filename: str, which: str = V1_CRDS) -> dict[str, Any]:
    """``json_schema`` of a reference CRD's storage version, translated once per session."""
    return json_schema(load_crd(filename, which))
