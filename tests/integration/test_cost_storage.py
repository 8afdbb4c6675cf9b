"""`tidbops cost` against real storages: a local directory and an S3 endpoint (moto in server mode), each
holding files of known sizes, measured through the CLI's entry point (``tidbops.cli.run``)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tidbops.catalog.store import Catalog
from tidbops.cli import run
from tidbops.config import load_fleet
from tidbops.cost import USAGE_EVENT, measure_usage
from tidbops.storage import S3Storage, storage_from_uri
from tidbops_playground.s3server import S3Server

pytestmark = pytest.mark.integration

# path below <root>/, size in bytes: two clusters, snapshot files, manifests, a log directory
FILES = {
    "dev/full/dev-full-20261201t020000z-aaaaaaaa/backupmeta": 4_321,
    "dev/full/dev-full-20261201t020000z-aaaaaaaa/1_2_default.sst": 1_048_576,
    "dev/full/dev-full-20261201t020000z-aaaaaaaa/tidbops-manifest.json": 987,
    "dev/incr/dev-incr-20261202t020000z-bbbbbbbb/3_4_write.sst": 65_536,
    "dev/log/v1/backupmeta/0001.meta": 777,
    "dev/log/v1/20261202/09/1.log": 200_000,
    "uat/full/uat-full-20261201t020000z-cccccccc/1.sst": 5_555,
}
DEV_SNAPSHOT = 4_321 + 1_048_576 + 987 + 65_536
DEV_LOG = 777 + 200_000


def fleet_file(tmp_path: Path, uri: str, endpoint: str | None = None) -> Path:
    extra = f", endpoint: {endpoint!r}" if endpoint else ""
    path = tmp_path / "fleet.yaml"
    path.write_text(
        f"""
version: 1
defaults:
  storage: {{uri: {uri!r}, storage_class: STANDARD_IA{extra}}}
clusters:
  - {{name: dev, env: dev, pd: ["127.0.0.1:1"], tidb_conn_id: tidb_dev}}
  - {{name: uat, env: uat, pd: ["127.0.0.1:2"], tidb_conn_id: tidb_uat}}
"""
    )
    return path


def cost_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = run(["cost", "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc: dict[str, object] = json.loads(out)
    return doc


@pytest.fixture
def catalog_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/catalog.db"
    cat = Catalog.from_url(url)
    cat.migrate()
    cat.close()
    return url


def test_a_local_directory(tmp_path: Path, catalog_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "backups"
    for rel, size in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(secrets.token_bytes(size))
    config = fleet_file(tmp_path, f"local://{root}")
    doc = cost_json(capsys, "--config", str(config), "--catalog", catalog_url)
    dev, uat = doc["clusters"]  # type: ignore[misc]
    assert (dev["source"], dev["snapshot_bytes"], dev["log_bytes"]) == ("measured", DEV_SNAPSHOT, DEV_LOG)
    assert (uat["snapshot_bytes"], uat["log_bytes"]) == (5_555, 0)
    assert dev["storage_class"] == "STANDARD_IA" and dev["price_per_gb_month"] == 0.0125
    assert dev["monthly_cost"] == pytest.approx((DEV_SNAPSHOT + DEV_LOG) / 1e9 * 0.0125, abs=1e-4)
    assert doc["total_bytes"] == DEV_SNAPSHOT + DEV_LOG + 5_555
    cat = Catalog.from_url(catalog_url)
    try:
        assert len(cat.list_events(kind=USAGE_EVENT)) == 2  # one sample per cluster, recorded
    finally:
        cat.close()


def test_an_s3_bucket(
    s3_server: S3Server,
    tmp_path: Path,
    catalog_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.delenv("TIDBOPS_S3_ENDPOINT", raising=False)
    bucket = f"tidbops-{secrets.token_hex(4)}"
    uri = f"s3://{bucket}/fleet"
    root = storage_from_uri(uri, endpoint=s3_server.endpoint)
    assert isinstance(root, S3Storage)
    root._client.create_bucket(Bucket=bucket)
    for rel, size in FILES.items():
        root.write_bytes(rel, secrets.token_bytes(size))
    config = fleet_file(tmp_path, uri, endpoint=s3_server.endpoint)
    doc = cost_json(capsys, "--cluster", "dev", "--config", str(config), "--catalog", catalog_url)
    [dev] = doc["clusters"]  # type: ignore[misc]
    assert (dev["source"], dev["snapshot_bytes"], dev["log_bytes"]) == ("measured", DEV_SNAPSHOT, DEV_LOG)
    # the lead's nightly call: the same figures through measure_usage with storages built by the caller
    c = load_fleet(config).get("dev")
    cat = Catalog.from_url(catalog_url)
    try:
        sample = measure_usage(cat, c, root, None, now=cat.list_events(kind=USAGE_EVENT)[-1].time)
        assert (sample.snapshot_bytes, sample.log_bytes) == (DEV_SNAPSHOT, DEV_LOG)
    finally:
        cat.close()
    s3_server.stop()  # the endpoint is gone: the last sample stands in, and the report says so
    try:
        code = run(["cost", "--cluster", "dev", "--config", str(config), "--catalog", catalog_url])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "the last recorded sample" in out and "note: storage not measured (" in out
    finally:
        s3_server.start()
