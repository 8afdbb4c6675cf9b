"""BRHook: run the ``br`` executable for one cluster, with its secrets kept out of argv and logs.

The storage credentials come from the cluster's aws-type connection, resolved by the amazon provider
(static keys, assume-role, profile, web identity), and reach BR as AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; the crypter key comes from the password of
``br.encryption.key_conn_id`` and reaches BR through a 0600 ``--crypter.key-file`` that is removed when
the run ends. Every secret is registered with Airflow's secret masker and redacted from what we log.
The argv itself is built by the pure functions of ``tidbops.br.command``; it is run by the cluster's BR
runner (``BRHook.runner``: ``br.runner`` local, kubernetes or tidb-operator, see ``tidbops.br.seam``), and
every BR call of the plugins goes through it (``run``, ``run_pd``, ``check_version``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from tidbops.br import runner
from tidbops.br.errors import BRError
from tidbops.br.output import BROutcome, parse_br_output
from tidbops.br.runner import BRSession, pd_session
from tidbops.br.seam import BRRun
from tidbops.br.version import (
    VersionCheck,
    VersionParseError,
    check_compatible,
    parse_br_version,
    parse_cluster_version,
    read_cluster_version,
)
from tidbops.config import ClusterConfig, TLSConfig
from tidbops.redact import redact, redact_argv

if TYPE_CHECKING:
    from tidbops.br.seam import BRRunner
    from tidbops.keys.owner import DataKey
    from tidbops.pitr import LogRange

_PROGRESS = re.compile(r"(?P<step>[A-Za-z&][\w& ]+?)\s*<[-.>\s]*>\s*(?P<pct>\d+(?:\.\d+)?)%")
VERSION_TIMEOUT = 60.0  # seconds for `br --version`
_LOG_PROGRESS = re.compile(r'\["progress"\].*?\[step="?(?P<step>[^"\]]+)"?\].*?\[progress=(?P<pct>[\d.]+)%\]')


@dataclass(frozen=True)
class BRResult:
    """One BR run: exit code, the parsed output, the BR log file, and a redacted stderr tail."""

    exit_code: int
    outcome: BROutcome
    log_file: str
    stderr_tail: str
    command_line: str
    seconds: float

    def summary(self) -> dict[str, Any]:
        """JSON-safe figures for XCom and the catalog."""
        return {
            "exit_code": self.exit_code,
            "command": self.outcome.command,
            "backup_ts": self.outcome.backup_ts,
            "size_bytes": self.outcome.size_bytes,
            "total_kv": self.outcome.total_kv,
            "br_seconds": round(self.seconds, 3),
            "total_take_seconds": self.outcome.total_take_seconds,
            "log_file": self.log_file,
        }


class BRHook(BaseHook):
    """Runs BR against one cluster.

    :param cluster: the cluster (from the fleet config) whose PD, storage and BR options are used.
    :param storage_source: the cluster whose storage credentials and crypter key are used (restores read
        another cluster's backups); default ``cluster``.
    :param log_dir: where BR's ``--log-file`` goes (default ``$TIDBOPS_BR_LOG_DIR`` or the temp dir).
    """

    def __init__(
        self, *, cluster: ClusterConfig, storage_source: ClusterConfig | None = None, log_dir: str | None = None
    ) -> None:
        super().__init__()
        self.cluster = cluster
        self.storage_source = storage_source
        self.log_dir = log_dir
        self._runner: BRRunner | None = None
        self._version_check: VersionCheck | None = None
        # set by an operator whose steps before BR are safe to resume after (the backup step): a runner that
        # runs BR elsewhere (a pod) may then defer the task while BR runs; ``resume_event`` is the trigger's
        # event when the task resumes, for the runner to take that BR's result (``KubernetesRunner``)
        self.deferrable = False
        self.resume_event: dict[str, Any] | None = None

    @property
    def runner(self) -> BRRunner:
        """The cluster's BR runner (``br.runner``), one per hook: every BR call goes through it."""
        if self._runner is None:
            from tidbops_airflow.runners import runner_for

            self._runner = runner_for(self.cluster, self)
        return self._runner

    # ------------------------------------------------------------------------------------ secrets
    def _storage_env(self, source: ClusterConfig) -> tuple[dict[str, str], str | None, list[str]]:
        """The storage credentials as the amazon provider resolves ``source``'s connection (see
        ``StorageHook.br_credentials``): BR's environment, the S3 endpoint, the values to redact."""
        from tidbops_airflow.hooks.storage import StorageHook

        return StorageHook(cluster=source).br_credentials()

    def _crypter_key(self, source: ClusterConfig, data_key: DataKey | None = None) -> str | None:
        enc = source.br.encryption
        if enc is None:
            return None
        if enc.owner_key or enc.key_conn_id is None:
            # owner-key (#17): no shared key; the one backup's own data key, given by the caller (fresh for
            # a backup, unwrapped with the owner's private key for a restore), else no key file at all
            if data_key is None:
                return None
            mask_secret(data_key.hex)
            return data_key.hex
        key = (self.get_connection(enc.key_conn_id).password or "").strip()
        if not re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{48}|[0-9a-fA-F]{64}", key):
            raise ValueError(f"connection {enc.key_conn_id!r}: the password must be a hex key of 16, 24 or 32 bytes")
        mask_secret(key)
        return key

    # ---------------------------------------------------------------------------------------- TLS
    def _tls_files(self, stack: contextlib.ExitStack[Any]) -> tuple[TLSConfig | None, list[str]]:
        """The cluster's TLS as PEM paths: its own paths, or ``tls.conn_id``'s extra (``ca``, ``cert``,
        ``key`` PEM texts) written to 0600 files that ``stack`` removes when the session ends."""
        tls = self.cluster.tls
        conn_id = tls.conn_id if tls is not None else None
        if conn_id is None:
            return tls, []
        extra = self.get_connection(conn_id).extra_dejson
        pems = {name: str(extra.get(name) or "").strip() for name in ("ca", "cert", "key")}
        if "BEGIN CERTIFICATE" not in pems["ca"]:
            raise ValueError(f"connection {conn_id!r}: extra 'ca' must hold the CA certificate (PEM text)")
        if bool(pems["cert"]) != bool(pems["key"]):
            raise ValueError(f"connection {conn_id!r}: extra 'cert' and 'key' go together (PEM texts)")
        if pems["key"]:
            mask_secret(pems["key"])
        paths = {n: str(stack.enter_context(runner.secret_file(pem + "\n"))) for n, pem in pems.items() if pem}
        return TLSConfig(**paths), [pems["key"]] if pems["key"] else []

    @contextlib.contextmanager
    def pd_access(self) -> Iterator[ClusterConfig]:
        """The cluster, its TLS PEMs resolved into 0600 files for the block, for BR commands that talk to
        PD only (``br log status``): no storage credentials, no crypter key."""
        with contextlib.ExitStack() as stack:
            tls, _ = self._tls_files(stack)
            yield self.cluster if tls is self.cluster.tls else self.cluster.model_copy(update={"tls": tls})

    @contextlib.contextmanager
    def session(self, name: str = "br", *, data_key: DataKey | None = None) -> Iterator[BRSession]:
        """Credentials resolved, key file and TLS PEMs written (0600) for the duration of the block, then removed."""
        source = self.storage_source or self.cluster
        env, endpoint, secrets = self._storage_env(source)
        cluster = self.cluster
        if endpoint and cluster.storage.endpoint != endpoint:
            # the argv builders read S3 options from the cluster; the endpoint may come from the connection
            cluster = cluster.model_copy(update={"storage": source.storage.model_copy(update={"endpoint": endpoint})})
        key = self._crypter_key(source, data_key)
        log_file = runner.log_file(self.cluster.name, name, self.log_dir)
        with contextlib.ExitStack() as stack:
            tls, tls_secrets = self._tls_files(stack)
            if tls is not cluster.tls:  # the argv builders read --ca/--cert/--key from the cluster
                cluster = cluster.model_copy(update={"tls": tls})
            key_file = str(stack.enter_context(runner.secret_file(key))) if key else None
            yield BRSession(
                cluster=cluster,
                env=env,
                key_file=key_file,
                log_file=log_file,
                secrets=tuple(secrets + ([key] if key else []) + tls_secrets),
                runner=self.runner,
            )

    # ------------------------------------------------------------------------------------ version
    def check_version(self, br_path: str) -> VersionCheck:
        """``br --version`` against the cluster's ``tidb_version()`` by BR's rule (``tidbops.br.version``),
        and ``br.version`` when pinned; ``VersionMismatchError`` in one line. Once per hook (per task run)."""
        if self._version_check is not None:
            return self._version_check
        from tidbops_airflow.hooks.tidb import TiDBHook

        proc = self.runner.run([br_path, "--version"], pd_session(self.cluster), timeout=VERSION_TIMEOUT)
        if proc.exit_code != 0:
            raise VersionParseError(f"`{br_path} --version` exited {proc.exit_code}: {proc.stderr_tail.strip()[-200:]}")
        br = parse_br_version(proc.stdout)
        with TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).cursor() as cursor:
            cluster_version = parse_cluster_version(read_cluster_version(cursor))
        check = check_compatible(
            br, cluster_version, cluster_name=self.cluster.name, br_path=br_path, pinned=self.cluster.br.version
        )
        if check.warning:
            self.log.warning("%s", check.warning)
        self.log.info("BR %s, cluster %r %s: compatible by BR's rule", br, self.cluster.name, cluster_version)
        self._version_check = check
        return check

    # ---------------------------------------------------------------------------------------- run
    def run(
        self,
        argv: list[str],
        session: BRSession,
        *,
        timeout: float | None = None,
        on_start: Callable[[object], None] | None = None,
    ) -> BRResult:
        """Run BR; stream its output into the log; raise ``BRError`` unless it succeeded."""
        if "--pd" in argv:  # it contacts the cluster: BR's own version check would run, ours runs first
            self.check_version(argv[0])
        secrets = session.secrets
        shown = redact_argv(argv, secrets)
        self.log.info("running: %s", shown)
        last_progress: dict[str, str] = {}

        def on_line(stream: str, line: str) -> None:
            text = redact(line, secrets)
            m = _PROGRESS.search(text) or _LOG_PROGRESS.search(text)
            if m:
                step, pct = m["step"].strip(), m["pct"]
                if last_progress.get(step) != pct:
                    last_progress[step] = pct
                    self.log.info("progress: %s %s%%", step, pct)
                return
            self.log.info("br %s: %s", stream, text)

        proc = self.runner.run(
            argv, session, timeout=timeout or session.cluster.br.timeout, on_line=on_line, on_start=on_start
        )
        if proc.where != "local":
            self.log.info("br ran in %s", proc.where)
        stdout = redact(proc.stdout, secrets)
        stderr_tail = redact(proc.stderr_tail, secrets)
        outcome = proc.outcome or parse_br_output(stdout + "\n" + stderr_tail)
        result = BRResult(
            exit_code=proc.exit_code,
            outcome=outcome,
            log_file=session.log_file,
            stderr_tail=stderr_tail,
            command_line=shown,
            seconds=proc.seconds,
        )
        if proc.exit_code != 0 or outcome.success is False:
            raise BRError(exit_code=proc.exit_code, outcome=outcome, stderr_tail=stderr_tail, command=outcome.command)
        return result

    def run_pd(self, argv: list[str], cluster: ClusterConfig, *, timeout: float, log_file: str = "") -> BRRun:
        """A BR command that talks to PD only (``br log status``), through the cluster's runner, with no
        storage credentials nor crypter key; ``cluster`` is what ``pd_access`` yields. Returns what BR gave
        back (callers parse it: a non-zero exit is theirs to judge)."""
        return self.runner.run(argv, pd_session(cluster, log_file), timeout=timeout)

    def kill(self) -> None:
        """End what the runner is running (``on_kill``): the process group, the pod, the resource."""
        if self._runner is not None:
            self._runner.kill()


def read_log_range(hook: BRHook, session_name: str = "log-metadata") -> LogRange | None:
    """The log backup's stored range, from ``br log metadata`` (it reads the log storage only: no pool).

    ``None`` when BR printed no range; raises ``BRError`` when BR fails (callers decide whether an
    unknown range is an error). The one reader for the log check, drills, restores and retention.
    """
    from tidbops.br.command import log_argv
    from tidbops.logbackup import STATUS_TIMEOUT
    from tidbops.pitr import LogRange

    with hook.session(session_name) as session:
        argv = log_argv(session.cluster, "metadata", log_file=session.log_file)
        outcome = hook.run(argv, session, timeout=STATUS_TIMEOUT).outcome
    if outcome.log_min_ts is None or outcome.log_max_ts is None or outcome.log_min_ts <= 0:
        return None
    return LogRange(outcome.log_min_ts, max(outcome.log_max_ts, outcome.log_min_ts), "metadata")
