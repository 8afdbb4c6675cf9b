"""Operators of the verify pipeline: tier 1 (every file read back) and tier 2 (``br debug checksum``).

Each builds its hooks, calls one function of ``tidbops.verification`` (where the tiers, what is due and
what is recorded are documented), logs one line, and fails naming every backup that failed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context

from tidbops_airflow.operators.common import ClusterCatalogStep

if TYPE_CHECKING:
    from tidbops.storage import Storage
    from tidbops_airflow.hooks.br import BRHook


class _VerifyStep(ClusterCatalogStep):
    """The cluster and where its catalog is (the verdicts are written there: it must answer)."""

    ui_color = "#e3f4e1"

    def _open_storage(self, uri: str) -> Storage:
        """A backup's directory; one outside the cluster's storage root is a storage problem, not a verdict."""
        from tidbops.storage import StorageError
        from tidbops_airflow.hooks.storage import StorageHook

        try:
            return StorageHook(cluster=self.cluster).get_storage(uri)
        except ValueError as exc:
            raise StorageError(str(exc)) from None


class VerifyBackupFilesOperator(_VerifyStep):
    """Tier 1: read every file of every retained backup of the cluster back (sizes, SHA-256 where the
    manifest records one) and record each verdict in the catalog; fail naming each backup that failed.

    :param cluster: the cluster from the fleet config.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.verification import raise_for_failures, verify_files

        catalog = self._catalog()
        try:
            report = verify_files(catalog, self.cluster.name, self._open_storage)
        finally:
            catalog.close()
        self.log.info("%s", report.summary())
        raise_for_failures(report)
        return report.to_dict()


class VerifyBRChecksumOperator(_VerifyStep):
    """Tier 2: ``br debug checksum`` on each retained backup that is due (no tier ≥ 2 pass in 7 days),
    one BR at a time, each verdict recorded; fail naming each backup that failed. ``on_kill`` ends the
    running BR's process group.

    :param cluster: the cluster from the fleet config.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    ui_color = "#c8ebc3"

    _br_hook: BRHook | None = None  # a class attribute: an __init__ level costs DAG-parse time

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from tidbops.redact import redact
        from tidbops.verification import due_for_br_checksum, raise_for_failures, verify_br_checksum
        from tidbops_airflow.hooks.br import BRHook

        enc = self.cluster.br.encryption
        if enc is not None and enc.owner_key:
            # #17: each backup's data key opens only with the owner's private key, which verify workers
            # never hold; BR's own checksum of these backups is what the drills (tier 3) prove
            raise AirflowSkipException(
                f"cluster {self.cluster.name} backs up with owner-held keys: tier 2 (br debug checksum) needs each "
                "backup's data key, which only the owner's private key opens; the drills restore and check them"
            )
        catalog = self._catalog()
        try:
            due, skipped = due_for_br_checksum(catalog, self.cluster.name, datetime.now(UTC))
            self._br_hook = hook = BRHook(cluster=self.cluster)
            with hook.session("checksum") as session:  # the session carries the cluster's BR runner
                report = verify_br_checksum(
                    catalog,
                    session,
                    due,
                    skipped=skipped,
                    root=self._open_storage(self.cluster.storage.uri) if due else None,
                    on_line=lambda stream, line: self.log.info("br %s: %s", stream, redact(line, session.secrets)),
                )
        finally:
            self._br_hook = None
            catalog.close()
        self.log.info("%s", report.summary())
        raise_for_failures(report)
        return report.to_dict()

    def on_kill(self) -> None:
        if self._br_hook is not None:
            self._br_hook.kill()
