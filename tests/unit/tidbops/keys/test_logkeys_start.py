"""Owner-key log starts (#17): the log check's repair step gives ``br log start`` a fresh log key, recorded
(catalog + manifest beside the log) before BR runs, as ``--log.crypter.key-file``; confirmed after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers.owner_keys import key_pair as pair
from tests.helpers.owner_keys import owner_key_cluster as cluster
from tidbops import tso
from tidbops.br.errors import BRError
from tidbops.br.output import parse_br_output
from tidbops.catalog.logkeys import list_log_keys
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig
from tidbops.keys import owner
from tidbops.keys.logkeys import LogKey
from tidbops.keys.owner import DataKey
from tidbops.logbackup import START_FAILED, Action, LogKeyIO, repair_log_backup

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Session:
    cluster: ClusterConfig
    log_file: str = "/tmp/br-repair.log"


class FakeIO:
    """The caller's side: manifests kept by name, key files in a temp dir, a start TS per task."""

    def __init__(self, tmp: Path, start_ts: int | None) -> None:
        self.tmp = tmp
        self.manifests: dict[str, bytes] = {}
        self.start_ts = start_ts
        self.files: list[Path] = []

    def write_manifest(self, key: LogKey) -> None:
        self.manifests[key.manifest_name()] = key.to_manifest()

    @contextlib.contextmanager
    def key_file(self, key: DataKey) -> Iterator[str]:
        path = self.tmp / f"k{len(self.files)}"
        path.write_text(key.hex)
        path.chmod(0o600)
        self.files.append(path)
        try:
            yield str(path)
        finally:
            path.unlink()

    def io(self) -> LogKeyIO:
        return LogKeyIO(self.write_manifest, self.key_file, lambda task: self.start_ts)


def test_each_start_gets_a_fresh_key_recorded_before_br_and_its_segment_after(catalog: Catalog, tmp_path: Path) -> None:
    pub, priv = pair()
    fake = FakeIO(tmp_path, start_ts=tso.from_datetime(NOW))
    seen: list[tuple[list[str], str, int]] = []

    def run(argv: list[str]) -> None:
        path = argv[argv.index("--log.crypter.key-file") + 1]
        rows = list_log_keys(catalog, "own")  # recorded before BR runs
        seen.append((argv, Path(path).read_text(), len(rows)))
        assert Path(path).stat().st_mode & 0o777 == 0o600 and len(fake.manifests) == len(rows)

    for _ in range(2):  # the first start, then a restart
        result = repair_log_backup(
            Session(cluster(pub)), [Action("start", "pitr", "no task")], run_br=run, catalog=catalog, now=NOW,
            log_keys=fake.io(),
        )  # fmt: skip
        assert [o.ok for o in result.outcomes] == [True]
        assert "a fresh log key" in result.notices[0].message
        fake.start_ts = (fake.start_ts or 0) + (60_000 << 18)
    (argv, clear1, n1), (_, clear2, n2) = seen
    assert argv[argv.index("--log.crypter.method") + 1] == "aes256-ctr" and (n1, n2) == (1, 2)
    assert clear1 != clear2 and all(clear not in " ".join(a) for a, clear, _ in seen)
    assert not any(p.exists() for p in fake.files)  # removed after BR
    k1, k2 = list_log_keys(catalog, "own")
    assert k1.end_ts == k2.start_ts is not None and k2.end_ts is None
    assert owner.unwrap(k1.wrapped, priv, "aes256-ctr").hex == clear1
    assert LogKey.from_manifest(fake.manifests[k2.manifest_name()], k2.storage_uri).start_ts == k2.start_ts
    assert all(clear1.encode() not in m and clear2.encode() not in m for m in fake.manifests.values())


def test_no_catalog_no_start_and_a_failed_br_leaves_the_key_recorded(catalog: Catalog, tmp_path: Path) -> None:
    pub, _ = pair()
    fake = FakeIO(tmp_path, start_ts=None)
    calls: list[list[str]] = []
    down = repair_log_backup(
        Session(cluster(pub)), [Action("start", "pitr", "no task")], run_br=calls.append, catalog=None, now=NOW,
        log_keys=fake.io(),
    )  # fmt: skip
    assert calls == [] and down.findings[0].key == START_FAILED and "catalog is unavailable" in down.findings[0].message

    def failing(argv: list[str]) -> None:
        err = "Error: It supports single stream log task currently: [BR:Stream:ErrStreamLogTaskExist]exists"
        raise BRError(exit_code=1, outcome=parse_br_output(err), stderr_tail=err)

    fake.start_ts = tso.from_datetime(NOW)  # a task is there (another start's): never taken for this key's
    failed = repair_log_backup(
        Session(cluster(pub)), [Action("start", "pitr", "no task")], run_br=failing, catalog=catalog, now=NOW,
        log_keys=fake.io(),
    )  # fmt: skip
    assert failed.findings[0].key == START_FAILED
    [pending] = list_log_keys(catalog, "own")
    assert pending.start_ts is None and pending.manifest_name() in fake.manifests  # a retry finds it
