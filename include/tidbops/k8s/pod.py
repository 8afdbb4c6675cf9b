"""The BR pod of the ``kubernetes`` runner: its name, its spec and how to read its state. Pure (no client).

One pod per BR command (``br.runner: kubernetes``, ``br.kubernetes`` in the fleet config). The argv is what
``tidbops.br.command`` builds for a worker; ``pod_argv`` translates it for the pod:

* ``argv[0]`` (the worker's ``br``) → the image's ``/br`` (``pingcap/br`` images: ``COPY br /br``);
* ``--crypter.key-file <0600 file>`` → the key mounted read-only (0400) from ``crypter_secret_name`` (item ``key``);
* ``--ca/--cert/--key <PEM paths>`` → ``ca.crt``/``tls.crt``/``tls.key`` mounted from ``tls_secret_name``;
* ``--log-file <worker path>`` → ``<log_dir>/br.log`` on the pod's own ``emptyDir``.

The S3 credentials the worker resolved (``session.env``) are never sent: the container's environment takes
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` from ``credentials_secret_name`` by
``secretKeyRef`` (the token optional), or nothing (the pod's own identity, e.g. IRSA on the service account).
No value of any Secret appears in the spec. ``--log.crypter.key-file`` (owner-held keys, #17) has no Secret to
come from and is refused (the config refuses owner-key clusters on this runner too).

Names: a command that changes something (backup, restore, log start/stop/pause/resume/truncate) gets a name
derived from (dag_id, run_id, task_id, map_index, the pod argv), the same on every try of the task, so a retry
finds its own pod (adopts one that succeeded; deletes and recreates one that failed or still runs). Reads
(``log status``/``metadata``, ``debug``, ``-V``) get a fresh name each time: an old answer is not adopted.

``pod_state`` reads a pod object (as the API returns it, camelCase) into what the runner acts on.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tidbops.br.errors import BRRequestError
from tidbops.config import ClusterConfig, K8sToleration, KubernetesBRConfig
from tidbops.errors import TiDBOpsError

BR_BINARY = "/br"
CONTAINER = "br"
CRYPTER_DIR = "/var/run/secrets/tidbops/crypter"
TLS_DIR = "/var/run/secrets/tidbops/tls"
LOG_NAME = "br.log"
DEADLINE_MARGIN = 120  # seconds over BR's timeout before Kubernetes ends the pod itself (the runner died)
_MUTATING = {("backup",), ("restore",), ("log", "start"), ("log", "stop"), ("log", "pause"), ("log", "resume")}
_MUTATING |= {("log", "truncate")}
LABEL_APP = "app.kubernetes.io/name"
LABEL_MANAGED = "app.kubernetes.io/managed-by"
LABEL_CLUSTER = "tidbops.io/cluster"
LABEL_COMMAND = "tidbops.io/command"

PodPhase = Literal["pending", "running", "succeeded", "failed", "evicted", "image-pull", "cannot-start", "gone"]


class BRPodError(TiDBOpsError):
    """BR's pod did not run to an end of BR's own: evicted, its image not pulled, its container not started
    (a Secret that is not there), deleted under it, or the API refused it. ``retriable``: another try may pass
    (evicted, deleted, the API server's 5xx); ``log_text``: what BR printed before, if anything."""

    def __init__(self, message: str, *, log_text: str = "", retriable: bool = False) -> None:
        self.log_text = log_text
        self.retriable = retriable
        super().__init__(message + (" (retriable)" if retriable else ""))


@dataclass(frozen=True)
class PodIdentity:
    """Who asks for the pod: the task (for a deterministic name) or nobody (the triggerer, the CLI)."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int = -1


def br_image(cluster: ClusterConfig, cluster_version: str | None = None) -> str:
    """``br.kubernetes.image``, else ``pingcap/br:<br.version>``, else ``pingcap/br:<the cluster's version>``."""
    k8s = _k8s(cluster)
    if k8s.image:
        return k8s.image
    version = cluster.br.version or cluster_version
    if not version:
        raise BRRequestError(
            f"cluster {cluster.name}: no BR image: set br.kubernetes.image or br.version (the cluster's version "
            "was not read)"
        )
    version = version if version.startswith("v") else f"v{version}"
    if not re.fullmatch(r"v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?", version):
        raise BRRequestError(f"cluster {cluster.name}: {version!r} is not a release to name a pingcap/br image by")
    return f"pingcap/br:{version}"


def mutating(argv: Sequence[str]) -> bool:
    """Whether the command changes the cluster or the storage (its pod is adopted by a retry)."""
    words = [a for a in argv[1:3] if not a.startswith("-")]
    return tuple(words[:1]) in _MUTATING or tuple(words[:2]) in _MUTATING


def command_label(argv: Sequence[str]) -> str:
    """``backup-full``, ``log-status``, ``version``... (a label value: at most 63 characters)."""
    words = []
    for a in argv[1:4]:
        if a.startswith("-"):
            break
        words.append(a)
    text = "-".join(words) or ("version" if set(argv[1:]) & {"-V", "--version"} else "br")
    return re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")[:63] or "br"


def pod_argv(argv: Sequence[str], cluster: ClusterConfig) -> list[str]:
    """The argv as the pod runs it (see the module's doc): no worker path survives."""
    if not argv:
        raise BRRequestError("an empty BR argv")
    k8s = _k8s(cluster)
    out = [BR_BINARY]
    args = list(argv[1:])
    i = 0
    while i < len(args):
        flag = args[i]
        name, eq, inline = flag.partition("=")
        value = inline if eq else (args[i + 1] if i + 1 < len(args) else None)
        mapped: str | None = None
        if name == "--crypter.key-file":
            if k8s.crypter_secret_name is None:
                raise BRRequestError(
                    f"cluster {cluster.name}: BR needs its crypter key; set br.kubernetes.crypter_secret_name"
                )
            mapped = f"{CRYPTER_DIR}/key"
        elif name in ("--ca", "--cert", "--key"):
            if k8s.tls_secret_name is None:
                raise BRRequestError(f"cluster {cluster.name}: BR needs TLS files; set br.kubernetes.tls_secret_name")
            mapped = f"{TLS_DIR}/" + {"--ca": "ca.crt", "--cert": "tls.crt", "--key": "tls.key"}[name]
        elif name == "--log-file":
            mapped = f"{k8s.log_dir.rstrip('/')}/{LOG_NAME}"
        elif name == "--log.crypter.key-file":
            raise BRRequestError(
                f"cluster {cluster.name}: owner-held log keys (--log.crypter.key-file) cannot run in a BR pod; "
                "use br.runner local"
            )
        if mapped is None:
            out.append(flag)
            i += 1
            continue
        if value is None:
            raise BRRequestError(f"{name} without a value")
        out.append(f"{name}={mapped}" if eq else name)
        if not eq:
            out.append(mapped)
        i += 1 if eq else 2
    return out


def pod_name(
    cluster: ClusterConfig,
    argv: Sequence[str],
    who: PodIdentity,
    nonce: str = "",
    *,
    secrets_from: ClusterConfig | None = None,
) -> str:
    """``br-<cluster>-<command>-<digest>``: the digest of the task's identity and the pod argv (plus ``nonce``
    for a read, which is never adopted), at most 63 characters."""
    pod_args = pod_argv(argv, _effective(cluster, secrets_from))
    key = "\x00".join(
        [str(who.dag_id), str(who.run_id), str(who.task_id), str(who.map_index), *pod_args]
        + ([] if mutating(argv) else [nonce])
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    stem = re.sub(r"[^a-z0-9-]", "-", f"br-{cluster.name}-{command_label(argv)}".lower())
    return f"{stem[: 63 - 13].rstrip('-')}-{digest}"


def br_pod(
    cluster: ClusterConfig,
    argv: Sequence[str],
    *,
    name: str,
    image: str,
    timeout: float,
    who: PodIdentity = PodIdentity(),
    secrets_from: ClusterConfig | None = None,
    storage_credentials: bool = True,
) -> dict[str, Any]:
    """The Pod manifest (API field names) that runs ``argv`` for ``cluster``.

    :param secrets_from: whose ``credentials_secret_name``/``crypter_secret_name`` (a restore reads another cluster's
        backups with that cluster's keys); default ``cluster``. TLS and everything else: ``cluster``'s.
    :param storage_credentials: whether the command reads or writes the storage (the worker's session had
        credentials); a PD-only command (``br log status``, ``br -V``) gets no credentials Secret.
    """
    k8s = _k8s(cluster)
    source = _k8s(_effective(cluster, secrets_from))
    args = pod_argv(argv, _effective(cluster, secrets_from))
    env: list[dict[str, Any]] = []
    if storage_credentials and source.credentials_secret_name:
        for var, optional in (
            ("AWS_ACCESS_KEY_ID", False),
            ("AWS_SECRET_ACCESS_KEY", False),
            ("AWS_SESSION_TOKEN", True),
        ):
            ref: dict[str, Any] = {"name": source.credentials_secret_name, "key": var}
            if optional:
                ref["optional"] = True
            env.append({"name": var, "valueFrom": {"secretKeyRef": ref}})
    mounts: list[dict[str, Any]] = [{"name": "br-log", "mountPath": k8s.log_dir}]
    volumes: list[dict[str, Any]] = [{"name": "br-log", "emptyDir": {}}]
    if any(a.startswith(CRYPTER_DIR) or a.startswith(f"--crypter.key-file={CRYPTER_DIR}") for a in args):
        mounts.append({"name": "crypter", "mountPath": CRYPTER_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "crypter",
                "secret": {
                    "secretName": source.crypter_secret_name,
                    "defaultMode": 0o400,
                    "items": [{"key": "key", "path": "key"}],
                },
            }
        )
    if any(a.startswith(TLS_DIR) for a in args):
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": k8s.tls_secret_name, "defaultMode": 0o400}})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [args[0]],
        "args": args[1:],
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    resources = {k: dict(v) for k, v in (("requests", k8s.resources.requests), ("limits", k8s.resources.limits)) if v}
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": math.ceil(timeout) + DEADLINE_MARGIN,
        "containers": [container],
        "volumes": volumes,
    }
    if k8s.service_account:
        spec["serviceAccountName"] = k8s.service_account
    if k8s.node_selector:
        spec["nodeSelector"] = dict(k8s.node_selector)
    if k8s.tolerations:
        spec["tolerations"] = [_toleration(t) for t in k8s.tolerations]
    annotations = {"tidbops.io/command": " ".join(args[:4])[:256]}
    for key, value in (("dag-id", who.dag_id), ("run-id", who.run_id), ("task-id", who.task_id)):
        if value is not None:
            annotations[f"tidbops.io/{key}"] = value
    if who.task_id is not None:
        annotations["tidbops.io/map-index"] = str(who.map_index)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": k8s.namespace,
            "labels": {
                LABEL_APP: "br",
                LABEL_MANAGED: "tidbops",
                LABEL_CLUSTER: re.sub(r"[^A-Za-z0-9_.-]", "-", cluster.name)[:63],
                LABEL_COMMAND: command_label(argv),
            },
            "annotations": annotations,
        },
        "spec": spec,
    }


