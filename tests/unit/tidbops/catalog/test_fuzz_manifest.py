"""Fuzzing manifests (they come from storage, which anybody with write access can edit): a real manifest with
fields swapped for hostile values, and random bytes. Each gives a Manifest the catalog can store, or one
ManifestError naming the manifest; nothing else, and never a row that breaks the catalog."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidbops import tso
from tidbops.catalog.errors import CatalogConflictError, ManifestError
from tidbops.catalog.manifest import MANIFEST_ROW_FIELDS, Manifest, ManifestFile
from tidbops.catalog.records import BackupKind
from tidbops.catalog.store import Catalog

pytestmark = pytest.mark.unit
FUZZ = settings(max_examples=200, deadline=2000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
GOOD = Manifest(
    id="dev-full-20261122t010000z-0badcafe",
    cluster="dev",
    kind=BackupKind.FULL,
    backup_ts=tso.from_datetime(T0),
    backup_time=T0,
    storage_uri="s3://tidbops-backups/dev/full/dev-full-20261122t010000z-0badcafe",
    started_at=T0 - timedelta(minutes=2),
    files=(ManifestFile("backupmeta", 120, "a" * 64), ManifestFile("store1/1_2_default.sst", 4096, None)),
    size_bytes=4216,
    total_kv=1000,
    br_duration_s=12.5,
    br_version="v8.5.1",
    dag_id="tidb_backup_full__dev",
    run_id="scheduled__2026-11-22T01:00:00+00:00",
    finished_at=T0 + timedelta(minutes=1),
).to_dict()

HOSTILE = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(min_size=2000, max_size=3000, alphabet="x"),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-11-22T10:00:00",
                     "2026-02-30T00:00:00Z", "../../etc/passwd", "\x00\x1b[2J", "a" * 64]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(GOOD))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(["backup", "files", "top"]))
        files_ok = isinstance(doc.get("files"), list) and len(doc["files"]) == 2
        if where == "files" and not (files_ok and all(isinstance(f, dict) for f in doc["files"])):
            where = "top"
        if where == "backup" and not isinstance(doc.get("backup"), dict):
            where = "top"
        if where == "backup":
            doc["backup"][draw(st.sampled_from(MANIFEST_ROW_FIELDS))] = draw(HOSTILE)
        elif where == "files":
            key = draw(st.sampled_from(["path", "size", "sha256"]))
            doc["files"][draw(st.integers(0, 1))][key] = draw(HOSTILE)
        else:
            doc[draw(st.sampled_from(["format_version", "created_at", "tool", "files", "backup"]))] = draw(HOSTILE)
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    cat = Catalog.from_url(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/catalog.db")
    cat.migrate()
    return cat


def test_the_unmutated_manifest_reads() -> None:
    assert Manifest.from_json(json.dumps(GOOD)).id == GOOD["backup"]["id"]


@FUZZ
@given(mutated() | st.binary(max_size=300))
def test_a_manifest_is_storable_or_one_manifest_error(catalog: Catalog, data: bytes) -> None:
    try:
        manifest = Manifest.from_json(data, source="s3://b/dev/full/x/tidbops-manifest.json")
    except ManifestError as exc:
        text = str(exc)
        assert text.startswith("s3://b/dev/full/x/tidbops-manifest.json: ") and "\n" not in text
        assert len(text) < 600
        return
    assert Manifest.from_json(manifest.to_json()).same_backup(manifest)  # what we read, we can write back
    try:
        catalog.upsert_from_manifest(manifest, storage_uri=manifest.storage_uri, manifest_uri="s3://b/m.json")
    except CatalogConflictError:  # disagrees with the row an earlier example stored: reported by rebuild
        return
    assert catalog.get(manifest.id) is not None


def test_the_suite_reaches_both_outcomes(tmp_path: Path) -> None:
    """Not a vacuous fuzz: hostile values are refused, and harmless ones (a new tool string) are read."""
    doc = json.loads(json.dumps(GOOD))
    doc["tool"] = "tidbops 9.9"
    assert Manifest.from_json(json.dumps(doc)).tool == "tidbops 9.9"
    doc["backup"]["size_bytes"] = 2**63
    with pytest.raises(ManifestError, match=r"backup\.size_bytes"):
        Manifest.from_json(json.dumps(doc))
