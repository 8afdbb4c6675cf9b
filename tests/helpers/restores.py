"""Fakes of the hooks the restore operators build (drills' and on-demand restores'): TiDB clusters that are
their databases, and BR that records what it was asked to run (patch them at ``tidbops_airflow.hooks.tidb.
TiDBHook`` and ``tidbops_airflow.hooks.br.BRHook``: operators import them when they run)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from tidbops.br.output import BROutcome
from tidbops.config import ClusterConfig


@dataclass
class FakeTiDB:
    """``TiDBHook`` of clusters that have nothing but databases (``schemas``, per connection id): what each was
    sent (``statements``); a ``DROP DATABASE`` drops one. Every hook's URL has the password ``s3cret-pw``."""

    schemas: dict[str, list[str]] = field(default_factory=dict)
    statements: dict[str, list[str]] = field(default_factory=dict)

    def hook(self) -> type:
        sql = self

        class Cursor:
            def __init__(self, conn_id: str) -> None:
                self.conn_id = conn_id

            def __enter__(self) -> Cursor:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def execute(self, query: str, args: Any = None) -> None:
                sql.statements.setdefault(self.conn_id, []).append(query)
                if query.startswith("DROP DATABASE"):
                    name = query.split("`")[1]
                    sql.schemas[self.conn_id].remove(name)

            def fetchall(self) -> list[tuple[str]]:
                return [(s,) for s in sorted(["information_schema", "mysql", *sql.schemas.get(self.conn_id, [])])]

        class Hook:
            def __init__(self, *, tidb_conn_id: str) -> None:
                self.conn_id = tidb_conn_id

            @contextlib.contextmanager
            def session(self) -> Iterator[Any]:
                conn_id = self.conn_id
                yield SimpleNamespace(cursor=lambda: Cursor(conn_id))

            @property
            def sqlalchemy_url(self) -> Any:
                from sqlalchemy.engine import URL

                return URL.create("mysql+pymysql", username="root", password="s3cret-pw", host="127.0.0.1", port=4000)

        return Hook


@dataclass
class FakeBR:
    """``BRHook``: each run recorded (the cluster, whose storage it reads, argv); ``fail`` makes them fail as BR
    does when a download fails; ``log_range``: what ``br log metadata`` reports; ``kill`` is remembered."""

    calls: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (cluster, storage source, argv)
    versions: list[tuple[str, str]] = field(default_factory=list)  # (cluster, br path): BR's version checks
    log_range: tuple[int, int] | None = None
    fail: bool = False
    killed: bool = False

    def hook(self) -> type:
        br = self

        class Hook:
            def __init__(self, *, cluster: ClusterConfig, storage_source: ClusterConfig | None = None, **_: Any):
                self.cluster, self.source = cluster, storage_source or cluster

            @contextlib.contextmanager
            def session(self, name: str = "br") -> Iterator[SimpleNamespace]:
                key = "/run/key-file" if self.source.br.encryption else None
                storage = self.source.storage.model_copy(update={"endpoint": "http://s3:9000"})
                cluster = self.cluster.model_copy(update={"storage": storage})
                yield SimpleNamespace(cluster=cluster, env={}, key_file=key, log_file="/tmp/br.log", secrets=())

            def check_version(self, br_path: str) -> None:
                br.versions.append((self.cluster.name, br_path))

            def run(self, argv: list[str], session: Any, **_: Any) -> SimpleNamespace:
                br.calls.append((self.cluster.name, self.source.name, argv))
                if br.fail:
                    from tidbops.br.errors import BRError
                    from tidbops.br.output import parse_br_output

                    text = "Error: x: [BR:KV:ErrKVDownloadFailed]download sst failed"
                    raise BRError(exit_code=1, outcome=parse_br_output(text), stderr_tail=text)
                low, high = br.log_range or (None, None)
                outcome = BROutcome(recognised=True, success=True, log_min_ts=low, log_max_ts=high, total_kv=10)
                return SimpleNamespace(outcome=outcome, seconds=0.25)

            def kill(self) -> None:
                br.killed = True

        return Hook
