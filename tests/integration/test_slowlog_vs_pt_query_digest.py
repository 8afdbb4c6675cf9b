"""Our per-digest counts and total query times against `pt-query-digest --group-by Digest` on the same log.

pt-query-digest (Debian's percona-toolkit) reads TiDB slow logs as generic attributes (reference §5.2).
Caveats that matter here: pt groups by its own fingerprint unless told ``--group-by Digest``; it keeps
``Query_time`` to 6 decimals in ``--output json``; it counts TiDB's internal SQL like any other, so our
side includes internal entries; and it would count a cut-off last entry, so the logs have none.

Two logs: the generator's ``mixed`` profile (versions v7.5 to v8.x and later, with the quirks of edited
files) and its ``v8.5`` profile (what one v8.5 server writes: ``Binary_plan``, ``Cop_*`` lines with Go's
float format, ``Resource_group``, ``Request_unit_*``, ``Time_queued_by_rc``), the latter read through the
``tidbops slowlog digest --json`` command as a user runs it.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from contextlib import redirect_stdout
from datetime import date
from pathlib import Path

import pytest

from tidbops.cli import run
from tidbops.slowlog.aggregate import DigestKey, aggregate_files
from tidbops_playground.slowlog_gen import GenerationResult, generate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("pt-query-digest") is None,
        reason="pt-query-digest is not installed (Debian: apt-get install percona-toolkit)",
    ),
]
PerDigest = dict[str, tuple[int, float]]
ROUNDING = 1e-6  # pt prints sums with 6 decimals; ours are exact nanoseconds


def pt_query_digest(path: Path) -> tuple[PerDigest, dict[str, object]]:
    """pt's (count, total query time) per Digest, and its first class (to see which attributes it read)."""
    pt = subprocess.run(
        ["pt-query-digest", "--group-by", "Digest", "--output", "json", "--limit", "100%:100000", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    classes = json.loads(pt.stdout)["classes"]
    theirs = {c["fingerprint"]: (int(c["query_count"]), float(c["metrics"]["Query_time"]["sum"])) for c in classes}
    return theirs, classes[0]


def assert_same_per_digest(ours: PerDigest, theirs: PerDigest, entries: int) -> None:
    assert set(ours) == set(theirs)
    assert sum(c for c, _ in ours.values()) == sum(c for c, _ in theirs.values()) == entries
    for digest, (count, total) in ours.items():
        their_count, their_total = theirs[digest]
        assert count == their_count, digest
        assert total == pytest.approx(their_total, abs=ROUNDING), digest


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[PerDigest, PerDigest]:
    path = tmp_path_factory.mktemp("pt") / "tidb-1" / "tidb-slow.log"
    result = generate(path, entries=5000, days=2, start=date(2026, 11, 1), seed=2026, truncated_tail=False)
    assert result.entries == 5000
    theirs, _ = pt_query_digest(path)
    table = aggregate_files([path], include_internal=True)
    merged = table.rollup(lambda k: DigestKey("", k.digest, "", "", ""))
    ours = {k.digest: (s.count, s.total_query_time) for k, s in merged.items()}
    return ours, theirs


def test_same_digests(mixed: tuple[PerDigest, PerDigest]) -> None:
    ours, theirs = mixed
    assert set(ours) == set(theirs)
    assert sum(c for c, _ in ours.values()) == sum(c for c, _ in theirs.values()) == 5000


def test_counts_and_total_times_per_digest(mixed: tuple[PerDigest, PerDigest]) -> None:
    assert_same_per_digest(*mixed, entries=5000)


@pytest.fixture(scope="module")
def v85(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    path = tmp_path_factory.mktemp("pt85") / "tidb-1" / "tidb-slow.log"
    return path, generate(path, entries=400, days=1, seed=19, truncated_tail=False, profile="v8.5")


def test_v85_entries_through_the_command_agree_with_pt_query_digest(v85: tuple[Path, GenerationResult]) -> None:
    path, result = v85
    theirs, first = pt_query_digest(path)
    attributes = set(first["metrics"])  # type: ignore[call-overload]
    assert {"Binary_plan", "Plan", "Num_cop_tasks", "Cop_proc_avg", "Cop_wait_avg", "Resource_group"} <= attributes
    assert any(a.startswith("Request_unit_") for a in attributes)
    out = io.StringIO()
    with redirect_stdout(out):
        code = run(["slowlog", "digest", str(path), "--json", "--include-internal", "--top", "100000"])
    assert code == 0
    report = json.loads(out.getvalue())
    assert report["parse"]["entries"] == report["overall"]["count"] == result.entries == 400
    ours = {d["digest"]: (d["count"], d["query_time_ns"] / 1e9) for d in report["digests"]}
    assert_same_per_digest(ours, theirs, entries=400)
