"""The ``tidb-operator`` BR runner: each BR command as a TiDB Operator v1 ``Backup``/``Restore`` resource.

Thin glue over the pure ``tidbops.k8s.operator_cr``: it creates (or adopts), patches, reads and deletes what that
module plans, through the cncf-kubernetes provider's ``KubernetesHook`` (``br.tidb_operator.conn_id``), and waits
on the resource's ``status`` until the run it asked for finished:

* ``backup full`` / ``restore …``: a ``Backup``/``Restore`` named from the task attempt and its spec. A retried task
  finds its own: it adopts one that completed (its outcome, no second backup or restore); one that failed, or that
  still runs, it deletes and creates again — the step before BR has run again by then (it clears an unfinished
  backup's files, prepares the restore target), so an earlier BR must not go on writing.
  The resource is deleted once its outcome is read, on timeout and on task kill (``kill``); every one is
  ``cleanPolicy: Retain``, so that never deletes backup data, and TiDB Operator's Job goes with it.
* ``log start|pause|resume|stop|truncate``: the cluster's log ``Backup`` (found by its labels), created by
  ``log start``, patched by the others; never deleted (it *is* the log backup task).
* ``log status``: the log ``Backup`` resources read back as ``br log status --json`` prints tasks.
* anything else (``br log metadata``, ``br debug``, ``br -V``): a BR pod through ``br.kubernetes``.

Waiting happens in the worker (a poll every ``br.tidb_operator.poll_seconds``), except for a hook marked
``deferrable`` (the backup step, with ``br.tidb_operator.defer``): its task defers while the ``Backup`` runs
(``BRResourceTrigger``) and, resumed with the trigger's event (``BRHook.resume_event``), reads that resource's
outcome (no second resource). The outcome comes from ``status`` (``backupPath``, ``backupSize``, ``commitTs``,
the ``Failed`` condition's reason) as a ``BROutcome``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tidbops.br.errors import BRRequestError
from tidbops.br.output import BRErrorInfo, BROutcome
from tidbops.br.runner import BRTimeoutError
from tidbops.br.seam import BRRun
from tidbops.k8s import operator_cr as cr
from tidbops_airflow.runners.deferral import defer, take_resume_event

if TYPE_CHECKING:
    from kubernetes.client import CustomObjectsApi

    from tidbops.br.runner import BRSession
    from tidbops.br.seam import BRRunner, LineSink
    from tidbops.config import ClusterConfig
    from tidbops_airflow.hooks.br import BRHook

DELETE_WAIT = 120.0  # seconds a failed resource may take to go (finalizers) before it is re-created


class TiDBOperatorRunner:
    """``br.runner: tidb-operator``. One per hook: it remembers the resource it waits on, for ``kill``.

    :param cluster: the cluster whose ``br.tidb_operator`` (and ``br.kubernetes``) it uses.
    :param hook: the BR hook (for its log); optional.
    :param attempt: the task attempt's identity, the same on a retry; default: the running task's
        ``dag_id/run_id/task_id/map_index``.
    :param api: a ``CustomObjectsApi`` (default: ``KubernetesHook(conn_id=br.tidb_operator.conn_id)``'s).
    :param pod_runner: runs what no resource expresses (default: the cluster's ``kubernetes`` runner).
    """

    kind = "tidb-operator"

    def __init__(
        self,
        cluster: ClusterConfig,
        hook: BRHook | None = None,
        *,
        attempt: str | None = None,
        api: CustomObjectsApi | None = None,
        pod_runner: BRRunner | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cluster = cluster
        self.hook = hook
        self.config = cr.operator_config(cluster)
        self._attempt = attempt
        self._api = api
        self._pod_runner = pod_runner
        self._sleep = sleep
        self._current: cr.Plan | None = None  # the created resource being waited on (kill deletes it)
        self._killed = False

    # ----------------------------------------------------------------------------------------- access
    @property
    def api(self) -> CustomObjectsApi:
        if self._api is None:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            self._api = KubernetesHook(conn_id=self.config.conn_id).custom_object_client
        return self._api

    @property
    def attempt(self) -> str:
        if self._attempt is None:
            self._attempt = _task_attempt()
        return self._attempt

    def _pods(self) -> BRRunner:
        if self._pod_runner is None:
            if self.cluster.br.kubernetes is None:  # the config refuses this; kept for a hand-built runner
                raise BRRequestError(f"cluster {self.cluster.name!r}: this BR command needs br.kubernetes (a pod)")
            from tidbops_airflow.runners.kubernetes import KubernetesRunner

            self._pod_runner = KubernetesRunner(self.cluster, self.hook)
        return self._pod_runner

    # -------------------------------------------------------------------------------------------- run
    def run(
        self,
        argv: Sequence[str],
        session: BRSession,
        *,
        timeout: float,
        on_line: LineSink | None = None,
        on_start: Callable[[object], None] | None = None,
    ) -> BRRun:
        try:
            plan = cr.plan(argv, session.cluster, attempt=self.attempt)
        except cr.NotExpressible:
            return self._pods().run(argv, session, timeout=timeout, on_line=on_line, on_start=on_start)
        started = time.monotonic()
        say = on_line or (lambda stream, line: None)
        if plan.op == "read":
            found = self._list(plan)
            where = f"Backup {plan.namespace} ({plan.label_selector})"
            return BRRun(tuple(argv), 0, cr.log_status_json(found), "", time.monotonic() - started, None, where)
        if plan.op == "create":
            resumed = self._resumed_event(plan)
            if resumed is not None:  # this try deferred while its resource ran: that resource's end is the result
                return self._resume(argv, plan, resumed, say, started, timeout)
            created = self._create_or_adopt(plan, say, timeout)
            if isinstance(created, BROutcome):
                return self._ran(argv, started, created, f"Backup {plan.namespace} ({plan.label_selector})")
            obj = created
        else:
            target = self._target(plan)
            if isinstance(target, BROutcome):
                return self._ran(argv, started, target, f"Backup {plan.namespace} ({plan.label_selector})")
            obj = target
            name = obj["metadata"]["name"]
            obj = self.api.patch_namespaced_custom_object(
                cr.GROUP, cr.VERSION, plan.namespace, plan.plural, name, plan.patch
            )
            say("stdout", f"{cr.where(obj)}: {plan.command} ({plan.patch})")
        if on_start is not None:
            on_start(cr.where(obj))
        if plan.op == "create" and plan.goal is cr.Goal.COMPLETE and self.hook is not None and self.hook.deferrable:
            if not cr.read_state(plan, obj).finished:
                self._defer(plan, say, deadline=time.time() + timeout - (time.monotonic() - started), timeout=timeout)
        state = self._wait(plan, obj, say, started + timeout, timeout)
        assert state.outcome is not None
        if plan.op == "create" and plan.goal is cr.Goal.COMPLETE:
            self._delete(plan, str(plan.name))  # read: the outcome is ours now; the data stays (Retain)
        self._current = None
        return self._ran(argv, started, state.outcome, cr.where(obj))

    def kill(self) -> None:
        """Delete the Backup/Restore being waited on (TiDB Operator's Job goes with it); a log Backup stays."""
        self._killed = True
        plan = self._current
        if plan is not None and plan.op == "create" and plan.goal is cr.Goal.COMPLETE and plan.name:
            self._delete(plan, plan.name)

    # ------------------------------------------------------------------------------------ deferral
    def _resumed_event(self, plan: cr.Plan) -> dict[str, Any] | None:
        """The trigger's event when this task resumes after deferring on ``plan``'s resource (one use)."""
        try:
            return take_resume_event(self.hook, plan.kind, plan.namespace, str(plan.name))
        except ValueError as e:
            raise BRRequestError(str(e)) from None

    def _defer(self, plan: cr.Plan, say: LineSink, *, deadline: float, timeout: float) -> None:
        """Hand the wait to the triggerer (``BRResourceTrigger``); the task resumes in ``resume_br`` when the
        resource finished. The resource is left running."""
        from tidbops_airflow.triggers.kube_resource import BRResourceTrigger

        assert plan.name is not None
        self._current = None
        say("stdout", f"{plan.kind} {plan.namespace}/{plan.name} runs: deferring until it ends (no worker slot held)")
        trigger = BRResourceTrigger(
            kind=plan.kind,
            command=plan.command,
            conn_id=self.config.conn_id,
            namespace=plan.namespace,
            name=plan.name,
            deadline=deadline,
            poll_seconds=max(self.config.poll_seconds, 1.0),
        )
        defer(trigger, timeout)

    def _resume(
        self,
        argv: Sequence[str],
        plan: cr.Plan,
        event: Mapping[str, Any],
        say: LineSink,
        started: float,
        timeout: float,
    ) -> BRRun:
        """The deferred wait is over: read the resource's outcome, then delete it (``Retain``: the data stays)."""
        assert plan.name is not None
        here = f"{plan.kind} {plan.namespace}/{plan.name}"
        if event.get("status") == "timeout":
            self._delete(plan, plan.name)
            raise BRTimeoutError(timeout, f"{event.get('detail') or here}; deleted")
        current = self._get(plan, plan.name)
        if current is None:
            return self._ran(argv, started, _failed(plan, f"{here} was deleted while BR ran"), here)
        self._current = plan
        state = self._wait(plan, current, say, time.monotonic() + max(timeout, 60.0), timeout)
        assert state.outcome is not None
        self._delete(plan, plan.name)
        self._current = None
        return self._ran(argv, started, state.outcome, cr.where(current))

    # ---------------------------------------------------------------------------------------- helpers
    def _ran(self, argv: Sequence[str], started: float, outcome: BROutcome, where: str) -> BRRun:
        error = outcome.primary_error
        return BRRun(
            argv=tuple(argv),
            exit_code=0 if outcome.success else 1,
            stdout="",
            stderr_tail=error.message if error else "",
            seconds=time.monotonic() - started,
            outcome=outcome,
            where=where,
        )

    def _get(self, plan: cr.Plan, name: str) -> dict[str, Any] | None:
        from kubernetes.client.rest import ApiException

        try:
            obj = self.api.get_namespaced_custom_object(cr.GROUP, cr.VERSION, plan.namespace, plan.plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    def _list(self, plan: cr.Plan) -> list[dict[str, Any]]:
        found = self.api.list_namespaced_custom_object(
            cr.GROUP, cr.VERSION, plan.namespace, plan.plural, label_selector=plan.label_selector
        )
        return [dict(item) for item in found.get("items", [])]

    def _delete(self, plan: cr.Plan, name: str) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.api.delete_namespaced_custom_object(cr.GROUP, cr.VERSION, plan.namespace, plan.plural, name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _create_or_adopt(self, plan: cr.Plan, say: LineSink, timeout: float) -> dict[str, Any] | BROutcome:
        from kubernetes.client.rest import ApiException

        assert plan.name is not None and plan.manifest is not None
        if plan.goal is cr.Goal.LOG_RUNNING:  # BR refuses a second task of the same name: so do we
            others = [o for o in self._list(plan) if cr.on_track(o) and o["metadata"]["name"] != plan.name]
            if others:
                task = plan.selector.get(cr.LABEL_LOG_TASK)
                return _failed(plan, f"log backup task {task!r} already exists: {cr.where(others[0])}")
        self._current = plan
        deadline = time.monotonic() + min(DELETE_WAIT, timeout)
        while True:
            try:
                created = self.api.create_namespaced_custom_object(
                    cr.GROUP, cr.VERSION, plan.namespace, plan.plural, plan.manifest
                )
                say("stdout", f"created {cr.where(created)}")
                return dict(created)
            except ApiException as exc:
                if exc.status != 409:
                    raise
            existing = self._get(plan, plan.name)
            if existing is None:
                continue  # gone between the two calls
            state = cr.read_state(plan, existing)
            succeeded = state.finished and state.outcome is not None and state.outcome.success is True
            if succeeded or (not state.finished and plan.goal is not cr.Goal.COMPLETE):
                say("stdout", f"adopting {state.detail} (this task's earlier try)")
                return existing
            # failed: run it again. Still running (a snapshot Backup or a Restore): the step before BR has just run
            # again (it clears an unfinished backup's files, prepares the restore target), so the earlier BR must
            # not go on writing there: end it, then run afresh
            why = "failed" if state.finished else "was still running"
            say("stdout", f"{state.detail} {why} in an earlier try: deleting it to run again")
            self._delete(plan, plan.name)
            while self._get(plan, plan.name) is not None:
                if time.monotonic() > deadline:
                    raise BRRequestError(f"{cr.where(existing)} of an earlier try is still being deleted")
                self._sleep(min(self.config.poll_seconds, 2.0))

    def _target(self, plan: cr.Plan) -> dict[str, Any] | BROutcome:
        """The log Backup a patch applies to: the task's one on track; for a truncate, else its newest."""
        found = self._list(plan)
        live = [o for o in found if cr.on_track(o)]
        if len(live) == 1:
            return live[0]
        if len(live) > 1:
            raise BRRequestError(
                f"more than one log Backup runs for {plan.label_selector}: {[cr.where(o) for o in live]}"
            )
        if plan.goal is cr.Goal.LOG_TRUNCATED and found:
            return max(found, key=lambda o: str(o["metadata"].get("creationTimestamp", "")))
        message = f"no log backup task: no log Backup on track in {plan.namespace} with {plan.label_selector}"
        return BROutcome(
            recognised=True,
            command=plan.command,
            success=False,
            errors=(BRErrorInfo(message=message, code=None, source="text"),),
        )

    def _wait(
        self, plan: cr.Plan, obj: Mapping[str, Any], say: LineSink, deadline: float, timeout: float
    ) -> cr.CRState:
        name = obj["metadata"]["name"]
        last = ""
        current: Mapping[str, Any] | None = obj
        while True:
            if current is None:
                gone = f"{cr.where(obj)} was deleted while BR ran" + (" (task killed)" if self._killed else "")
                return cr.CRState(True, None, gone, _failed(plan, gone))
            state = cr.read_state(plan, current)
            if state.detail != last:
                say("stdout", state.detail)
                last = state.detail
            if state.finished:
                return state
            if time.monotonic() >= deadline:
                if plan.op == "create" and plan.goal is cr.Goal.COMPLETE:
                    self._delete(plan, name)
                self._current = None
                raise BRTimeoutError(timeout, f"{state.detail}; deleted" if plan.op == "create" else state.detail)
            self._sleep(self.config.poll_seconds)
            current = self._get(plan, name)


def _failed(plan: cr.Plan, message: str) -> BROutcome:
    return BROutcome(
        recognised=True,
        command=plan.command,
        success=False,
        errors=(BRErrorInfo(message=message, code=None, source="text"),),
    )


def _task_attempt() -> str:
    """``dag_id/run_id/task_id/map_index`` of the running task (the same on each of its tries)."""
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # outside a task (a test, the CLI): nothing to adopt across tries
        return f"adhoc/{uuid.uuid4()}"
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}"
