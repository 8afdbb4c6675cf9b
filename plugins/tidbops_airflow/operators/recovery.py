"""The restore and validate operators both restore DAGs use: the drill's and the on-demand restore's.

The engine is ``tidbops.recovery``; its two front doors, ``tidbops.drill`` and ``tidbops.restore``, make
the plan (``choose_restore_point``'s XCom: a ``DrillPlan``; ``plan_restore``'s, under ``plan``: a
``RestorePlan``). From there a restore is the same:

* ``BRRestoreOperator``: the plan's clusters checked again against the fleet config as it is now
  (``RecoveryPlan.clusters``), its backups held again, the target prepared (a scratch target's
  databases dropped; any other must be empty), each ``br restore`` in order, timed (the RTO's restore
  part). BR reads the source's backups with the source's storage credentials and crypter key; ``on_kill``
  ends BR's process group.
* ``ValidateRestoreOperator``: the restored data against the source as of the restore point (schema; row
  counts and fingerprints per key chunk; only the restored tables of a filtered restore), or against the
  fingerprints recorded after the backup when that history is gone; then, where asked, the cluster's
  expectation suites with their Data Docs. Fails, without retrying (the data would not change), naming
  each table and key range that differs. It reports how long its checks waited for SQL
  (``sql_seconds``): the rest of its time is the platform's.

``RecoveryStep`` is what every step of either DAG shares: the catalog, earlier steps' XCom, and
reporting a failure: its (redacted) error left in XCom ``error`` for the record step; a guardrail's
refusal (``RestoreRefused``) as one line and the run's note; a verdict (a target not marked scratch, a
target not empty, the source's history gone) failing without retries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from tidbops_airflow.notes import NOTE_CONN_ID
from tidbops_airflow.operators.common import init_base_operator

if TYPE_CHECKING:
    from tidbops.catalog.store import Catalog
    from tidbops.config import ClusterConfig
    from tidbops.keys.owner import DataKey
    from tidbops.recovery.fingerprints import SourceFingerprints
    from tidbops.recovery.plan import RecoveryPlan
    from tidbops_airflow.hooks.br import BRHook


def optional_int(value: Any, what: str) -> int | None:
    """A templated number: empty (``""``, ``None``, ``"None"``) is ``None``."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not an integer") from None


def load_plan(value: Mapping[str, Any]) -> RecoveryPlan:
    """The plan in a planning step's XCom: an on-demand restore's arrives under ``plan`` (with the text
    and who asked), a drill's is the XCom itself."""
    if isinstance(value.get("plan"), Mapping):
        from tidbops.restore import RestorePlan

        return RestorePlan.from_dict(value["plan"])
    from tidbops.drill import DrillPlan

    return DrillPlan.from_dict(value)


