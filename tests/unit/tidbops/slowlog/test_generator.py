"""The slow-log generator's ``v8.5`` profile: what one TiDB v8.5 server writes, read back exactly.

The profile follows ``SlowLogFormat`` (``pkg/sessionctx/variable``): ``Cop_*`` values are Go's ``%v`` of float
seconds, ``Request_unit_*`` are ``FormatFloat(…, 'f', -1, 64)``, and no line of a later version appears.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from tidbops.slowlog.aggregate import DigestKey, aggregate_files
from tidbops.slowlog.parser import ParseStats, iter_entries, iter_raw_entries
from tidbops_playground.slowlog_gen import PROFILES, GenerationResult, generate, go_f, go_float

pytestmark = pytest.mark.unit

LATER_KEYS = ("Tidb_cpu_time", "Tikv_cpu_time", "Storage_from_kv", "Storage_from_mpp", "Mem_arbitration")


@pytest.fixture(scope="module")
def v85(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    path = tmp_path_factory.mktemp("v85") / "tidb-1" / "tidb-slow.log"
    return path, generate(path, entries=4000, days=2, seed=85, truncated_tail=False, profile="v8.5")


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (76_819, "7.6819e-05"),  # below 1e-4: an exponent of two digits at least
        (10_000, "1e-05"),
        (100_000, "0.0001"),
        (117_506_755, "0.117506755"),
        (2_000_000_000, "2"),  # no trailing .0
        (123_456 * 10**9, "123456"),
        (10**15, "1e+06"),  # from 1e6 on: an exponent again
        (0, "0"),
    ],
)
def test_go_float_is_go_percent_v(ns: int, text: str) -> None:
    assert go_float(ns) == text
    assert float(text) == ns / 1e9


@pytest.mark.parametrize(
    ("value", "text"), [(1e-07, "0.0000001"), (611.2005058591019, "611.2005058591019"), (2.0, "2"), (100.0, "100")]
)
def test_go_f_never_writes_an_exponent(value: float, text: str) -> None:
    assert go_f(value) == text


def test_unknown_profiles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="profile is one of"):
        generate(tmp_path / "x.log", entries=10, profile="v9")
    assert PROFILES == ("mixed", "v8.5")


def test_the_lines_of_a_v85_server(v85: tuple[Path, GenerationResult]) -> None:
    path, result = v85
    raws = list(iter_raw_entries(path))
    assert len(raws) == result.entries == 4000
    keys = Counter(key for raw in raws for key in raw.fields)
    for key in ("Plan", "Binary_plan", "Plan_digest", "Num_cop_tasks", "Cop_proc_avg", "Cop_wait_addr",
                "Resource_group", "Request_unit_read", "Request_unit_write", "Time_queued_by_rc"):  # fmt: skip
        assert keys[key] > 0, key
    assert not [key for key in keys if key.startswith((*LATER_KEYS, "Unpacked_bytes_"))]
    assert any(k.startswith("Cop_backoff_") and k.endswith("_p90_time") for k in keys)
    assert all("\n" not in raw.sql for raw in raws)  # TiDB replaces newlines in SQL by spaces
    go_floats = [raw.fields[k] for raw in raws for k in ("Cop_proc_avg", "Cop_wait_avg") if k in raw.fields]
    assert any(re.fullmatch(r"\d(\.\d+)?e-0\d", v) for v in go_floats)  # small waits: Go's exponent form
    assert all(re.fullmatch(r"\d+(\.\d+)?(e-\d\d)?", v) for v in go_floats)
    units = [raw.fields[k] for raw in raws for k in ("Request_unit_read", "Request_unit_write") if k in raw.fields]
    assert all(re.fullmatch(r"\d+(\.\d+)?", v) for v in units)
    for raw in raws:  # the keys items in the order of ExecDetails.String(): Process_keys, then Total_keys
        names = list(raw.fields)
        if "Process_keys" in names:
            assert names.index("Process_keys") + 1 == names.index("Total_keys")


def test_a_v85_log_is_read_by_the_fast_path_and_adds_up(v85: tuple[Path, GenerationResult]) -> None:
    path, result = v85
    stats = ParseStats()
    assert sum(1 for _ in iter_entries(path, stats=stats)) == 4000
    assert stats.fast_path == stats.entries == 4000  # every entry in the canonical shape
    table = aggregate_files([path], include_internal=True)
    merged = table.rollup(lambda k: DigestKey("", k.digest, "", "", ""))
    ours = {k.digest: (s.count, s.query_time_ns, s.max_query_time_ns) for k, s in merged.items()}
    truth = {d: (t.count, t.query_time_ns, t.max_query_time_ns) for d, t in result.digests.items() if t.count}
    assert ours == truth


def test_the_mixed_profile_still_mixes(tmp_path: Path) -> None:
    path = tmp_path / "tidb-slow.log"
    generate(path, entries=3000, start=date(2026, 11, 1), seed=11, truncated_tail=False)
    raws = list(iter_raw_entries(path))
    assert any("\n" in raw.sql for raw in raws)  # the quirks of edited files
    assert any(key.startswith(LATER_KEYS) for raw in raws for key in raw.fields)
