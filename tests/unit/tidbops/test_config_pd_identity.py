"""The fleet check "each cluster its own PD" compares PD endpoints, not their text (#17): loopback spellings,
case, a trailing dot, a scheme and BR's default port 2379 name one PD."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidbops.config import load_fleet, pd_identity

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
SHIPPED = (REPO / "include/config/clusters.yaml").read_text()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("localhost:2379", "127.0.0.1:2379"),
        ("127.0.0.1:2379", "[::1]:2379"),
        ("LocalHost:2379", "localhost:2379"),
        ("127.0.0.2:2379", "localhost:2379"),
        ("pd-0.Example.com.:2379", "http://pd-0.example.com:2379"),
        ("pd-0:2379", "pd-0"),
        ("[::1]", "localhost:2379"),
    ],
)
def test_spellings_of_one_pd_are_one(a: str, b: str) -> None:
    assert pd_identity(a) == pd_identity(b)


@pytest.mark.parametrize(("a", "b"), [("localhost:2379", "localhost:2380"), ("pd-0:2379", "pd-1:2379")])
def test_other_pds_stay_apart(a: str, b: str) -> None:
    assert pd_identity(a) != pd_identity(b)


@pytest.mark.parametrize("spelling", ["localhost", "LOCALHOST", "127.0.0.9", "127.0.0.1."])
def test_the_fleet_check_sees_a_pd_shared_under_another_spelling(tmp_path: Path, spelling: str) -> None:
    old = 'pd: ["127.0.0.1:23792"]'
    assert old in SHIPPED
    p = tmp_path / "clusters.yaml"
    p.write_text(SHIPPED.replace(old, f'pd: ["{spelling}:23791"]', 1))
    fleet = load_fleet(p)
    lines = [str(i) for i in fleet.issues]
    assert len(lines) == 1 and "is also the PD of cluster 'dev'; each cluster needs its own PD" in lines[0], lines
