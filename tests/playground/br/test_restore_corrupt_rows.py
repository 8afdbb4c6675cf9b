"""The ``restore_corrupt_rows`` fault: BR says the restore succeeded; some rows are silently not the backup's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tidbops_playground.faults import FaultError, clear_faults, set_fault

from .conftest import Playground

pytestmark = pytest.mark.playground


@pytest.fixture()
def clean(fresh_dst: Playground) -> Iterator[Playground]:
    yield fresh_dst
    clear_faults(fresh_dst.home)


def rows(pg: Playground, table: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in pg.sql(pg.dst, f"SELECT * FROM {table} ORDER BY 1")]


def test_a_silently_corrupted_restore(clean: Playground) -> None:
    pg = clean
    url = pg.local("corrupt")
    assert pg.br("backup", "full", "--pd", pg.src.pd, "-s", url).rc == 0
    assert pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url).rc == 0
    good = rows(pg, "shop.orders")
    pg.reset_dst()

    set_fault(pg.home, "dst", "restore_corrupt_rows", table="shop.orders", rows=2)
    r = pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url)
    assert r.rc == 0 and '["Full Restore success summary"]' in r.stdout  # BR's own checksum passed
    bad = rows(pg, "shop.orders")
    changed = [i for i, (a, b) in enumerate(zip(good, bad, strict=True)) if a != b]
    assert len(bad) == len(good) and len(changed) == 2 and changed[1] == changed[0] + 1
    assert len(good) // 2 - 1 <= changed[0] <= len(good) // 2, "the rows in the middle of the key order"
    assert "[emulator fault restore_corrupt_rows]" in r.log


def test_fault_parameters_are_checked(clean: Playground) -> None:
    for params in ({"table": "orders"}, {"mode": "shuffle"}, {"rows": 0}):
        with pytest.raises(FaultError, match="restore_corrupt_rows"):
            set_fault(clean.home, "dst", "restore_corrupt_rows", **params)