class RecoveryStep(BaseOperator):
    """What every step of a restore DAG shares (no ``__init__``: each step has one flat one)."""

    catalog_conn_id: str | None
    catalog_sqlite_path: str | None
    plan_task_id: str
    note_conn_id: str = NOTE_CONN_ID

    def _catalog(self) -> AbstractContextManager[Catalog | None]:
        from tidbops_airflow.hooks.catalog import open_catalog_or_none

        return open_catalog_or_none(self.catalog_conn_id, self.catalog_sqlite_path)

    @staticmethod
    def _xcom(context: Context, task_id: str, key: str = "return_value") -> Mapping[str, Any] | None:
        value = context["ti"].xcom_pull(task_ids=task_id, key=key)
        return value if isinstance(value, Mapping) else None

    def _plan(self, context: Context) -> RecoveryPlan:
        value = self._xcom(context, self.plan_task_id)
        if value is None:
            raise ValueError(f"no restore plan in the XCom of {self.plan_task_id!r}")
        return load_plan(value)

    @staticmethod
    def _clusters(plan: RecoveryPlan) -> tuple[ClusterConfig, ClusterConfig]:
        """The plan's source and target, checked again against the fleet config as it is now."""
        from tidbops_airflow.dagbuilder import fleet

        return plan.clusters(fleet().clusters)

    def _hold_again(self, plan: RecoveryPlan, source: ClusterConfig) -> None:
        """The plan's holds again, a full ttl from now (the catalog down: noted; the earlier holds stand)."""
        from tidbops.recovery.holds import hold_again

        with self._catalog() as catalog:
            ttl, notes = hold_again(catalog, source, plan)
        for note in notes:
            self.log.warning("%s", note)
        if ttl is not None:
            self.log.info("%s %s holds %s for %s", plan.kind, plan.plan_id, ", ".join(plan.backups_used), ttl)

    def _set_note(self, context: Context, text: str) -> bool:
        """The run's note (``tidbops_airflow.notes``; best effort)."""
        from tidbops_airflow.notes import set_run_note

        return set_run_note(context, text, conn_id=self.note_conn_id, log=self.log)

    @contextmanager
    def _reporting(self, context: Context) -> Iterator[None]:
        """On failure, leave the (redacted) error in XCom ``error`` for the record step, then fail:

        * a guardrail's refusal (``RestoreRefused``, its guardrail also in XCom ``refused``) is a verdict,
          not a crash: one line in the log and the run's note, no traceback, no retry (``CleanFailure``);
        * a target not marked scratch, a target not empty, the source's history gone: no retry (trying
          again changes nothing) with the message as it is;
        * anything else is raised as it came (the task's retries apply).
        """
        from airflow.sdk.exceptions import AirflowFailException

        from tidbops.recovery.errors import HistoryGoneError, NotScratchError, TargetNotEmptyError
        from tidbops.recovery.keys import OwnerKeyRefused
        from tidbops.restore import RestoreRefused
        from tidbops_airflow.notes import refused_note
        from tidbops_airflow.notifiers.payload import clean_error
        from tidbops_airflow.operators.common import CleanFailure

        try:
            yield
        except RestoreRefused as exc:
            message = clean_error(str(exc))
            context["ti"].xcom_push(key="refused", value=exc.guardrail)
            context["ti"].xcom_push(key="error", value=message)
            line = f"restore refused ({exc.guardrail}): {message}"
            self.log.error("%s", line)
            params = context.get("params") or {}
            note = refused_note(
                exc.guardrail, message, source=params.get("source_cluster"), target=params.get("target_cluster")
            )
            self._set_note(context, note)
            raise CleanFailure(line) from None
        except (NotScratchError, TargetNotEmptyError, HistoryGoneError, OwnerKeyRefused) as exc:
            context["ti"].xcom_push(key="error", value=clean_error(f"{type(exc).__name__}: {exc}"))
            raise AirflowFailException(str(exc)) from None
        except Exception as exc:
            context["ti"].xcom_push(key="error", value=clean_error(f"{type(exc).__name__}: {exc}"))
            raise


