"""Fuzzing the fleet-config loader: random YAML-ish text, random structures dumped to YAML (the shipped
config with fields swapped for hostile values, unicode names, deep nesting, anchors and aliases) and random
bytes. Whatever the file holds, ``load_fleet`` returns a Fleet (with issues) or raises one ConfigError,
each a single line; never another exception, never a hang, and never a planted secret in any message."""

from __future__ import annotations

import json
import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tidbops.config import Fleet, default_config_path, load_fleet
from tidbops.errors import ConfigError

pytestmark = pytest.mark.unit

# No example database in the repo; a deadline per example and a hard alarm around each load.
FUZZ = settings(max_examples=150, deadline=3000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])  # fmt: skip
HARD_LIMIT_S = 10

SHIPPED_TEXT = default_config_path().read_text()
SHIPPED: dict[str, Any] = yaml.safe_load(SHIPPED_TEXT)

# Secrets a careless or hostile file might hold; none may ever appear in a message.
SECRETS = ["Pl4nted-s3cret", "hunter2hunter2", "wJalrXUtnFEMIK7MDENG"]
SECRET_VALUES = st.sampled_from(
    [
        f"mysql://root:{SECRETS[0]}@db:3306/x",
        f"https://user:{SECRETS[1]}@hooks.example.com/x",
        f"s3://bucket/p?secret-access-key={SECRETS[2]}&access-key=AKIA",
        f"u:{SECRETS[0]}@tcp(db:4000)/catalog",
        f"--crypter.key={SECRETS[1]}",
        f"password={SECRETS[2]}",
    ]
)
SECRET_FIELDS = st.sampled_from(["password", "secret", "token", "api_key", "crypter.key", "aws_secret_access_key"])

