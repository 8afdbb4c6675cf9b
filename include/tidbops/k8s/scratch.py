"""Scratch clusters on Kubernetes: a TiDB Operator v1 ``TidbCluster`` per drill or restore, rendered and read back.

Pure (no Airflow, no Kubernetes client): ``tidbops_airflow.operators.kube_scratch`` creates, waits for, and deletes
what this module describes.

* **Name** (``scratch_name``): the scratch cluster's name and the drill/restore id, so a retried create finds and
  adopts its own cluster, and a cluster still being torn down never collides with the next drill's.
* **Manifest** (``render_tidbcluster``): the fleet config's template (``scratch_kubernetes.template``, a
  TidbCluster's ``spec`` and optional labels/annotations) with our name, namespace, ``spec.version`` and labels
  (``tidbops/scratch-of``, ``tidbops/plan``) set; a template may not name itself.
* **Ready** (``readiness``): the ``Ready`` condition ``True`` and PD, TiKV and TiDB each in phase ``Normal``;
  otherwise what is still missing, for the log and the timeout's message.
* **Addresses** (``endpoints``): from the TidbCluster's Services ``<name>-pd`` (port ``client``) and
  ``<name>-tidb`` (port ``mysql-client``), as ``<service>.<namespace>.svc:<port>``.
* **Stable aliases** (``alias_services``): the fleet config names one address per scratch cluster (``pd``, and the
  host of its ``tidb_conn_id``), but every drill brings a new TidbCluster. Two Services ``<alias>-pd`` and
  ``<alias>-tidb`` select the current TidbCluster's pods (the same selector as its own Services), so the restore,
  validation and clean-up reach it at the configured addresses. They also tell a second drill that the scratch
  cluster is taken (``alias_owner``): it is refused until the first one's cluster is gone.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidbops.errors import TiDBOpsError

API_VERSION = "pingcap.com/v1alpha1"
KIND = "TidbCluster"
GROUP, VERSION = API_VERSION.split("/")
PLURAL = "tidbclusters"
MANAGED_BY = "tidbops"
LABEL_SCRATCH_OF = "tidbops/scratch-of"
LABEL_PLAN = "tidbops/plan"
LABEL_INSTANCE = "app.kubernetes.io/instance"
COMPONENTS = ("pd", "tikv", "tidb")
PD_PORT_NAME = "client"
TIDB_PORT_NAME = "mysql-client"
MAX_NAME = 40  # the operator derives StatefulSet/Service/Pod names from it (<name>-tikv-peer, <name>-pd-12...)

Manifest = dict[str, Any]


class ScratchTemplateError(ValueError):
    """A ``scratch_kubernetes.template`` that cannot become a TidbCluster."""


class ScratchClusterError(TiDBOpsError):
    """A scratch TidbCluster that did not become Ready in time, vanished, is taken, or is not ours to adopt."""


@dataclass(frozen=True)
class Readiness:
    """Whether a TidbCluster is ready for a restore, and if not, what it is waiting for."""

    ready: bool
    waiting_for: tuple[str, ...] = ()

    def describe(self) -> str:
        return "ready" if self.ready else "waiting for " + "; ".join(self.waiting_for)


@dataclass(frozen=True)
class Endpoints:
    """Where a scratch TidbCluster answers: PD's client address and TiDB's SQL address (``host:port``)."""

    pd: str
    sql: str

    def to_dict(self) -> dict[str, str]:
        return {"pd": self.pd, "sql": self.sql}


def k8s_label(text: str) -> str:
    """``text`` as an RFC 1123 label (lower case, ``_`` → ``-``): a cluster name may hold ``_``, a TidbCluster's not."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return out or "x"


def scratch_name(target: str, plan_id: str) -> str:
    """The TidbCluster of the drill/restore ``plan_id`` into the scratch cluster ``target``: same id, same name.

    ``<target>-<8 hex of the id>``; the target part cut so the whole stays within ``MAX_NAME`` characters.
    """
    if not plan_id.strip():
        raise ValueError("a scratch cluster's name needs the drill or restore id")
    digest = hashlib.sha256(f"{target}\0{plan_id}".encode()).hexdigest()[:8]
    return f"{k8s_label(target)[: MAX_NAME - 9].rstrip('-')}-{digest}"


def alias_name(target: str, component: str) -> str:
    """The stable Service in front of ``target``'s current TidbCluster: ``<target>-pd`` / ``<target>-tidb``."""
    return f"{k8s_label(target)}-{component}"


