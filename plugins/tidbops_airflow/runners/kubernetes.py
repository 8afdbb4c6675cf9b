"""The ``kubernetes`` BR runner: one pod per BR command, through the cncf-kubernetes provider.

The pod's name, spec and state reading are the pure ``tidbops.k8s.pod``; this module talks to the API server
with the provider's ``KubernetesHook(conn_id=br.kubernetes.conn_id)`` core/v1 client:

1. a command that changes something looks for its own pod first (the same name on every try of the task):
   one that succeeded is adopted (its log is the result, no second BR); one that failed, or that still runs
   from an earlier try, is deleted and created again (the retry's own steps before BR ran again: a backup's
   clear an unfinished backup's files, so that earlier BR must not go on);
2. the pod is created and waited for (its phase read every ``poll_seconds``), its log read from
   ``pods/{name}/log`` and streamed to ``on_line``; the whole log is BR's output, parsed by the caller exactly
   as a local run's (``parse_br_output``);
3. the pod is deleted once it ended, whatever the end: succeeded, failed (BR's error is in its log and
   becomes a ``BRError`` with BR's code), evicted or its image not pulled (``BRPodError`` naming the reason or
   the image), timed out (``BRTimeoutError``), or the task killed (``kill``, from ``on_kill``).

The spec sets ``activeDeadlineSeconds`` to the timeout plus a margin: a pod whose worker died is ended by
Kubernetes too. A hook marked ``deferrable`` (the backup step) defers the task while its pod runs
(``BRPodTrigger``) and, resumed with the trigger's event (``BRHook.resume_event``), takes that pod's result;
every other step waits in the worker, polling (README, "Running BR on Kubernetes").
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tidbops.br.runner import BRSession, BRTimeoutError
from tidbops.br.seam import BRRun, LineSink
from tidbops.k8s.pod import (
    CONTAINER,
    BRPodError,
    PodIdentity,
    PodState,
    br_image,
    br_pod,
    mutating,
    pod_name,
    pod_state,
)
from tidbops_airflow.runners.deferral import defer, take_resume_event

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api

    from tidbops.config import ClusterConfig
    from tidbops_airflow.hooks.br import BRHook

log = logging.getLogger(__name__)
DELETE_GRACE_SECONDS = 10  # BR gets SIGTERM, then SIGKILL after this (as the local runner's group kill)
GONE_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class PodHandle:
    """What ``on_start`` gets: where BR runs."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"pod {self.namespace}/{self.name}"


def task_identity() -> PodIdentity:
    """The running task's identity (dag, run, task, map index), or an empty one outside a task (triggerer)."""
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # no task context: the triggerer, the CLI
        return PodIdentity()
    map_index = getattr(ti, "map_index", None)
    return PodIdentity(ti.dag_id, ti.run_id, ti.task_id, -1 if map_index is None else int(map_index))