@dataclass(frozen=True)
class PodState:
    """What a pod's status says, for the runner: ``phase`` and a one-line ``detail`` when it will not finish
    by itself (evicted, image not pulled, not schedulable), ``exit_code`` of BR's container when it ended."""

    phase: PodPhase
    detail: str = ""
    exit_code: int | None = None

    @property
    def finished(self) -> bool:
        return self.phase in ("succeeded", "failed", "evicted", "image-pull", "cannot-start", "gone")


_PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_STUCK_REASONS = {"CreateContainerConfigError", "CreateContainerError"}  # e.g. a Secret that is not there


def pod_state(pod: Mapping[str, Any] | None) -> PodState:
    """Read a pod (API JSON, camelCase). ``None`` (the pod is not there any more) is ``gone``."""
    if pod is None:
        return PodState("gone", "the BR pod is gone (deleted by somebody else, or never created)")
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    container = next(
        (c for c in status.get("containerStatuses") or [] if c.get("name") == CONTAINER),
        (status.get("containerStatuses") or [{}])[0] if status.get("containerStatuses") else {},
    )
    state = container.get("state") or {}
    terminated = state.get("terminated") or {}
    exit_code = terminated.get("exitCode")
    if status.get("reason") == "Evicted":
        return PodState("evicted", f"the BR pod was evicted: {status.get('message') or 'no message'}", exit_code)
    if phase == "Succeeded":
        return PodState("succeeded", exit_code=0 if exit_code is None else int(exit_code))
    if phase == "Failed":
        reason = status.get("reason") or terminated.get("reason") or "Error"
        detail = f"the BR pod failed ({reason}{': ' + str(status.get('message')) if status.get('message') else ''})"
        return PodState("failed", detail, 1 if exit_code is None else int(exit_code))
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in _PULL_REASONS:
        image = container.get("image") or _spec_image(pod)
        return PodState(
            "image-pull",
            f"the BR image {image} cannot be pulled ({waiting['reason']}: {waiting.get('message') or 'no message'})",
        )
    if waiting.get("reason") in _STUCK_REASONS:
        return PodState(
            "cannot-start",
            f"the BR container cannot start ({waiting['reason']}: {waiting.get('message') or 'no message'})",
        )
    if phase == "Running":
        return PodState("running")
    return PodState("pending")


