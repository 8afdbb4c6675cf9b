"""Our per-digest counts and total query times against `pt-query-digest --group-by Digest` on the same log.

pt-query-digest (Debian's percona-toolkit) reads TiDB slow logs as generic attributes (reference §5.2).
Caveats that matter here: pt groups by its own fingerprint unless told ``--group-by Digest``; it keeps
``Query_time`` to 6 decimals in ``--output json``; it counts TiDB's internal SQL like any other, so our
side includes internal entries; and it would count a cut-off last entry, so the log has none.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date

import pytest

from tidbops.slowlog.aggregate import DigestKey, aggregate_files
from tidbops_playground.slowlog_gen import generate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("pt-query-digest") is None,
        reason="pt-query-digest is not installed (Debian: apt-get install percona-toolkit)",
    ),
]


@pytest.fixture(scope="module")
def compared(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, tuple[int, float]], dict[str, tuple[int, float]]]:
    path = tmp_path_factory.mktemp("pt") / "tidb-1" / "tidb-slow.log"
    result = generate(path, entries=5000, days=2, start=date(2026, 11, 1), seed=2026, truncated_tail=False)
    assert result.entries == 5000
    pt = subprocess.run(
        ["pt-query-digest", "--group-by", "Digest", "--output", "json", "--limit", "100%:100000", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    classes = json.loads(pt.stdout)["classes"]
    theirs = {c["fingerprint"]: (int(c["query_count"]), float(c["metrics"]["Query_time"]["sum"])) for c in classes}
    table = aggregate_files([path], include_internal=True)
    merged = table.rollup(lambda k: DigestKey("", k.digest, "", "", ""))
    ours = {k.digest: (s.count, s.total_query_time) for k, s in merged.items()}
    return ours, theirs


def test_same_digests(compared: tuple[dict[str, tuple[int, float]], dict[str, tuple[int, float]]]) -> None:
    ours, theirs = compared
    assert set(ours) == set(theirs)
    assert sum(c for c, _ in ours.values()) == sum(c for c, _ in theirs.values()) == 5000


def test_counts_and_total_times_per_digest(
    compared: tuple[dict[str, tuple[int, float]], dict[str, tuple[int, float]]],
) -> None:
    ours, theirs = compared
    for digest, (count, total) in ours.items():
        their_count, their_total = theirs[digest]
        assert count == pytest.approx(their_count, rel=1e-3), digest
        assert total == pytest.approx(their_total, rel=1e-3), digest
