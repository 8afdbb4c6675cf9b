"""Operators of the retention pipeline. Logic in ``tidbops.retention``; these read config and connections.

* ``RetentionOperator`` (pool ``br_<cluster>``): read the log's range (``br log metadata``), survey the
  storage (through the amazon provider's ``S3Hook`` client), read the catalog and the holds, plan, write
  every decision to the log and a short Markdown run note, then (not a dry run, not refused) expire and
  delete, and truncate the log (``br log truncate --until <ts> -y``). A refused run fails the task after
  reporting, so the cluster's alert routes hear of it, and deletes nothing.
* ``StorageUsageOperator``: measures the cluster's snapshot and log bytes and records a ``storage.usage``
  sample (``tidbops cost`` reads growth from them). Runs before retention, which is the DAG's leaf.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context

from tidbops.timefmt import iso
from tidbops_airflow.operators.common import ClusterCatalogStep

if TYPE_CHECKING:
    from tidbops.pitr import LogRange
    from tidbops.retention import RetentionReport
    from tidbops_airflow.hooks.br import BRHook


class _RetentionStep(ClusterCatalogStep):
    ui_color = "#f3e8ff"


class RetentionOperator(_RetentionStep):
    """Reconcile, plan, report, expire and truncate the log of one cluster.

    ``retention.dry_run`` (true by default for production clusters) decides whether it deletes; a run's
    ``conf["dry_run"]`` overrides it for that run.

    :param cluster: the cluster from the fleet config.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    # class attributes, not __init__ arguments: every __init__ level costs DAG-parse time on a large fleet
    dry_run: bool | None = None  # a subclass may fix it; else the run's conf["dry_run"], else the config's
    _br: BRHook | None = None

    def _dry_run(self, context: Context) -> bool | None:
        conf = getattr(context.get("dag_run"), "conf", None) or {}
        value = conf.get("dry_run", self.dry_run)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes"):
            return True
        if str(value).lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"conf dry_run must be true or false, not {value!r}")

    def _log_range(self) -> LogRange | None:
        from tidbops.br.errors import BRError
        from tidbops_airflow.hooks.br import BRHook, read_log_range

        if not self.cluster.log_backup.enabled:
            return None
        try:
            return read_log_range(BRHook(cluster=self.cluster))
        except BRError as exc:
            self.log.warning("br log metadata failed (%s): the log's range is unknown", exc)
            return None

    def _truncate(self, report: RetentionReport) -> dict[str, Any]:
        from tidbops.br.command import log_argv
        from tidbops_airflow.hooks.br import BRHook

        assert report.truncate_until is not None
        hook = self._br = BRHook(cluster=self.cluster)
        with hook.session("log-truncate") as session:
            argv = log_argv(session.cluster, "truncate", until=report.truncate_until, log_file=session.log_file)
            result = hook.run(argv, session)
        return {"until": report.truncate_until, "br_seconds": round(result.seconds, 3)}

    def on_kill(self) -> None:
        if self._br is not None:
            self._br.kill()

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.retention import RetentionError, apply, plan_cluster, survey_storage
        from tidbops.storage import StorageError
        from tidbops_airflow.hooks.storage import StorageHook
        from tidbops_airflow.notes import set_run_note

        name = self.cluster.name
        log_range = self._log_range()
        root = StorageHook(cluster=self.cluster).get_storage()
        catalog = self._catalog()
        report: RetentionReport | None = None
        try:
            try:
                stored = survey_storage(root, name)
            except StorageError as exc:
                self.log.error("the storage cannot be listed: %s", exc)
                stored = None
            report = plan_cluster(
                self.cluster,
                catalog.list_backups(name),
                stored,
                datetime.now(UTC),
                held=catalog.held_backups(name),
                log_range=log_range,
                dry_run=self._dry_run(context),
            )
            for line in report.lines():
                self.log.info("%s", line)
            result = apply(report, catalog, root, on_progress=lambda line: self.log.info("%s", line))
            truncated: dict[str, Any] | None = None
            if report.will_delete and report.truncate_until is not None:
                truncated = self._truncate(report)
                catalog.add_event(
                    "log.truncated",
                    f"log backup of {name} truncated until {report.truncate_until}: {report.truncate_reason}",
                    cluster=name,
                    details={"until": report.truncate_until, "reason": report.truncate_reason},
                )
            catalog.add_event(
                "retention.run",
                f"retention of {name}: "
                + (
                    "refused: " + report.refused
                    if report.refused
                    else f"expired {len(result.expired)}, "
                    f"deleted {len(result.deleted)}" + (" (dry run)" if report.dry_run else "")
                ),
                cluster=name,
                details={"report": report.to_dict(), "result": result.to_dict(), "truncated": truncated},
            )
        finally:
            catalog.close()
            if report is not None:  # the plan made, whatever happened next: the note says what it was
                set_run_note(context, report.note_markdown(), log=self.log)
        if report.refused:
            message = f"retention of {name} refused, nothing deleted: {report.refused}"
            if stored is None:  # the storage did not answer: a retry may find it back
                raise RetentionError(message)
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(message)  # a difference or a failed verification: retrying changes nothing
        return {"report": report.to_dict(), "result": result.to_dict(), "truncated": truncated}


class StorageUsageOperator(_RetentionStep):
    """Measure a cluster's snapshot and log bytes and record the sample (``storage.usage``)."""

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.cost import measure_usage
        from tidbops_airflow.hooks.storage import StorageHook

        hook = StorageHook(cluster=self.cluster)
        root = hook.get_storage()
        # the log below the storage root is counted by the one listing; elsewhere it is not measured here
        if self.cluster.log_backup.enabled and not self.cluster.log_storage_uri.startswith(
            self.cluster.storage.uri + "/"
        ):
            self.log.info("the log of %s lies outside its storage root: log bytes not measured", self.cluster.name)
        catalog = self._catalog()
        try:
            sample = measure_usage(catalog, self.cluster, root, None, now=datetime.now(UTC))
        finally:
            catalog.close()
        self.log.info("storage of %s: %s", self.cluster.name, sample)
        return {"cluster": sample.cluster, "time": iso(sample.time), **sample.details()}