def render_tidbcluster(
    template: Mapping[str, Any],
    *,
    name: str,
    namespace: str,
    target: str,
    plan_id: str,
    version: str | None = None,
) -> Manifest:
    """The TidbCluster to create from the fleet config's ``template``.

    :param template: a TidbCluster manifest, or just its ``spec`` (``pd``, ``tikv``, ``tidb``...); its own
        ``metadata.name``/``namespace`` are refused (the name is per drill).
    :param version: ``spec.version`` (the TiDB version); None keeps the template's, which must then be there.
    """
    if not isinstance(template, Mapping):
        raise ScratchTemplateError("scratch_kubernetes.template: a TidbCluster manifest (a mapping) is expected")
    body = copy.deepcopy(dict(template))
    if "spec" not in body:
        body = {"spec": body}  # the spec alone
    if body.get("apiVersion", API_VERSION) != API_VERSION or body.get("kind", KIND) != KIND:
        raise ScratchTemplateError(
            f"scratch_kubernetes.template: a {API_VERSION} {KIND} is expected, not "
            f"{body.get('apiVersion')} {body.get('kind')}"
        )
    meta = dict(body.get("metadata") or {})
    for field in ("name", "namespace", "generateName"):
        if field in meta:
            raise ScratchTemplateError(
                f"scratch_kubernetes.template: metadata.{field} is set by tidbops (one cluster per drill); remove it"
            )
    unknown = set(meta) - {"labels", "annotations"}
    if unknown:
        raise ScratchTemplateError(
            f"scratch_kubernetes.template: metadata may hold labels and annotations only, not "
            f"{', '.join(sorted(unknown))}"
        )
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise ScratchTemplateError("scratch_kubernetes.template: spec must be a mapping")
    missing = [c for c in COMPONENTS if not isinstance(spec.get(c), dict)]
    if missing:
        raise ScratchTemplateError(
            f"scratch_kubernetes.template: spec.{', spec.'.join(missing)} missing; a scratch cluster needs PD, "
            "TiKV and TiDB"
        )
    if version is not None:
        spec["version"] = version
    if not spec.get("version"):
        raise ScratchTemplateError("scratch_kubernetes.template: no spec.version; set it or scratch_kubernetes.version")
    labels = {
        **dict(meta.get("labels") or {}),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_SCRATCH_OF: k8s_label(target),
        LABEL_PLAN: k8s_label(plan_id)[:63].rstrip("-"),
    }
    metadata: Manifest = {"name": name, "namespace": namespace, "labels": labels}
    if meta.get("annotations"):
        metadata["annotations"] = dict(meta["annotations"])
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def is_ours(obj: Mapping[str, Any], *, target: str) -> bool:
    """Whether a TidbCluster found under our name is one tidbops made for ``target`` (safe to adopt or delete)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(
        labels.get("app.kubernetes.io/managed-by") == MANAGED_BY and labels.get(LABEL_SCRATCH_OF) == k8s_label(target)
    )


def readiness(tc: Mapping[str, Any]) -> Readiness:
    """Ready when the ``Ready`` condition is ``True`` and PD, TiKV and TiDB are all ``Normal``."""
    status = tc.get("status") or {}
    waiting: list[str] = []
    ready_cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready_cond is None:
        waiting.append("no Ready condition yet (the operator has not reconciled it)")
    elif ready_cond.get("status") != "True":
        reason = ready_cond.get("reason") or "not ready"
        message = ready_cond.get("message")
        waiting.append(f"Ready={ready_cond.get('status')} ({reason}{': ' + message if message else ''})")
    for component in COMPONENTS:
        phase = (status.get(component) or {}).get("phase")
        if phase != "Normal":
            waiting.append(f"{component} phase {phase or 'unknown'}")
    return Readiness(ready=not waiting, waiting_for=tuple(waiting))


def _port(service: Mapping[str, Any], port_name: str, default: int) -> int:
    ports = (service.get("spec") or {}).get("ports") or []
    for p in ports:
        if p.get("name") == port_name:
            return int(p["port"])
    return int(ports[0]["port"]) if ports else default


def endpoints(tc_name: str, namespace: str, services: Sequence[Mapping[str, Any]]) -> Endpoints:
    """PD's and TiDB's addresses from the TidbCluster's own Services (``<name>-pd``, ``<name>-tidb``)."""
    by_name = {s["metadata"]["name"]: s for s in services}
    found = {}
    for component, port_name, default in (("pd", PD_PORT_NAME, 2379), ("tidb", TIDB_PORT_NAME, 4000)):
        svc = by_name.get(f"{tc_name}-{component}")
        if svc is None:
            raise LookupError(f"TidbCluster {namespace}/{tc_name} has no Service {tc_name}-{component} yet")
        found[component] = f"{tc_name}-{component}.{namespace}.svc:{_port(svc, port_name, default)}"
    return Endpoints(pd=found["pd"], sql=found["tidb"])


def alias_services(target: str, tc_name: str, namespace: str, services: Sequence[Mapping[str, Any]]) -> list[Manifest]:
    """The stable Services ``<target>-pd`` / ``<target>-tidb`` selecting ``tc_name``'s pods, ports as its own."""
    by_name = {s["metadata"]["name"]: s for s in services}
    out = []
    for component in ("pd", "tidb"):
        own = by_name.get(f"{tc_name}-{component}")
        if own is None:
            raise LookupError(f"TidbCluster {namespace}/{tc_name} has no Service {tc_name}-{component} yet")
        spec = own.get("spec") or {}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": alias_name(target, component),
                    "namespace": namespace,
                    "labels": {
                        "app.kubernetes.io/managed-by": MANAGED_BY,
                        LABEL_SCRATCH_OF: k8s_label(target),
                        LABEL_INSTANCE: tc_name,
                    },
                },
                "spec": {
                    "type": "ClusterIP",
                    "selector": dict(spec.get("selector") or {}),
                    "ports": [
                        {k: p[k] for k in ("name", "port", "protocol", "targetPort") if k in p}
                        for p in spec.get("ports") or []
                    ],
                },
            }
        )
    return out


def alias_owner(service: Mapping[str, Any]) -> str | None:
    """The TidbCluster an alias Service points at (its ``app.kubernetes.io/instance`` label), or None."""
    labels = (service.get("metadata") or {}).get("labels") or {}
    owner = labels.get(LABEL_INSTANCE)
    return str(owner) if owner else None