class BRRestoreOperator(RecoveryStep):
    """Restore the plan with BR: into its target, from its source's backups, each ``br restore`` in order,
    timed. Skipped for a dry run, and when the plan restores into another cluster than ``target`` (the
    on-demand restore has one such task per possible target, each in that target's BR pool).

    Before BR: the plan's clusters are checked again against the fleet config as it is now (a drill's
    target must still be marked scratch; an on-demand request must still pass its guardrails), its
    backups held again for a full ttl, and the target prepared: a scratch target's databases are dropped
    (what an earlier restore, or a failed try, left: BR restores only into a fresh cluster), any other
    must be empty (it is never wiped). ``on_kill`` ends BR's process group.

    :param plan_task_id: the planning task (``choose_restore_point``, ``plan_restore``), whose XCom has the plan.
    :param target: the cluster this task restores into (templated; empty: whatever the plan says).
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.

    With an outlet ``x-tidb://<target>/restores`` (``tidbops_airflow.assets``), each restore is an event of
    that asset.
    """

    template_fields: Sequence[str] = ("target", "catalog_conn_id")
    ui_color = "#ffe2b3"

    def __init__(
        self,
        *,
        plan_task_id: str,
        target: str | None = None,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            plan_task_id=plan_task_id,
            target=target,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )
        self._br_hook: BRHook | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from concurrent.futures import ThreadPoolExecutor
        from dataclasses import replace

        from airflow.sdk.exceptions import AirflowSkipException

        from tidbops.br import runner
        from tidbops.recovery.plan import plan_argvs
        from tidbops.recovery.run import run_restore
        from tidbops.recovery.scratch import prepare_target
        from tidbops_airflow.hooks.br import BRHook
        from tidbops_airflow.hooks.tidb import TiDBHook

        plan = self._plan(context)
        if plan.dry_run:
            raise AirflowSkipException("dry run: the plan was the whole request; nothing was changed")
        if self.target and plan.target != self.target:
            raise AirflowSkipException(f"the plan restores into {plan.target}, not {self.target}")
        with self._reporting(context):
            source, target = self._clusters(plan)
            self._br_hook = hook = BRHook(cluster=target, storage_source=source)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="br-version") as pool:
                # BR's version check (`br --version`, a process, and the target's version) runs while the
                # holds are taken again and the target prepared; BR itself runs only once it passed
                version = pool.submit(hook.check_version, target.br.path)
                self._hold_again(plan, source)
                log_key = self._owner_log_key(plan, source)  # owner-key PITR (#17): the log key, refused before BR
                data_keys = self._owner_data_keys(plan, source)  # owner-key sources (#17): refused here, before BR
                with TiDBHook(tidb_conn_id=target.tidb_conn_id).session() as conn, conn.cursor() as cursor:
                    cleared = prepare_target(cursor, target)
                version.result()
            if cleared:
                self.log.info("%s: dropped what was left before the restore: %s", target.name, ", ".join(cleared))
            with hook.session(plan.plan_id) as session, ExitStack() as keys:
                # the session resolved the source's storage endpoint (from its connection) into session.cluster,
                # and the target's TLS PEMs (tls.conn_id) into files
                reader = source.model_copy(update={"storage": session.cluster.storage})
                target = target.model_copy(update={"tls": session.cluster.tls})
                key_files = (
                    {b: str(keys.enter_context(runner.secret_file(k.hex))) for b, k in data_keys.items()}
                    if data_keys
                    else None
                )
                if data_keys:
                    session = replace(session, secrets=session.secrets + tuple(k.hex for k in data_keys.values()))
                log_key_file = str(keys.enter_context(runner.secret_file(log_key.hex))) if log_key else None
                if log_key:
                    session = replace(session, secrets=(*session.secrets, log_key.hex))
                argvs = plan_argvs(
                    plan,
                    source=reader,
                    target=target,
                    log_file=session.log_file,
                    crypter_key_file=None if key_files else session.key_file,
                    key_files=key_files,
                    log_key_file=log_key_file,
                )
                run_session = session
                outcome = run_restore(plan, argvs, lambda argv: hook.run(argv, run_session), cleared=cleared)
            del data_keys, log_key
        self.log.info(
            "restored %s into %s in %.1fs (BR %.1fs: %s)",
            ", ".join(plan.backups_used),
            target.name,
            outcome.seconds,
            outcome.br_seconds,
            "; ".join(f"{r['kind']} {r['backup_id']} {r['seconds']}s" for r in outcome.runs),
        )
        if self.outlets:
            self._emit(context, plan, outcome.seconds)
        return outcome.to_dict()

    def _owner_log_key(self, plan: RecoveryPlan, source: ClusterConfig) -> DataKey | None:
        """An owner-key source's PITR (#17): the one log key covering the plan's log range (``--log.crypter``),
        unwrapped with the private key of ``restore.owner_key_conn_id``; ``OwnerKeyRefused`` without it,
        with another key, or when the range crosses a log restart (two log keys)."""
        from airflow.sdk.log import mask_secret

        from tidbops.catalog.logkeys import list_log_keys
        from tidbops.recovery.keys import needs_owner_key, unwrap_plan_log_key

        if not needs_owner_key(source) or plan.mode != "pitr":
            return None
        with self._catalog() as catalog:
            if catalog is None:
                raise RuntimeError("the catalog is unavailable: the wrapped log keys of the source are unknown")
            log_keys = list_log_keys(catalog, source.name)
        what = f"{plan.kind} {plan.plan_id}"
        private = self._owner_private_key(source)
        got = unwrap_plan_log_key(source, plan.steps, plan.restore_ts, log_keys, private, what=what)
        if got is None:
            return None
        key, data = got
        mask_secret(data.hex)
        self.log.info(
            "%s %s: unwrapped log key %s (%s) with the owner's private key (key id %s)",
            plan.kind, plan.plan_id, key.id, key.span(), key.key_id,
        )  # fmt: skip
        return data

    def _owner_private_key(self, source: ClusterConfig) -> str | None:
        from airflow.sdk import BaseHook
        from airflow.sdk.log import mask_secret

        conn_id = source.restore.owner_key_conn_id
        if not conn_id:
            return None
        try:
            private = BaseHook.get_connection(conn_id).password or None
        except Exception:  # AirflowNotFoundException: the connection is not on this worker
            return None
        if private:
            mask_secret(private)
        return private

    def _owner_data_keys(self, plan: RecoveryPlan, source: ClusterConfig) -> dict[str, DataKey]:
        """An owner-key source's data key of each backup the plan restores (#17), unwrapped with the private
        key of ``restore.owner_key_conn_id`` (``OwnerKeyRefused`` without it, or with another key)."""
        from airflow.sdk import BaseHook
        from airflow.sdk.log import mask_secret

        from tidbops.recovery.keys import needs_owner_key, unwrap_step_keys

        if not needs_owner_key(source):
            return {}
        with self._catalog() as catalog:
            if catalog is None:
                raise RuntimeError("the catalog is unavailable: the wrapped data keys of the backups are unknown")
            records = {s.backup_id: catalog.get(s.backup_id) for s in plan.steps}
        private: str | None = None
        conn_id = source.restore.owner_key_conn_id
        if conn_id:
            try:
                private = BaseHook.get_connection(conn_id).password or None
            except Exception:  # AirflowNotFoundException: the connection is not on this worker
                private = None
        if private:
            mask_secret(private)
        keys = unwrap_step_keys(source, plan.steps, records, private, what=f"{plan.kind} {plan.plan_id}")
        for k in keys.values():
            mask_secret(k.hex)
        self.log.info(
            "%s %s: unwrapped the data keys of %s with the owner's private key (key id %s)",
            plan.kind,
            plan.plan_id,
            ", ".join(keys),
            ", ".join(sorted({r.key_id or "" for r in records.values() if r is not None})),
        )
        return keys

    def _emit(self, context: Context, plan: RecoveryPlan, seconds: float) -> None:
        """The event of ``x-tidb://<target>/restores`` Airflow records when this task succeeds."""
        from tidbops_airflow.assets import RESTORES, backups_size, emit

        with self._catalog() as catalog:
            size = backups_size(catalog, plan.backups_used)
        user = getattr(context.get("dag_run"), "triggering_user_name", None)
        emit(
            context,
            self.outlets,
            RESTORES,
            {
                "restore_id": plan.plan_id,
                "source": plan.source,
                "target": plan.target,
                "mode": plan.mode,
                "restore_ts": plan.restore_ts,
                "restore_time": plan.restore_time.isoformat(),
                "size_bytes": size,
                "tables": list(plan.tables) or None,
                "backups_used": list(plan.backups_used),
                "restore_seconds": round(seconds, 3),
                "requested_by": str(user) if user else None,
            },
        )

    def on_kill(self) -> None:
        if self._br_hook is not None:
            self._br_hook.kill()