class KubernetesRunner:
    """Runs each BR command in a pod of ``cluster.br.kubernetes.namespace``.

    :param cluster: the cluster BR runs for (namespace, image, TLS Secret, resources... from its config).
    :param hook: the BR hook; its ``storage_source`` (a restore from another cluster's backups) names whose
        storage Secrets the pod mounts.
    :param core: a core/v1 client (default: the provider's hook for ``br.kubernetes.conn_id``).
    :param identity: who runs BR (default: the running task, from Airflow's context).
    """

    kind = "kubernetes"

    def __init__(
        self,
        cluster: ClusterConfig,
        hook: BRHook | None = None,
        *,
        core: CoreV1Api | None = None,
        identity: Callable[[], PodIdentity] = task_identity,
    ) -> None:
        if cluster.br.kubernetes is None:
            raise ValueError(f"cluster {cluster.name}: br.runner kubernetes needs br.kubernetes")
        self.cluster = cluster
        self.config = cluster.br.kubernetes
        self.hook = hook
        self._core = core
        self._identity = identity
        self._current: PodHandle | None = None
        self._killed = False
        self._cluster_version: str | None = None

    # ------------------------------------------------------------------------------------------ API
    @property
    def core(self) -> CoreV1Api:
        if self._core is None:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            self._core = KubernetesHook(conn_id=self.config.conn_id).core_v1_client
        return self._core

    def _read(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            pod = self.core.read_namespaced_pod(name, self.config.namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _api_error("read", self.config.namespace, name, exc) from None
        return _json(pod)

    def _log(self, name: str) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            resp = self.core.read_namespaced_pod_log(
                name, self.config.namespace, container=CONTAINER, _preload_content=False
            )
        except ApiException as exc:
            if exc.status in (400, 404):  # not started yet / gone
                return ""
            raise _api_error("read the log of", self.config.namespace, name, exc) from None
        data = resp.data
        return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)

    def _delete(self, name: str, *, wait: bool = False) -> None:
        from kubernetes.client import V1DeleteOptions
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_namespaced_pod(
                name,
                self.config.namespace,
                body=V1DeleteOptions(grace_period_seconds=DELETE_GRACE_SECONDS, propagation_policy="Background"),
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not delete BR pod %s/%s: %s", self.config.namespace, name, _reason(exc))
                return
        if wait:
            deadline = time.monotonic() + GONE_WAIT_SECONDS
            while self._read(name) is not None and time.monotonic() < deadline:
                time.sleep(min(self.config.poll_seconds, 1.0))

    def _create(self, manifest: dict[str, Any]) -> bool:
        """Create the pod; ``False`` when it already exists (another try got there first: adopt it)."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.create_namespaced_pod(self.config.namespace, manifest)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise _api_error("create", self.config.namespace, manifest["metadata"]["name"], exc) from None
        return True

    # ---------------------------------------------------------------------------------------- image
    def image(self) -> str:
        if self.config.image or self.cluster.br.version:
            return br_image(self.cluster)
        if self._cluster_version is None:
            from tidbops.br.version import read_cluster_version
            from tidbops_airflow.hooks.tidb import TiDBHook

            with TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).cursor() as cursor:
                self._cluster_version = _release(read_cluster_version(cursor))
        return br_image(self.cluster, self._cluster_version)

    # ------------------------------------------------------------------------------------------ run
    def run(
        self,
        argv: Sequence[str],
        session: BRSession,
        *,
        timeout: float,
        on_line: LineSink | None = None,
        on_start: Callable[[object], None] | None = None,
    ) -> BRRun:
        started = time.monotonic()
        self._killed = False
        who = self._identity()
        source = self.hook.storage_source if self.hook is not None else None
        adoptable = mutating(argv) and who.task_id is not None
        name = pod_name(self.cluster, argv, who, "" if adoptable else uuid.uuid4().hex, secrets_from=source)
        handle = PodHandle(self.config.namespace, name)
        self._current = handle  # from here on, kill() deletes this pod (even one being created right now)
        resumed = self._resumed_event(handle) if adoptable else None
        if resumed is not None:  # this try deferred while its pod ran: the pod's end is the result
            if on_start is not None:
                on_start(handle)
            if resumed.get("status") == "timeout":
                self._current = None
                self._delete(name)
                raise BRTimeoutError(timeout, str(resumed.get("detail") or ""))
            return self._wait(argv, handle, started=started, timeout=max(timeout, 60.0), on_line=on_line)
        existing = self._read(name) if adoptable else None
        state = pod_state(existing) if existing is not None else None
        if state is not None and state.phase == "succeeded":
            log.info("adopting %s: an earlier try of this task ran it to success", handle)
        else:
            if existing is not None:
                # failed, or still running while this try's own steps before BR ran again (a backup's clears an
                # unfinished backup's files): that BR must not go on; it is replaced
                log.info("%s of an earlier try is %s (%s): deleting it, BR runs again", handle, *_shown(state))
                self._delete(name, wait=True)
            manifest = br_pod(
                self.cluster,
                argv,
                name=name,
                image=self.image(),
                timeout=timeout,
                who=who,
                secrets_from=source,
                storage_credentials=bool(session.env),
            )
            if not self._create(manifest):
                raise BRPodError(
                    f"{handle} was created by somebody else meanwhile; not running BR twice", retriable=True
                )
        if on_start is not None:
            on_start(handle)
        done = state is not None and state.phase == "succeeded"  # adopted: nothing to wait for
        if adoptable and not done and self.hook is not None and self.hook.deferrable:
            self._defer(handle, deadline=time.time() + timeout - (time.monotonic() - started), timeout=timeout)
        return self._wait(argv, handle, started=started, timeout=timeout, on_line=on_line)

    def _resumed_event(self, handle: PodHandle) -> dict[str, Any] | None:
        """The trigger's event when this task resumes after deferring on ``handle`` (one use), else None."""
        try:
            return take_resume_event(self.hook, "pod", handle.namespace, handle.name)
        except ValueError as e:
            raise BRPodError(str(e)) from None

    def _defer(self, handle: PodHandle, *, deadline: float, timeout: float) -> None:
        """Hand the wait to the triggerer (``BRPodTrigger``); the task resumes in ``resume_br`` when the pod
        ended. The pod is left running (the finally of ``_wait`` is not reached)."""
        from tidbops_airflow.triggers.kubepod import BRPodTrigger

        self._current = None
        log.info("%s is running: deferring until it ends (no worker slot is held meanwhile)", handle)
        trigger = BRPodTrigger(
            conn_id=self.config.conn_id,
            namespace=handle.namespace,
            name=handle.name,
            deadline=deadline,
            poll_seconds=max(self.config.poll_seconds, 1.0),
        )
        defer(trigger, timeout)

    def _wait(
        self, argv: Sequence[str], handle: PodHandle, *, started: float, timeout: float, on_line: LineSink | None
    ) -> BRRun:
        emitted = 0
        try:
            while True:
                if self._killed:
                    raise BRPodError(f"{handle}: deleted, the task was killed")
                pod = self._read(handle.name)
                state = pod_state(pod)
                if state.phase == "running" or state.finished:
                    text = self._log(handle.name) if state.phase != "gone" else ""
                    lines = [ln for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln]
                    if on_line is not None:
                        for line in lines[emitted:]:
                            on_line("stdout", line)
                    emitted = max(emitted, len(lines))
                else:
                    text = ""
                if state.finished:
                    return self._result(argv, handle, state, text, time.monotonic() - started)
                if time.monotonic() - started >= timeout:
                    raise BRTimeoutError(timeout, "\n".join(text.splitlines()[-20:]))
                time.sleep(self.config.poll_seconds)
        finally:  # every end: succeeded, failed, evicted, not pulled, timed out, killed, an API error
            self._current = None
            self._delete(handle.name)

    def _result(self, argv: Sequence[str], handle: PodHandle, state: PodState, text: str, seconds: float) -> BRRun:
        _keep_output(argv, handle, text)
        if state.phase in ("succeeded", "failed"):
            return BRRun(
                argv=tuple(str(a) for a in argv),
                exit_code=int(state.exit_code or 0) if state.phase == "succeeded" else int(state.exit_code or 1),
                stdout=text,
                stderr_tail="",
                seconds=seconds,
                where=str(handle),
            )
        raise BRPodError(f"{handle}: {state.detail}", log_text=text, retriable=state.phase in ("evicted", "gone"))

    def kill(self) -> None:
        """Delete the running BR's pod (a task kill)."""
        self._killed = True
        handle = self._current
        if handle is not None:
            log.info("deleting %s (the task was killed)", handle)
            self._delete(handle.name)


def _keep_output(argv: Sequence[str], handle: PodHandle, text: str) -> None:
    """BR's ``--log-file`` lives on the pod's ``emptyDir`` and goes with the pod: the pod's output is written
    to the worker's log file of this run instead (the private 0600 file the hook made), kept for diagnosis."""
    args = list(argv)
    if "--log-file" not in args[:-1]:
        return
    path = args[args.index("--log-file") + 1]
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"# output of {handle} (BR's own --log-file stayed in the pod)\n{text}")
    except OSError as exc:
        log.warning("could not keep the output of %s in %s: %s", handle, path, exc.strerror)


def _json(resp: Any) -> dict[str, Any]:
    import json

    data = resp.data if hasattr(resp, "data") else resp
    return dict(json.loads(data))


def _release(version_text: str) -> str:
    from tidbops.br.version import parse_cluster_version

    return str(parse_cluster_version(version_text))


def _shown(state: PodState | None) -> tuple[str, str]:
    return ("?", "") if state is None else (state.phase, state.detail or "no detail")


def _reason(exc: Any) -> str:
    import json

    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return f"{exc.status} {body.get('reason') or exc.reason}: {body.get('message') or ''}".strip()


def _api_error(what: str, namespace: str, name: str, exc: Any) -> BRPodError:
    return BRPodError(f"could not {what} BR pod {namespace}/{name}: {_reason(exc)}", retriable=exc.status >= 500)
