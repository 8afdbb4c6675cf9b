"""The one seam every BR invocation goes through: a ``BRRunner`` runs an argv and gives back a ``BRRun``.

Pure (no Airflow). The argv is always what ``tidbops.br.command`` builds (local paths for
``--crypter.key-file``, ``--ca/--cert/--key`` and ``--log-file``, ``argv[0]`` the worker's ``br``); a runner
that runs BR elsewhere translates it (a pod mounts the key and PEMs from Kubernetes Secrets, gets the S3
credentials from a Secret instead of ``session.env``, runs the image's ``/br``).

Runners (``kind``):

* ``local``: ``tidbops.br.runner.LocalRunner``, a subprocess of the worker in its own process group.
* ``kubernetes``: one pod per BR command (``tidbops_airflow.runners.kubernetes``; the pod spec is built by
  the pure ``tidbops.k8s.pod``).
* ``tidb-operator``: TiDB Operator's ``Backup``/``Restore`` resources (``tidbops_airflow.runners.tidb_operator``).

``tidbops_airflow.runners.runner_for(cluster, hook)`` picks one by ``cluster.br.runner``; the CLI (outside
Airflow) uses ``LocalRunner``. ``tests/unit/test_br_seam.py`` fails when anything else starts a process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tidbops.br.output import BROutcome
    from tidbops.br.runner import BRSession

LineSink = Callable[[str, str], None]  # (stream "stdout"|"stderr", line without newline)
RunnerKind = Literal["local", "kubernetes", "tidb-operator"]
RUNNER_KINDS: tuple[RunnerKind, ...] = ("local", "kubernetes", "tidb-operator")


@dataclass(frozen=True)
class BRRun:
    """What any runner gives back for one BR command.

    ``outcome`` is set by runners that know the result without BR's text (tidb-operator: from the
    resource's ``status``); otherwise the caller parses ``stdout`` + ``stderr_tail`` with
    ``tidbops.br.output.parse_br_output``, the same for every runner. ``where`` names where BR ran, for
    logs and alerts: ``local``, ``pod <ns>/<name>``, ``Backup <ns>/<name>``.
    """

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr_tail: str
    seconds: float
    outcome: BROutcome | None = None
    where: str = "local"


@runtime_checkable
class BRRunner(Protocol):
    """Runs one BR argv for a session and waits for it (``timeout`` seconds, then ``BRTimeoutError`` with
    what was started ended). ``on_line`` gets BR's output as it comes (a pod's log when it is read);
    ``on_start`` gets a handle as soon as BR started (a process, a pod name). ``kill`` ends what is running
    (a task kill): the process group, the pod, the custom resource."""

    kind: str

    def run(
        self,
        argv: Sequence[str],
        session: BRSession,
        *,
        timeout: float,
        on_line: LineSink | None = None,
        on_start: Callable[[object], None] | None = None,
    ) -> BRRun: ...

    def kill(self) -> None: ...