HOSTILE = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12),
    st.text(min_size=1500, max_size=2000, alphabet="x-."),
    st.sampled_from(["61 1 * * 0", "@weekly", "off", "1e400s", ".nan", "-1s", "9" * 60, "prod", "scratch",
                     "dev ", "DEV", "a__b", "\x00\x1b[2J", "\u2028", "s3://b", "local:///x", "127.0.0.1:99999",
                     "0123456789abcdef0123456789abcdef", "AKIAIOSFODNN7EXAMPLE", "ghp_abcdefghij0123456789"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    SECRET_VALUES,
)  # fmt: skip

SECTIONS = ["version", "production_envs", "defaults", "alert_routes", "catalog", "clusters", "extras"]


def _deep(levels: int, leaf: Any) -> Any:
    node = leaf
    for i in range(levels):
        node = [node] if i % 2 else {"a": node}
    return node


@st.composite
def mutated_fleet(draw: st.DrawFn) -> dict[str, Any]:
    """The shipped fleet with a few fields set to hostile values, secrets planted, sections swapped."""
    doc: dict[str, Any] = json.loads(json.dumps(SHIPPED))
    for _ in range(draw(st.integers(1, 5))):
        how = draw(st.sampled_from(["cluster-field", "nested-field", "section", "secret", "deep", "name"]))
        clusters = doc.get("clusters")
        if how == "section":
            doc[draw(st.sampled_from(SECTIONS))] = draw(HOSTILE)
        elif how == "deep":
            doc[draw(st.sampled_from(SECTIONS))] = _deep(draw(st.integers(1, 60)), draw(HOSTILE))
        elif not isinstance(clusters, list) or not clusters or not isinstance(clusters[0], dict):
            doc["clusters"] = [{"name": draw(HOSTILE)}]
        elif how == "name":
            clusters[draw(st.integers(0, len(clusters) - 1))]["name"] = draw(
                st.one_of(st.text(max_size=70), st.sampled_from(["dev", "dev ", " dev", "Dev", "uat"]))
            )
        else:
            cluster = clusters[draw(st.integers(0, len(clusters) - 1))]
            target: Any = cluster
            if how == "nested-field":
                section = draw(st.sampled_from(["storage", "br", "log_backup", "drill", "restore", "retention",
                                                "slow_query", "schedules"]))  # fmt: skip
                target = cluster.setdefault(section, {})
                if not isinstance(target, dict):
                    target = cluster
            if how == "secret":
                where = draw(st.sampled_from(["value", "field", "route", "catalog", "defaults", "extras"]))
                value = draw(SECRET_VALUES)
                if where == "route":
                    if not isinstance(doc.get("alert_routes"), dict):
                        doc["alert_routes"] = {}
                    doc["alert_routes"]["r"] = {"kind": "webhook", "conn_id": value}
                elif where == "catalog":
                    doc["catalog"] = {"sqlite_path": value}
                elif where == "defaults" and isinstance(doc.get("defaults"), dict):
                    doc["defaults"][draw(SECRET_FIELDS)] = value
                elif where == "extras":
                    doc["extras"] = {"x": value}
                elif where == "field":
                    target[draw(SECRET_FIELDS)] = SECRETS[draw(st.integers(0, 2))]
                else:
                    target[draw(st.sampled_from(["owner", "endpoint", "uri", "tidb_conn_id", "path", "name"]))] = value
            else:
                key = draw(st.one_of(st.sampled_from(["name", "env", "pd", "owner", "scratch", "production", "alerts",
                                                      "timeout", "max_checkpoint_lag", "keep_days", "top_n",
                                                      "ratelimit_mib", "concurrency", "uri", "target", "full",
                                                      "allowed_targets", "allow_in_place", "fingerprint_max_rows"]),
                                     st.text(max_size=8)))  # fmt: skip
                target[key] = draw(HOSTILE)
    return doc


def _anchored(body: str) -> str:
    return "version: 1\n" + body + "\nclusters: []\n"


YAMLISH = st.one_of(
    st.text(alphabet=st.sampled_from(list("-:[]{}&*!|>'\"#%@`,?\n \tab01.")), max_size=200),
    st.text(max_size=200),
    st.builds(_anchored, st.text(alphabet=st.sampled_from(list("&*ab[], :\n-")), max_size=120)),
    st.builds(lambda n: "clusters: " + "[" * n + "]" * n, st.integers(0, 5000)),
    st.builds(lambda n: "".join(" " * i + "a:\n" for i in range(n)), st.integers(0, 300)),
)


@contextmanager
def _hard_limit(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the run) when one load takes longer than ``seconds``."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        yield
        return

    def _alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"load_fleet ran longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_invariant(path: Path, planted: list[str] = SECRETS) -> None:
    """A Fleet or one ConfigError, each message one line, no planted secret in any of them."""
    with _hard_limit(HARD_LIMIT_S):
        try:
            fleet = load_fleet(path)
        except ConfigError as exc:
            messages = [str(exc)]
        else:
            assert isinstance(fleet, Fleet)
            messages = [str(i) for i in fleet.issues]
            assert set(fleet.clusters) <= {c.name for c in fleet.clusters.values()}
            for cluster in fleet.clusters.values():
                assert math.isfinite(cluster.br.timeout) and math.isfinite(cluster.log_backup.max_checkpoint_lag)
    for message in messages:
        assert len(message.splitlines()) == 1, message
        assert len(message) < 3000, message[:200]
        for secret in planted:
            assert secret not in message, message


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@FUZZ
@given(doc=mutated_fleet())
def test_mutated_fleet(tmp_path: Path, doc: dict[str, Any]) -> None:
    p = tmp_path / "clusters.yaml"
    p.write_text(_dump(doc), encoding="utf-8")
    check_invariant(p)


@FUZZ
@given(doc=mutated_fleet(), anchor=st.sampled_from(["defaults", "cluster", "top"]), levels=st.integers(1, 9))
def test_anchors_and_aliases(tmp_path: Path, doc: dict[str, Any], anchor: str, levels: int) -> None:
    """The same documents with shared structure: safe_dump writes aliases for repeated objects."""
    shared: Any = ["lol"] * 9
    for _ in range(levels):
        shared = [shared] * 9
    if anchor == "defaults" and isinstance(doc.get("defaults"), dict):
        doc["defaults"]["bomb"] = shared
    elif (
        anchor == "cluster"
        and isinstance(doc.get("clusters"), list)
        and doc["clusters"]
        and isinstance(doc["clusters"][0], dict)
    ):
        doc["clusters"][0]["bomb"] = shared
    else:
        doc["bomb"] = shared
    p = tmp_path / "clusters.yaml"
    p.write_text(_dump(doc), encoding="utf-8")
    check_invariant(p)


@FUZZ
@given(text=YAMLISH)
@example(text="a: &a [*a]\nclusters: []")
@example(text="clusters: [&x {name: a}, *x, *x]")
@example(text="clusters:\n- name: a\n  name: b\n")
@example(text="!!binary x: 1\nclusters: []")
@example(text="? [a]\n: 1\nclusters: []")
@example(text="<<: {clusters: []}\n")
def test_yamlish_text(tmp_path: Path, text: str) -> None:
    p = tmp_path / "clusters.yaml"
    p.write_text(text, encoding="utf-8")
    check_invariant(p)


@FUZZ
@given(data=st.binary(max_size=400), prefix=st.sampled_from([b"", SHIPPED_TEXT.encode()[:300], b"\xef\xbb\xbf"]))
def test_random_bytes(tmp_path: Path, data: bytes, prefix: bytes) -> None:
    p = tmp_path / "clusters.yaml"
    p.write_bytes(prefix + data)
    check_invariant(p)


@FUZZ
@given(cut=st.integers(0, len(SHIPPED_TEXT)), junk=st.text(max_size=20))
def test_truncated_shipped_config(tmp_path: Path, cut: int, junk: str) -> None:
    p = tmp_path / "clusters.yaml"
    p.write_text(SHIPPED_TEXT[:cut] + junk, encoding="utf-8")
    check_invariant(p)
