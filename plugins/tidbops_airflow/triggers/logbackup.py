"""LogCheckpointTrigger: wait, in the triggerer, until a cluster's log backup checkpoint passes a TSO.

For restores "to latest" and for drills: a PITR to time T can only run once the log covers T. The trigger
polls ``br log status`` (read-only, PD only: no credentials) every ``poll_interval`` seconds, in a worker
thread so the triggerer's event loop never blocks, and fires once:

* ``{"status": "reached", …}`` when the global checkpoint is at or past the target;
* ``{"status": "stuck", …}`` when it cannot get there by itself (no such task, PAUSE, ERROR);
* ``{"status": "error", …}`` after ``max_errors`` BR failures in a row (PD unreachable, say).

It serialises only plain values (the cluster's name, the target TSO, the interval, the limit): the
cluster's config is read again from the fleet config in the triggerer, as a task would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from tidbops.errors import TiDBOpsError

CLASSPATH = "tidbops_airflow.triggers.logbackup.LogCheckpointTrigger"
DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_MAX_ERRORS = 3


def read_progress(cluster_name: str, target_ts: int) -> dict[str, Any]:
    """One poll: ``br log status`` for the cluster of the fleet config, judged against the target."""
    from tidbops.br import runner
    from tidbops.config import load_fleet_cached
    from tidbops.logbackup import STATUS_TIMEOUT, checkpoint_progress, read_log_status
    from tidbops_airflow.hooks.br import BRHook

    cluster = load_fleet_cached().get(cluster_name)
    hook = BRHook(cluster=cluster)  # through the cluster's BR runner (a pod for br.runner kubernetes)
    with hook.pd_access() as pd_cluster, runner.passing_log_file(cluster.name, "log-status-trigger") as log_file:
        reading = read_log_status(
            pd_cluster,
            lambda argv: hook.run_pd(argv, pd_cluster, timeout=STATUS_TIMEOUT, log_file=log_file),
            log_file=log_file,
        )
    return checkpoint_progress(reading, cluster.log_backup.task_name, target_ts).to_dict()


class LogCheckpointTrigger(BaseTrigger):
    """Fires when the log backup checkpoint of ``cluster`` passes ``target_ts`` (or cannot).

    :param cluster: the cluster's name in the fleet config.
    :param target_ts: the TSO the checkpoint must reach.
    :param poll_interval: seconds between two ``br log status``.
    :param max_errors: BR failures in a row before giving up.
    """

    def __init__(
        self,
        *,
        cluster: str,
        target_ts: int,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_errors: int = DEFAULT_MAX_ERRORS,
    ) -> None:
        super().__init__()
        self.cluster = cluster
        self.target_ts = int(target_ts)
        self.poll_interval = float(poll_interval)
        self.max_errors = int(max_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {
            "cluster": self.cluster,
            "target_ts": self.target_ts,
            "poll_interval": self.poll_interval,
            "max_errors": self.max_errors,
        }

    async def poll(self) -> dict[str, Any]:
        """One reading, off the event loop."""
        return await asyncio.to_thread(read_progress, self.cluster, self.target_ts)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        errors: list[str] = []
        while True:
            try:
                progress = await self.poll()
            except (TiDBOpsError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                self.log.warning("cluster %s: br log status failed (%d in a row): %s", self.cluster, len(errors), exc)
                if len(errors) >= self.max_errors:
                    yield TriggerEvent(
                        {"status": "error", "cluster": self.cluster, "target_ts": self.target_ts, "errors": errors}
                    )
                    return
            else:
                errors.clear()
                if progress["state"] in ("reached", "stuck"):
                    # status: how the wait ended (reached, stuck, error); task_status: the task's state
                    yield TriggerEvent(
                        {
                            **progress,
                            "task_status": progress["status"],
                            "status": progress["state"],
                            "cluster": self.cluster,
                        }
                    )
                    return
                self.log.info("cluster %s: %s", self.cluster, progress["message"])
            await asyncio.sleep(self.poll_interval)