class ValidateRestoreOperator(RecoveryStep):
    """Compare the restored data with the source as of the restore point: schema, then row counts and
    fingerprints per key chunk, limited to the plan's tables; when the source's history at the point is
    gone, against the fingerprints recorded right after the backup (``drill.source_fingerprints``).
    With ``expectations``, then the source cluster's expectation suites against the restored cluster, their
    Data Docs kept in backup storage (``<storage>/<cluster>/<drills|restores>/<id>/data_docs/``); a cluster
    without suites is judged on the content alone, and the result says so (``expectations.ran`` False).

    Skipped for a dry run, a plan without ``validate_after``, or when none of ``restore_task_ids``
    finished. Fails without retrying (the data would not change), naming each table and key range that
    differs; the result (XCom) is kept first, for the record step.

    :param plan_task_id: the planning task (``choose_restore_point``, ``plan_restore``), whose XCom has the plan.
    :param restore_task_ids: the restore tasks of the DAG; one of them must have finished.
    :param chunk_rows: rows per fingerprinted chunk (templated; empty: 50,000).
    :param max_tables: compare the content of at most this many tables (schema: all).
    :param expectations: run the expectation suites too (drills do; on-demand restores check content only).
    :param expectations_dir: the suites' root (default ``include/expectations`` or ``$TIDBOPS_EXPECTATIONS_DIR``).
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("chunk_rows", "catalog_conn_id")

    def __init__(
        self,
        *,
        plan_task_id: str,
        restore_task_ids: Sequence[str] = (),
        chunk_rows: Any = None,
        max_tables: int | None = None,
        expectations: bool = False,
        expectations_dir: str | None = None,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            plan_task_id=plan_task_id,
            restore_task_ids=list(restore_task_ids),
            chunk_rows=chunk_rows,
            max_tables=max_tables,
            expectations=expectations,
            expectations_dir=expectations_dir,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from tidbops.recovery.validate import check_restore, differs
        from tidbops.validate.fingerprint import DEFAULT_CHUNK_ROWS
        from tidbops_airflow.hooks.tidb import TiDBHook

        plan = self._plan(context)
        if plan.dry_run or not plan.validate_after:
            raise AirflowSkipException("dry run" if plan.dry_run else "validate_after is off")
        if self.restore_task_ids and not any(self._xcom(context, t) is not None for t in self.restore_task_ids):
            raise AirflowSkipException("no restore finished in this run")
        started = time.monotonic()
        with self._reporting(context):
            source, target = self._clusters(plan)
            self._hold_again(plan, source)
            with ExitStack() as stack:
                src, restored = (
                    stack.enter_context(stack.enter_context(TiDBHook(tidb_conn_id=c).session()).cursor())
                    for c in (source.tidb_conn_id, target.tidb_conn_id)
                )
                checked = check_restore(
                    plan,
                    src,
                    restored,
                    chunk_rows=optional_int(self.chunk_rows, "chunk_rows") or DEFAULT_CHUNK_ROWS,
                    max_tables=self.max_tables,
                    load_recorded=lambda: self._recorded(plan, source),
                    on_table=lambda t: self.log.info(
                        "%s %s: %s", "ok  " if t.ok else "FAIL", t.table, t.to_dict()["content"] or t.skipped
                    ),
                    suites=partial(self._expectations, plan, source, target) if self.expectations else None,
                )
            result = {**checked.to_dict(), "seconds": round(time.monotonic() - started, 3)}
            context["ti"].xcom_push(key="return_value", value=result)  # kept when the check fails below
            if checked.failures():
                raise AirflowFailException(differs(plan, checked.failures()))
        self.log.info(
            "validated %s tables, %s rows of %s as of the restore point (%s): no difference; expectations %s/%s; "
            "%.1fs (%.1fs waiting for SQL)",
            result["tables_checked"],
            result["rows_checked"],
            source.name,
            checked.report.source_read,
            result["expectations"]["successful"],
            result["expectations"]["evaluated"],
            result["seconds"],
            result["sql_seconds"],
        )
        return result

    def _recorded(self, plan: RecoveryPlan, source: ClusterConfig) -> SourceFingerprints | None:
        """The source fingerprints recorded right after the plan's last backup, if any."""
        from tidbops.recovery.fingerprints import SourceFingerprints, fingerprints_path
        from tidbops_airflow.hooks.storage import StorageHook

        path = fingerprints_path(source.name, plan.steps[-1].backup_id)
        root = StorageHook(cluster=source).get_storage()
        if not root.exists(path):
            return None
        return SourceFingerprints.from_bytes(root.read_bytes(path), source=f"{root.uri}/{path}")

    def _expectations(
        self, plan: RecoveryPlan, source: ClusterConfig, target: ClusterConfig, tables: list[str]
    ) -> dict[str, Any]:
        from airflow.sdk.log import mask_secret

        from tidbops.recovery.validate import DATA_DOCS_DIR, no_suites_note, run_suites
        from tidbops.storage import Storage
        from tidbops.validate.expectations import load_suites
        from tidbops_airflow.hooks.storage import StorageHook
        from tidbops_airflow.hooks.tidb import TiDBHook

        suites = load_suites(source.name, Path(self.expectations_dir) if self.expectations_dir else None)
        if not suites:
            self.log.warning("%s: judged on the content check alone", no_suites_note(source.name))

        def url() -> str:
            found = TiDBHook(tidb_conn_id=target.tidb_conn_id).sqlalchemy_url.update_query_dict({"charset": "utf8mb4"})
            if found.password:
                mask_secret(str(found.password))
            return found.render_as_string(hide_password=False)

        def docs() -> tuple[Storage, str]:
            where = f"{source.storage.uri}/{plan.directory}/{DATA_DOCS_DIR}"
            return StorageHook(cluster=source).get_storage(where), where

        return run_suites(
            source.name,
            suites,
            url=url,
            restore_time=plan.restore_time,
            tables=tables,
            hide_values=source.br.encryption is not None,
            docs=docs,
        )
