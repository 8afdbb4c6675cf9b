"""The source fingerprints recorded after a backup: their file, read back exactly, and never trusted."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.fingerprints import RecordedTable, SourceFingerprints, fingerprints_path
from tidbops.validate.fingerprint import ALGORITHM, Chunk, ChunkSum
from tidbops.validate.schema import Column, Index, TableDef

pytestmark = pytest.mark.unit

TAKEN = datetime(2026, 11, 22, 1, 0, 0, 123456, tzinfo=UTC)


def recorded() -> SourceFingerprints:
    table = TableDef(
        "shop",
        "t",
        (Column("k", 1, "varbinary(8)", False), Column("d", 2, "decimal(5,2)", False)),
        (Index("PRIMARY", True, ("k", "d")),),
    )
    bounds = [
        (None, (b"\x00\xff", Decimal("1.50"))),
        ((b"\x00\xff", Decimal("1.50")), (datetime(2026, 1, 2, 3, 4, 5, 6), date(2026, 1, 2))),
        ((7, 2.5, "x", timedelta(seconds=90), None), None),
    ]
    chunks = tuple((Chunk(lo, hi), ChunkSum(i, i * 7)) for i, (lo, hi) in enumerate(bounds))
    tables = (RecordedTable(table, chunks), RecordedTable(replace(table, name="u"), None))
    return SourceFingerprints("uat", "uat-full-1", 42, TAKEN, 100, "history", tables, 1.5, ("budget reached",))


def test_recorded_fingerprints_round_trip_with_typed_key_bounds_and_their_time() -> None:
    again = SourceFingerprints.from_bytes(recorded().to_bytes())
    assert again == recorded() and again.taken_at == TAKEN
    assert again.rows == 3 and again.fingerprinted == 1
    assert again.summary() == {
        "cluster": "uat", "backup_id": "uat-full-1", "backup_ts": 42, "tables": 2, "fingerprinted": 1, "rows": 3,
        "chunks": 3, "seconds": 1.5, "notes": ["budget reached"],
    }  # fmt: skip
    assert fingerprints_path("uat", "uat-full-1") == "uat/drills/fingerprints/uat-full-1.json"
    assert again.algorithm == ALGORITHM == 2 and b'"algorithm": 2' in recorded().to_bytes()
    with pytest.raises(RecoveryError, match="version 3; this code reads 1 and 2"):
        SourceFingerprints.from_bytes(recorded().to_bytes().replace(b'"version": 2', b'"version": 3'))
    with pytest.raises(RecoveryError, match="fingerprint algorithm 9; this code knows 1, 2"):
        SourceFingerprints.from_bytes(recorded().to_bytes().replace(b'"algorithm": 2', b'"algorithm": 9'))


def test_fingerprints_recorded_before_the_algorithm_was_named_are_algorithm_1s() -> None:
    """A file of format version 1 (written before fingerprints said their algorithm) was made by algorithm 1:
    it reads back as such, so the drill fingerprints the restore with algorithm 1 (no false mismatch)."""
    doc = json.loads(recorded().to_bytes())
    doc["version"] = 1
    del doc["algorithm"]
    old = SourceFingerprints.from_bytes(json.dumps(doc).encode())
    assert old.algorithm == 1 and old == replace(recorded(), algorithm=1)
    assert b'"version": 2' in old.to_bytes() and b'"algorithm": 1' in old.to_bytes()  # kept when written again
    assert SourceFingerprints.from_bytes(old.to_bytes()) == old
    doc["version"] = 2  # version 2 without its algorithm: not ours
    with pytest.raises(RecoveryError, match="not source fingerprints tidbops wrote"):
        SourceFingerprints.from_bytes(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "data",
    [b"{not json", b"[]", b'{"version": 1}', b'{"version": 1, "tables": [{"table": 5}]}', b"[" * 50_000,
     b'{"version": 1, "cluster": "dev", "backup_id": "b", "backup_ts": "x", "tables": []}'],
)  # fmt: skip
def test_recorded_fingerprints_from_storage_that_are_not_ours_fail_with_one_line(data: bytes) -> None:
    with pytest.raises(RecoveryError) as info:
        SourceFingerprints.from_bytes(data, source="s3://b/dev/drills/fingerprints/x.json")
    text = str(info.value)
    assert text.startswith("s3://b/dev/drills/fingerprints/x.json: not source fingerprints tidbops wrote (")
    assert "\n" not in text and len(text) < 400
