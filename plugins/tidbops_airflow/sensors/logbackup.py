"""LogCheckpointSensor: wait until a cluster's log backup checkpoint passes a TSO (restores to "latest", drills).

Deferrable by default: one ``br log status`` right away (already there: done), else the wait moves to the
triggerer (``LogCheckpointTrigger``) and frees the worker slot. ``deferrable=False`` pokes from the worker
(``mode="reschedule"`` frees the slot between pokes too). Either way the task fails at once, without
waiting out its timeout, when the checkpoint cannot get there by itself: no such task, PAUSE or ERROR.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from tidbops.config import ClusterConfig

DEFAULT_TIMEOUT = timedelta(hours=1)


class LogCheckpointSensor(BaseSensorOperator):
    """Wait until the log backup checkpoint of ``cluster`` is at or past ``target``; returns where it got.

    :param cluster: the cluster from the fleet config.
    :param target: a TSO (int or digits), ``"now"``/``"latest"`` (the time the task starts), or an ISO time
        with a zone; templated (e.g. ``{{ ti.xcom_pull(...) }}``).
    :param deferrable: wait in the triggerer (default) instead of the worker.
    :param poll_interval: seconds between two ``br log status`` (also the sensor's ``poke_interval``).
    :param timeout: give up (fail) after this long (default 1 hour).
    """

    template_fields: Sequence[str] = ("target",)
    ui_color = "#e6f7e6"

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        target: Any = "now",
        deferrable: bool = True,
        poll_interval: float = 30.0,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poll_interval, timeout=timeout, **kwargs)
        self.cluster = cluster
        self.target = target
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self._target_ts: int | None = None

    def _resolve_target(self) -> int:
        from tidbops.logbackup import target_tso

        if self._target_ts is None:
            self._target_ts = target_tso(self.target, datetime.now(UTC))
        return self._target_ts

    def _progress(self) -> dict[str, Any]:
        from tidbops_airflow.triggers.logbackup import read_progress

        return read_progress(self.cluster.name, self._resolve_target())

    def _finish(self, progress: dict[str, Any]) -> dict[str, Any]:
        if progress.get("state") == "stuck" or progress.get("status") in ("stuck", "error"):
            detail = progress.get("message") or "; ".join(progress.get("errors") or []) or "no detail"
            raise AirflowFailException(f"cluster {self.cluster.name}: the log checkpoint will not get there: {detail}")
        self.log.info("cluster %s: %s", self.cluster.name, progress.get("message"))
        return progress

    def poke(self, context: Context) -> PokeReturnValue:
        progress = self._progress()
        if progress["state"] == "waiting":
            self.log.info("cluster %s: %s", self.cluster.name, progress["message"])
            return PokeReturnValue(False)
        return PokeReturnValue(True, self._finish(progress))

    def execute(self, context: Context) -> Any:
        target = self._resolve_target()
        if not self.deferrable:
            return super().execute(context)
        progress = self._progress()
        if progress["state"] != "waiting":
            return self._finish(progress)
        from tidbops_airflow.triggers.logbackup import LogCheckpointTrigger

        self.log.info("cluster %s: %s; deferring to the triggerer", self.cluster.name, progress["message"])
        self.defer(
            trigger=LogCheckpointTrigger(cluster=self.cluster.name, target_ts=target, poll_interval=self.poll_interval),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event:
            raise AirflowFailException(f"cluster {self.cluster.name}: the trigger ended without an event")
        return self._finish(event)
