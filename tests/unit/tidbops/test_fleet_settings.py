"""The fleet config's ``fleet:`` section (#18): ``br_concurrency``, the fleet-wide BR cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidbops.config import load_fleet

pytestmark = pytest.mark.unit

CLUSTER = """
clusters:
  - name: a
    env: dev
    pd: ["127.0.0.1:2379"]
    tidb_conn_id: tidb_a
    storage: {uri: "s3://bucket"}
"""


@pytest.mark.parametrize(
    ("section", "cap", "issue"),
    [
        pytest.param("", None, None, id="absent-no-cap"),
        pytest.param("fleet:\n  br_concurrency: 4\n", 4, None, id="cap-4"),
        pytest.param("fleet:\n  br_concurrency: 0\n", None, "fleet.br_concurrency", id="zero-refused"),
        pytest.param("fleet:\n  br_concurency: 4\n", None, "fleet.br_concurency", id="typo-refused"),
    ],
)
def test_br_concurrency(tmp_path: Path, section: str, cap: int | None, issue: str | None) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_text("version: 1\n" + section + CLUSTER)
    fleet = load_fleet(path)
    assert fleet.settings.br_concurrency == cap
    assert [i.field for i in fleet.issues] == ([issue] if issue else [])
    assert list(fleet.clusters) == ["a"]  # a bad fleet section never costs a cluster
