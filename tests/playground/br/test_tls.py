"""The emulator meets a TLS cluster as BR does: refused without --ca, with a foreign CA, or --ca on a plain one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidbops_playground import tlsgen
from tidbops_playground.br.cli import main
from tidbops_playground.registry import ClusterEntry, Registry, save_registry

pytestmark = pytest.mark.playground

PD_TLS, PD_PLAIN = "127.0.0.1:23796", "127.0.0.1:23791"


def entry(name: str, pd: str, tls_ca: str = "") -> ClusterEntry:
    # sql_port 1: nothing answers there, so a call that got past the TLS check fails on SQL (PD timeout)
    return ClusterEntry(name, "source", pd, "127.0.0.1", 1, "root", "x", 1, "v8.5.1", tls_ca=tls_ca)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TIDBOPS_PLAYGROUND_HOME", str(tmp_path))
    ca = tlsgen.make_ca(tmp_path / "tls").ca
    clusters = {"secure": entry("secure", PD_TLS, str(ca)), "dev": entry("dev", PD_PLAIN)}
    save_registry(Registry(clusters=clusters), tmp_path)
    return tmp_path


def br_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main([*argv, "--log-file", ""]) == 1
    return capsys.readouterr().err


def test_a_tls_cluster_without_ca_gets_brs_plain_http_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = br_error(capsys, "backup", "full", "--pd", PD_TLS, "--storage", f"local://{home}/b")
    assert (
        f"Error: pd address ({PD_TLS}) not available, error is [400] Client sent an HTTP request to an HTTPS server. "
        f"http://{PD_TLS}/pd/api/v1/config/cluster-version: [BR:PD:ErrPDInvalidResponse]PD invalid response"
    ) in err


def test_a_foreign_ca_is_not_trusted(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tlsgen.make_ca(tmp_path / "other").ca
    err = br_error(capsys, "backup", "full", "--pd", PD_TLS, "--ca", str(other), "--storage", f"local://{home}/b")
    assert "x509: certificate signed by unknown authority" in err and f"https://{PD_TLS}/" in err


def test_ca_on_a_plain_cluster_and_an_unreadable_ca(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = str(home / "tls" / "ca.pem")
    err = br_error(capsys, "backup", "full", "--pd", PD_PLAIN, "--ca", ca, "--storage", f"local://{home}/b")
    assert "http: server gave HTTP response to HTTPS client" in err
    err = br_error(capsys, "backup", "full", "--pd", PD_TLS, "--ca", "/nonexistent/ca.pem", "--storage", "local:///b")
    assert "could not read ca certificate: open /nonexistent/ca.pem: no such file or directory" in err


def test_the_right_ca_gets_past_tls(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = str(home / "tls" / "ca.pem")
    err = br_error(capsys, "backup", "full", "--pd", PD_TLS, "--ca", ca, "--storage", f"local://{home}/b")
    assert "HTTPS" not in err and "x509" not in err and "PD server timeout" in err  # then SQL: nothing on port 1


def test_br_version_prints_build_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Release Version: v8.5.1"
    assert [ln.split(":")[0] for ln in lines[1:]] == [
        "Git Commit Hash",
        "Git Branch",
        "Go Version",
        "UTC Build Time",
        "Race Enabled",
    ]
