"""`tidbops slowlog digest`: an offline pt-query-digest grouped by TiDB's Digest."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops.cli import (
    app,
    slowlog_cmd,  # noqa: F401  (registers the commands)
)
from tidbops.slowlog.aggregate import DigestKey, aggregate_files
from tidbops.slowlog.parser import parse_slow_log_time
from tidbops_playground.slowlog_gen import GenerationResult, generate

pytestmark = pytest.mark.unit
runner = CliRunner()


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    path = tmp_path_factory.mktemp("cli") / "tidb-9" / "tidb-slow.log"
    return path, generate(path, entries=1500, days=2, start=date(2026, 11, 1), seed=21, truncated_tail=True)


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    directory = tmp_path_factory.mktemp("cli-rot") / "tidb-8"
    result = generate(
        directory, entries=900, days=3, seed=22, split_daily=True, gzip_rotated=True, truncated_tail=False
    )
    return directory, result


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["slowlog", "digest", *args])
    return result.exit_code, result.output


def by_digest(path: Path, **options: object) -> list[tuple[str, int, int]]:
    table = aggregate_files([path], **options)
    merged = table.rollup(lambda k: DigestKey("", k.digest, "", "", ""))
    return sorted(((k.digest, s.count, s.query_time_ns) for k, s in merged.items()), key=lambda r: (-r[2], r[0]))


def test_text_report(log: tuple[Path, GenerationResult]) -> None:
    path, result = log
    code, out = invoke(str(path), "--top", "5")
    assert code == 0, out
    expected = by_digest(path)
    total = sum(r[1] for r in expected)
    assert f"# Overall: {total} total, {len(expected)} unique digests" in out
    assert "1 incomplete, 0 malformed" in out
    assert "# Profile" in out
    for rank, (digest, count, _ns) in enumerate(expected[:5], 1):
        assert f"# Query {rank}: digest {digest}" in out
        assert f"# Calls {count}," in out
    assert "# Query 6:" not in out
    assert result.entries == total + sum(t.count for t in result.digests.values() if t.kind == "internal")


def test_json_report(log: tuple[Path, GenerationResult]) -> None:
    path, _ = log
    code, out = invoke(str(path), "--format", "json", "--top", "3", "--include-internal")
    assert code == 0, out
    data = json.loads(out)
    expected = by_digest(path, include_internal=True)
    assert [(d["digest"], d["count"], d["query_time_ns"]) for d in data["digests"]] == expected[:3]
    assert data["overall"]["count"] == sum(r[1] for r in expected)
    assert data["overall"]["digests"] == len(expected)
    assert data["parse"]["incomplete"] == 1 and data["parse"]["skipped_internal"] == 0
    first = data["digests"][0]
    assert first["p95_query_time"] <= first["max_query_time_ns"] / 1e9
    assert first["first_seen"].endswith("Z") and first["plans"] and first["users"]


def test_since_until_window(log: tuple[Path, GenerationResult]) -> None:
    path, _ = log
    code, out = invoke(str(path), "--format", "json", "--since", "2026-11-01T12:00:00Z", "--until", "2026-11-02")
    assert code == 0, out
    data = json.loads(out)
    table = aggregate_files(
        [path], since=parse_slow_log_time("2026-11-01T12:00:00Z"), until=parse_slow_log_time("2026-11-02T00:00:00Z")
    )
    assert data["overall"]["count"] == sum(s.count for _, s in table.rows()) > 0
    assert data["parse"]["skipped_by_time"] == table.skipped_by_time > 0
    assert "2026-11-01T12:00:00" <= data["overall"]["first_seen"] <= data["overall"]["last_seen"] < "2026-11-02"


def test_redact(log: tuple[Path, GenerationResult]) -> None:
    path, _ = log
    code, out = invoke(str(path), "--format", "json", "--redact", "--top", "50")
    assert code == 0
    samples = [d["sample_sql"] for d in json.loads(out)["digests"]]
    assert samples and all("'" not in s and "[arguments:" not in s for s in samples)


def test_directory_with_rotated_gzip_files(rotated: tuple[Path, GenerationResult]) -> None:
    directory, result = rotated
    code, out = invoke(str(directory), "--format", "json", "--include-internal", "--jobs", "2")
    assert code == 0, out
    data = json.loads(out)
    assert len(data["files"]) == 3 and data["files"][-1].endswith("tidb-slow.log")
    assert data["overall"]["count"] == result.entries
    assert data["digests"][0]["instances"] == ["tidb-8"]
    code, out = invoke(str(directory), "--instance", "tidb-a", "--format", "json")
    assert json.loads(out)["digests"][0]["instances"] == ["tidb-a"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/tidb-slow.log"], "no such file or directory"),
        (["{log}", "--since", "last tuesday"], "is not an ISO 8601 date"),
        (["{log}", "--since", "2026-11-02", "--until", "2026-11-01"], "--until must be after --since"),
        (["{log}", "--top", "0"], "Invalid value"),
        (["{log}", "--format", "xml"], "Invalid value"),
        (["{empty}"], "no slow-log files in this directory (tidb-slow.log, tidb_slow_query.log, slowlog"),
    ],
    ids=["missing-file", "bad-since", "until-before-since", "top-zero", "bad-format", "empty-directory"],
)
def test_usage_errors(tmp_path: Path, log: tuple[Path, GenerationResult], args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    filled = [a.format(log=log[0], empty=tmp_path / "empty") for a in args]
    code, out = invoke(*filled)
    assert code == 2
    squeeze = re.compile(r"[\s│╭╮╰╯─]+")  # rich draws the error in a box that wraps long lines
    assert squeeze.sub("", message) in squeeze.sub("", out)


def test_registered_under_the_main_app() -> None:
    result = runner.invoke(app, ["slowlog", "--help"])
    assert result.exit_code == 0 and "digest" in result.output


@pytest.mark.parametrize("name", ["tidb_slow_query.log", "slowlog"], ids=["tiup", "tidb-operator"])
def test_directory_of_a_tiup_or_operator_deployment(
    tmp_path: Path, log: tuple[Path, GenerationResult], name: str
) -> None:
    directory = tmp_path / "tidb-7"
    directory.mkdir()
    (directory / name).write_bytes(log[0].read_bytes())
    code, out = invoke(str(directory), "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert data["files"] == [str(directory / name)] and data["overall"]["count"] == by_digest_total(log[0])


def by_digest_total(path: Path) -> int:
    return sum(r[1] for r in by_digest(path))
