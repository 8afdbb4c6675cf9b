"""Shared slow-log fixtures: the reference's example entries (verbatim) and generated logs."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from tidbops.slowlog import aggregate, parser
from tidbops_playground.slowlog_gen import GenerationResult, generate

# /work/shared/reference/tidb-slow-query.md §1.4, verbatim.
REFERENCE_SELECT = """\
# Time: 2024-05-20T02:00:01.123456789+08:00
# Txn_start_ts: 449863275392958465
# User@Host: app[app] @ 10.0.1.15 [10.0.1.15]
# Conn_ID: 2199023255557
# Query_time: 1.527627037
# Parse_time: 0.000054933
# Compile_time: 0.000429729
# Rewrite_time: 0.000100003
# Optimize_time: 0.00020001
# Wait_TS: 0.00001078
# Cop_time: 1.40123 Process_time: 2.07 Wait_time: 0.003 Request_count: 12 Process_keys: 1310720 Total_keys: 1310733 Rocksdb_key_skipped_count: 1310733 Rocksdb_block_cache_hit_count: 4312
# DB: shop
# Index_names: [orders:idx_created_at]
# Is_internal: false
# Digest: 50a2e32d2abbd6c1764b1b7f2058d428ef2712b029282b776beb9506a365c0f1
# Stats: orders:449863100000000000[12000000;30000]
# Num_cop_tasks: 12
# Cop_proc_avg: 0.1725 Cop_proc_p90: 0.31 Cop_proc_max: 0.44 Cop_proc_addr: 10.0.2.21:20160
# Cop_wait_avg: 0.00025 Cop_wait_p90: 0.001 Cop_wait_max: 0.002 Cop_wait_addr: 10.0.2.22:20160
# Mem_max: 525211
# Prepared: false
# Plan_from_cache: false
# Plan_from_binding: false
# Has_more_results: false
# KV_total: 1.45
# PD_total: 0.0003
# Backoff_total: 0
# Write_sql_response_total: 0.0001
# Result_rows: 250
# Succ: true
# IsExplicitTxn: false
# IsSyncStatsFailed: false
# Plan: tidb_decode_plan('ZJAwCTMyXzcJMAkyMAlkYXRh...')
# Plan_digest: 6afbbd21f60ca6c6fdf3d3cd94f7c7a49dd93c00fcf8774646da492e50e204ee
# Binary_plan: tidb_decode_binary_plan('5YsQGVhb8wy49/Km...')
# Resource_group: default
# Request_unit_read: 3108.21
use shop;
SELECT id, status FROM orders WHERE created_at > '2024-05-19 00:00:00' ORDER BY created_at LIMIT 250;
"""

REFERENCE_COMMIT = """\
# Time: 2024-05-20T02:00:02.5+08:00
# Txn_start_ts: 449863275786960897
# User@Host: app[app] @ 10.0.1.16 [10.0.1.16]
# Conn_ID: 2199023255601
# Query_time: 0.812
# Parse_time: 0
# Compile_time: 0.000311
# Rewrite_time: 0.000012
# Optimize_time: 0.000201
# Wait_TS: 0.000009
# Prewrite_time: 0.6 Commit_time: 0.1 Get_commit_ts_time: 0.0002 Write_keys: 2 Write_size: 120 Prewrite_region: 1
# DB: shop
# Is_internal: false
# Digest: 0611cc2fe792f8c146cc97d39b31d9562014cf15f8d41f23a4938ca341f54182
# Prepared: false
# Plan_from_cache: false
# Plan_from_binding: false
# Has_more_results: false
# KV_total: 0.7
# PD_total: 0.0002
# Backoff_total: 0
# Write_sql_response_total: 0
# Result_rows: 0
# Succ: true
# IsExplicitTxn: true
# IsSyncStatsFailed: false
# Resource_group: rg_oltp
# Request_unit_write: 12.5
# Prev_stmt: UPDATE orders SET status=? WHERE id=? [arguments: (3, 1001)];
COMMIT;
"""

# The TiDB v3.0 format (pingcap/docs-cn sql/slow-query.md): old time format, `# User:`, Total_keys first.
V3_SELECT = """\
# Time: 2019-03-18-12:10:19.513961 +0800
# Txn_start_ts: 407078752230047745
# User: root@127.0.0.1
# Conn_ID: 1
# Query_time: 16.479155653
# Process_time: 5.634 Wait_time: 0.002 Request_count: 2 Total_keys: 20002 Process_keys: 20000
# DB: test
# Index_ids: [1]
# Is_internal: false
# Digest: 3635413fe0c8e1aa8307f4f018fe1a9325ea0b97452500106d3f6783fcb65e33
select * from t_slim, t_wide where t_slim.c0=t_wide.c0;
"""

DIGEST_SELECT = "50a2e32d2abbd6c1764b1b7f2058d428ef2712b029282b776beb9506a365c0f1"
DIGEST_COMMIT = "0611cc2fe792f8c146cc97d39b31d9562014cf15f8d41f23a4938ca341f54182"
PLAN_SELECT = "6afbbd21f60ca6c6fdf3d3cd94f7c7a49dd93c00fcf8774646da492e50e204ee"


@pytest.fixture
def reference_select() -> str:
    return REFERENCE_SELECT


@pytest.fixture
def reference_commit() -> str:
    return REFERENCE_COMMIT


@pytest.fixture
def v3_select() -> str:
    return V3_SELECT


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    """A 3,000-entry, 3-day log in ``…/tidb-1/tidb-slow.log`` with a regression from day 1, no cut tail."""
    out = tmp_path_factory.mktemp("gen") / "tidb-1" / "tidb-slow.log"
    result = generate(out, entries=3000, days=3, start=date(2026, 11, 1), seed=11, regress_day=1, truncated_tail=False)
    return out, result


@pytest.fixture(scope="session")
def generated_rotated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    """The same kind of log as rotated files (one per day, older ones gzipped) plus a cut tail."""
    out = tmp_path_factory.mktemp("rot") / "tidb-2"
    result = generate(
        out,
        entries=2400,
        days=3,
        start=date(2026, 11, 1),
        seed=12,
        split_daily=True,
        gzip_rotated=True,
        truncated_tail=True,
        utc_offset="+08:00",
    )
    return out, result


def _broken_gzip(kind: str, data: bytes) -> bytes:
    """``data`` gzipped, then broken the way a copy, a disk or a person breaks it."""
    packed = gzip.compress(data)
    if kind == "truncated":
        return packed[: len(packed) * 3 // 4]
    if kind == "header-only":
        return packed[:10]
    if kind == "flipped":
        return packed[:200] + bytes(b ^ 0xFF for b in packed[200:230]) + packed[230:]
    if kind == "bad-crc":
        return packed[:-8] + bytes(b ^ 1 for b in packed[-8:-4]) + packed[-4:]
    if kind == "not-gzip":
        return data
    raise ValueError(kind)


@pytest.fixture
def broken_gzip() -> Callable[[str, bytes], bytes]:
    """``broken_gzip(kind, data)``: ``data`` gzipped and then truncated, cut after the header, with flipped
    bytes, with a bad CRC, or not gzipped at all (``kind``)."""
    return _broken_gzip


@pytest.fixture(params=["c", "regex"])
def scanner(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test with each row scanner: the C extension and the expression it stands for."""
    kind = str(request.param)
    if kind == "c" and parser._scan is None:
        pytest.skip("the C scanner tidbops.slowlog._scan is not built (pip install -e .)")
    previous = parser.set_scanner(kind)
    try:
        yield kind
    finally:
        parser.set_scanner(previous)


@pytest.fixture(params=["c", "c-rows", "regex"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test with each way the aggregates read files: the C group fold (the default with the C
    extension), the C row scanner with the row folds, and the expression they stand for."""
    kind = str(request.param)
    if kind != "regex" and parser._scan is None:
        pytest.skip("the C scanner tidbops.slowlog._scan is not built (pip install -e .)")
    monkeypatch.setattr(aggregate, "GROUP_FOLD", kind == "c")
    previous = parser.set_scanner(kind.removesuffix("-rows"))
    try:
        yield kind
    finally:
        parser.set_scanner(previous)