def _spec_image(pod: Mapping[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("image") or "?")


def _k8s(cluster: ClusterConfig) -> KubernetesBRConfig:
    if cluster.br.kubernetes is None:
        raise BRRequestError(f"cluster {cluster.name}: br.kubernetes is not set (the kubernetes runner needs it)")
    return cluster.br.kubernetes


def _effective(cluster: ClusterConfig, secrets_from: ClusterConfig | None) -> ClusterConfig:
    """``cluster`` with the storage Secrets of ``secrets_from`` (when it runs BR on Kubernetes too)."""
    k8s = _k8s(cluster)
    source = secrets_from.br.kubernetes if secrets_from is not None else None
    if source is None or source is k8s:
        return cluster
    merged = k8s.model_copy(
        update={
            "credentials_secret_name": source.credentials_secret_name,
            "crypter_secret_name": source.crypter_secret_name,
        }
    )
    return cluster.model_copy(update={"br": cluster.br.model_copy(update={"kubernetes": merged})})


def _toleration(t: K8sToleration) -> dict[str, Any]:
    out: dict[str, Any] = {"operator": t.operator}
    for key, value in (("key", t.key), ("value", t.value), ("effect", t.effect)):
        if value is not None:
            out[key] = value
    if t.toleration_seconds is not None:
        out["tolerationSeconds"] = t.toleration_seconds
    return out
