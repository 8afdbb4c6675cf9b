"""The fleet config against careless and hostile input: secrets in any section, anchor bombs, deep nesting,
huge and non-UTF-8 files, wrong shapes, duplicate keys, names that collide, numbers that are not numbers,
unknown versions, production rules, and a cache directory someone else can write."""

from __future__ import annotations

import json
import os
import pickle
import re
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tidbops import config as config_mod
from tidbops.config import ConfigIssue, default_config_path, load_fleet, load_fleet_cached
from tidbops.errors import ConfigError
from tidbops.restore_rules import allowed_targets, needs_confirm

pytestmark = pytest.mark.unit

SHIPPED = default_config_path().read_text()
MAX_CONFIG_BYTES = getattr(config_mod, "MAX_CONFIG_BYTES", 8 * 1024 * 1024)
MAX_DEPTH = getattr(config_mod, "MAX_DEPTH", 32)

MINI = """\
version: 1
alert_routes:
  log: {kind: log}
clusters:
  - name: dev
    env: dev
    pd: ["pd-dev:2379"]
    tidb_conn_id: tidb_dev
    storage: {uri: "s3://backups"}
  - name: scratch1
    env: scratch
    scratch: true
    pd: ["pd-scratch1:2379"]
    tidb_conn_id: tidb_scratch1
    storage: {uri: "s3://backups"}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "clusters.yaml") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def lines_of(fleet: config_mod.Fleet) -> list[str]:
    return [str(i) for i in fleet.issues]


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_fleet(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


def shipped_with(old: str, new: str) -> str:
    assert old in SHIPPED, old
    return SHIPPED.replace(old, new, 1)


# ------------------------------------------------------------------------------------------ secrets


SECRET = "hunter2Sekr1t"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param(
            MINI.replace(
                "log: {kind: log}", f'a: {{kind: webhook, conn_id: "https://user:{SECRET}@hooks.example.com/x"}}'
            ),
            "alert_routes.a.conn_id: looks like a password in a URL",
            id="alert-route-conn-id",
        ),
        pytest.param(
            MINI.replace("clusters:", f'catalog:\n  sqlite_path: "mysql://u:{SECRET}@h/db"\nclusters:'),
            "catalog.sqlite_path: looks like a password in a URL",
            id="catalog-sqlite-path",
        ),
        pytest.param(
            MINI.replace("clusters:", f'catalog:\n  conn_id: "u:{SECRET}@tcp(db:4000)/catalog"\nclusters:'),
            "catalog.conn_id: looks like a password in a DSN",
            id="catalog-go-dsn",
        ),
        pytest.param(
            MINI.replace("clusters:", f'extras:\n  note: "postgres://admin:{SECRET}@db/x"\nclusters:'),
            "extras.note: looks like a password in a URL",
            id="unknown-top-level-key",
        ),
        pytest.param(
            MINI.replace("clusters:", f"extras:\n  password: {SECRET}\nclusters:"),
            "extras.password: (secret-named field) holds a value",
            id="unknown-top-level-secret-name",
        ),
        pytest.param(
            MINI.replace("clusters:", f"production_envs: [live, 'https://u:{SECRET}@x/']\nclusters:"),
            "production_envs[1]: looks like a password in a URL",
            id="production-envs",
        ),
        pytest.param(
            MINI.replace("    env: dev\n", f'    env: dev\n    owner: "host/db?sslmode=off&password={SECRET}"\n'),
            "owner: looks like a credential (password=",
            id="password-field-in-a-value",
        ),
        pytest.param(
            MINI.replace("    env: dev\n", f'    env: dev\n    "https://u:{SECRET}@h/": 1\n'),
            "a key that looks like a password in a URL",
            id="secret-as-a-key",
        ),
        pytest.param(
            MINI.replace("name: dev", f'name: "mysql://u:{SECRET}@h/"'),
            "clusters[0].name: looks like a password in a URL",
            id="secret-as-a-cluster-name",
        ),
        pytest.param(
            MINI.replace(
                "clusters:",
                f"defaults:\n  br:\n    encryption: {{method: aes256-ctr, key_conn_id: x}}\n"
                f"    crypter.key: {SECRET}\nclusters:",
            ),
            "defaults.br.crypter.key: (secret-named field) holds a value",
            id="defaults-crypter-key",
        ),
        pytest.param(
            MINI.replace("    env: dev\n", "    env: dev\n    owner: !!binary aHVudGVyMlNla3IxdA==\n"),
            "owner: binary data (!!binary)",
            id="binary-smuggled",
        ),
    ],
)
def test_every_section_is_scanned_and_secrets_are_never_echoed(tmp_path: Path, text: str, where: str) -> None:
    fleet = load_fleet(write(tmp_path, text))
    lines = lines_of(fleet)
    assert any(where in line for line in lines), lines
    assert not any(SECRET in line for line in lines), lines
    assert not fleet.ok


def test_a_secret_version_is_not_echoed(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINI.replace("version: 1", f'version: "mysql://u:{SECRET}@h/db"')))
    assert SECRET not in message
    assert "version" in message


def test_a_route_with_a_secret_is_not_loaded_and_its_users_say_so(tmp_path: Path) -> None:
    text = MINI.replace("log: {kind: log}", f'log: {{kind: webhook, conn_id: "https://u:{SECRET}@h/x"}}').replace(
        "    env: dev\n", "    env: dev\n    alerts: [log]\n"
    )
    fleet = load_fleet(write(tmp_path, text))
    assert "log" not in fleet.alert_routes
    assert "dev" not in fleet.clusters
    assert "cluster 'dev': alerts[0]: alert route 'log' has problems (see alert_routes.log)" in lines_of(fleet)


def test_issue_and_error_texts_pass_through_redaction() -> None:
    issue = ConfigIssue("dev", "storage.endpoint", f"http://u:{SECRET}@minio:9000 is wrong")
    assert SECRET not in str(issue) and SECRET not in issue.message
    assert "***" in issue.message
    line = str(ConfigIssue(None, "a\nb", "x\ny\u2028z"))
    assert len(line.splitlines()) == 1, line


def test_the_module_keeps_no_credential_patterns_of_its_own() -> None:
    # one home for credential patterns: tidbops.redact
    assert not hasattr(config_mod, "_SECRET_VALUE_PATTERNS")
    assert not hasattr(config_mod, "_SECRET_KEY_NAMES")


# ----------------------------------------------------------------------- anchors, nesting, size, bytes


def _load_in_subprocess(path: Path, timeout: float = 60) -> tuple[str, float]:
    """``load_fleet(path)`` in a child: a hang or a segfault fails this test instead of the run."""
    code = textwrap.dedent(
        """
        import sys
        from tidbops.config import load_fleet
        from tidbops.errors import ConfigError
        try:
            fleet = load_fleet(sys.argv[1])
        except ConfigError as exc:
            print("ConfigError:", exc)
        else:
            print("issues:", " | ".join(str(i) for i in fleet.issues))
        """
    )
    t0 = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"load_fleet({path.name}) still ran after {timeout}s")
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    return out.stdout.strip(), elapsed


def _laughs(indent: str, levels: int = 9) -> str:
    lines = [f"{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"{indent}l{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "where",
    ["cluster", "defaults", "top"],
)
def test_an_anchor_bomb_is_refused_quickly(tmp_path: Path, where: str) -> None:
    if where == "cluster":
        text = MINI.replace("    env: dev\n", "    env: dev\n    bomb:\n" + _laughs("      "))
    elif where == "defaults":
        text = MINI.replace("clusters:", "defaults:\n  bomb:\n" + _laughs("    ") + "clusters:")
    else:
        text = MINI.replace("clusters:", "bomb:\n" + _laughs("  ") + "clusters:")
    out, elapsed = _load_in_subprocess(write(tmp_path, text))
    assert out.startswith("ConfigError:"), out
    assert "more than 1000000 values" in out and "alias" in out, out
    assert elapsed < 10, elapsed


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINI.replace("    env: dev\n", "    env: dev\n    x: &a [1, *a]\n")))
    assert "line 7 column" in message and "recursive alias" in message


def test_an_undefined_alias_names_its_line(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINI.replace("env: dev", "env: *nope")))
    assert "line 6 column 10" in message and "*nope" in message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("clusters: " + "[" * 30_000 + "]" * 30_000 + "\n", id="flow-sequences"),
        pytest.param("clusters: " + "{a: " * 30_000 + "1" + "}" * 30_000 + "\n", id="flow-mappings"),
        pytest.param("clusters:\n" + "- " * 30_000 + "x\n", id="block-sequences"),
        pytest.param("".join(" " * i + "a:\n" for i in range(2_000)) + " " * 2_000 + "b: 1\n", id="block-mappings"),
    ],
)
def test_deep_nesting_is_refused_before_the_parser_recurses(tmp_path: Path, text: str) -> None:
    out, elapsed = _load_in_subprocess(write(tmp_path, text))
    assert out.startswith("ConfigError:"), out
    assert f"nested deeper than {MAX_DEPTH} levels" in out
    assert "line " in out
    assert elapsed < 10, elapsed


def test_nesting_through_an_alias_counts_too(tmp_path: Path) -> None:
    deep = "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2)
    text = MINI.replace("    env: dev\n", f"    env: dev\n    x: &d {deep}\n    y: [[[[[*d]]]]]\n")
    assert "nested deeper than" in config_error(write(tmp_path, text))


def test_the_file_size_is_capped(tmp_path: Path) -> None:
    big = MINI + "# " + "x" * (MAX_CONFIG_BYTES + 10) + "\n"
    message = config_error(write(tmp_path, big))
    assert "larger than 8 MiB" in message


@pytest.mark.parametrize(
    ("data", "where"),
    [
        pytest.param(
            MINI.encode().replace(b"env: dev", b"env: d\xffv"), "line 6 column 11 (byte 78)", id="latin1-byte"
        ),
        pytest.param(b"\xff\xfe" + "clusters: []\n".encode("utf-16-le"), "line 1 column 1 (byte 0)", id="utf-16"),
    ],
)
def test_non_utf8_is_one_line_naming_the_place(tmp_path: Path, data: bytes, where: str) -> None:
    message = config_error(write(tmp_path, data))
    assert "not UTF-8" in message and where in message, message


def test_control_characters_name_their_line(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINI.replace("env: dev", "env: d\x07v")))
    assert "line 6 column 11" in message and "not valid YAML" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param("# only a comment\n", "is empty", id="comment-only"),
        pytest.param("- a\n- b\n", "must be a mapping", id="top-level-list"),
        pytest.param("just text\n", "must be a mapping", id="top-level-scalar"),
        pytest.param("version: 1\nclusters:\n", "'clusters' is empty (null)", id="clusters-null"),
        pytest.param("version: 1\n", "has no 'clusters'", id="clusters-missing"),
        pytest.param(
            "clusters: {a: 1}\n", "'clusters' must be a list of cluster entries; it is a mapping", id="clusters-mapping"
        ),
        pytest.param(
            "a: 2026-02-30\nclusters: []\n", "line 1 column 4: this value cannot be read as a timestamp", id="bad-date"
        ),
        pytest.param(
            "a: !!int ''\nclusters: []\n", "line 1 column 4: this value cannot be read as an int", id="empty-int"
        ),
        pytest.param("a: " + "1" * 5000 + "\nclusters: []\n", "cannot be read as an int", id="int-too-long"),
        pytest.param("a: !python/object x\nclusters: []\n", "line 1 column 4", id="python-tag"),
        pytest.param("clusters: []\n---\nclusters: []\n", "one YAML document", id="two-documents"),
    ],
)
def test_unusable_files_are_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    message = config_error(write(tmp_path, text))
    assert expected in message, message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(("clusters:", "defaults: [1]\nclusters:"), "defaults: must be a mapping of cluster fields", id="defaults-list"),
        pytest.param(("alert_routes:\n  log: {kind: log}\n", "alert_routes: [1, 2]\n"),
                     "alert_routes: must be a mapping of route name to route (kind, to, conn_id); it is a list",
                     id="alert-routes-list"),
        pytest.param(("clusters:", "catalog: [1]\nclusters:"), "catalog: must be a mapping (conn_id, sqlite_path); it is a list", id="catalog-list"),
        pytest.param(("storage: {uri: \"s3://backups\"}\n  - name: scratch1", "storage: [s3://backups]\n  - name: scratch1"),
                     "cluster 'dev': storage: must be a mapping (", id="storage-list"),
        pytest.param(("  - name: dev\n", "  - 1\n  - name: dev\n"), "clusters[0]: each cluster entry must be a mapping", id="entry-int"),
    ],
)  # fmt: skip
def test_wrong_shapes_are_one_clear_line_each(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in MINI
    fleet = load_fleet(write(tmp_path, MINI.replace(*edit, 1)))
    lines = lines_of(fleet)
    assert lines and not fleet.ok
    assert all("\n" not in line for line in lines)
    assert any(expected in line for line in lines), lines


# ---------------------------------------------------------------------------------- duplicate keys


def test_a_duplicate_key_in_a_cluster_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    text = MINI.replace("    env: dev\n", "    env: prod\n    env: scratch\n")
    fleet = load_fleet(write(tmp_path, text))
    assert "dev" not in fleet.clusters and "scratch1" in fleet.clusters
    assert (
        "cluster 'dev': env: duplicate key 'env' at line 7 (first defined at line 6); write each key once"
        in lines_of(fleet)
    )


def test_a_second_clusters_key_is_refused(tmp_path: Path) -> None:
    text = MINI + "clusters:\n  - name: other\n"
    message = config_error(write(tmp_path, text))
    assert "line 16 column 1: duplicate key 'clusters' (first defined at line 4)" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            ("    storage: {uri: \"s3://backups\"}\n  - name: scratch1",
             "    storage:\n      uri: s3://a\n      uri: s3://backups\n  - name: scratch1"),
            "cluster 'dev': storage.uri: duplicate key 'uri' at line 11 (first defined at line 10)",
            id="nested-in-cluster",
        ),
        pytest.param(
            ("clusters:", "defaults:\n  owner: a\n  owner: b\nclusters:"),
            "defaults.owner: duplicate key 'owner' at line 6 (first defined at line 5)",
            id="defaults",
        ),
        pytest.param(
            ("  log: {kind: log}\n", "  log: {kind: log}\n  log: {kind: smtp, to: [a@b.c]}\n"),
            "alert_routes.log: duplicate key 'log' at line 4 (first defined at line 3)",
            id="route-name",
        ),
        pytest.param(
            ("clusters:", "catalog: {conn_id: a, conn_id: b}\nclusters:"),
            "catalog.conn_id: duplicate key 'conn_id' at line 4 (first defined at line 4)",
            id="catalog-flow",
        ),
        pytest.param(
            ("    env: dev\n", "    env: dev\n    'env': prod\n"),
            "cluster 'dev': env: duplicate key 'env' at line 7 (first defined at line 6)",
            id="quoted-and-plain",
        ),
    ],
)  # fmt: skip
def test_duplicate_keys_at_any_depth(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    fleet = load_fleet(write(tmp_path, MINI.replace(*edit, 1)))
    lines = lines_of(fleet)
    assert any(line.startswith(expected) for line in lines), lines


def test_merge_keys_may_override_what_they_merge(tmp_path: Path) -> None:
    text = MINI.replace("alert_routes:", "base: &b {env: dev, owner: x}\nalert_routes:").replace(
        "    env: dev\n", "    <<: *b\n    owner: dba\n"
    )
    fleet = load_fleet(write(tmp_path, text))
    assert fleet.get("dev").owner == "dba"
    assert [i.field for i in fleet.issues] == ["base"]  # only the unknown top-level key


# ------------------------------------------------------------------------------------------- names


def test_names_are_stripped_before_the_duplicate_check(tmp_path: Path) -> None:
    text = MINI.replace("name: scratch1", 'name: "dev "').replace("    scratch: true\n", "")
    fleet = load_fleet(write(tmp_path, text.replace("env: scratch", "env: test")))
    assert list(fleet.clusters) == []
    assert "cluster 'dev': name: duplicate cluster name (also entry #1); names must be unique" in lines_of(fleet)


@pytest.mark.parametrize(
    "name",
    ["Dev", "a__b", "a_", "-a", "1dev", "a--b", "dev.1", "x" * 64, "dév", "a b", ""],
)
def test_names_that_cannot_be_dag_ids_are_refused(tmp_path: Path, name: str) -> None:
    fleet = load_fleet(write(tmp_path, MINI.replace("name: dev", f"name: {json.dumps(name)}")))
    assert list(fleet.clusters) == ["scratch1"]
    assert any("name:" in line and "not a valid cluster name" in line for line in lines_of(fleet)), lines_of(fleet)


@pytest.mark.parametrize("name", ["a", "dev", "prod-eu1", "uat_02", "scratch9", "a" * 63, "x-1_y-2"])
def test_valid_names(tmp_path: Path, name: str) -> None:
    fleet = load_fleet(write(tmp_path, MINI.replace("name: dev", f"name: {name}")))
    assert fleet.ok, lines_of(fleet)
    assert name in fleet.clusters


def test_upper_case_names_get_a_hint(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, MINI.replace("name: dev", "name: Dev")))
    assert any("use 'dev'" in line for line in lines_of(fleet)), lines_of(fleet)


# ----------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ("log_backup: {max_checkpoint_lag: .nan}", "log_backup.max_checkpoint_lag"),
        ("log_backup: {max_checkpoint_lag: .inf}", "log_backup.max_checkpoint_lag"),
        ("log_backup: {max_checkpoint_lag: -.inf}", "log_backup.max_checkpoint_lag"),
        ("log_backup: {max_checkpoint_lag: 1e400}", "log_backup.max_checkpoint_lag"),
        ("log_backup: {max_checkpoint_lag: 99999999999999999999999999999999999999999999999999999s}", "log_backup.max_checkpoint_lag"),
        ("log_backup: {max_checkpoint_lag: " + "9" * 400 + "}", "log_backup.max_checkpoint_lag"),
        ("log_backup: {max_checkpoint_lag: 8d}", "log_backup.max_checkpoint_lag"),
        ("log_backup: {max_gc_hold: 31d}", "log_backup.max_gc_hold"),
        ("br: {timeout: .nan}", "br.timeout"),
        ("br: {timeout: 0.1}", "br.timeout"),
        ("br: {timeout: 30d}", "br.timeout"),
        ("br: {ratelimit_mib: 1000000}", "br.ratelimit_mib"),
        ("br: {ratelimit_mib: .inf}", "br.ratelimit_mib"),
        ("br: {concurrency: true}", "br.concurrency"),
        ("br: {concurrency: 0}", "br.concurrency"),
        ("retention: {keep_days: 100000}", "retention.keep_days"),
        ("retention: {keep_days: -1}", "retention.keep_days"),
        ("retention: {keep_full: 1000}", "retention.keep_full"),
        ("retention: {max_chain_length: 1000}", "retention.max_chain_length"),
        ("slow_query: {top_n: .nan}", "slow_query.top_n"),
        ("drill: {fingerprint_max_rows: 100000000000000}", "drill.fingerprint_max_rows"),
        ("drill: {fingerprint_max_tables: 0}", "drill.fingerprint_max_tables"),
        ("pd: ['pd-dev:99999']", "pd"),
        ("pd: ['pd-dev:0']", "pd"),
    ],
)  # fmt: skip
def test_numbers_must_be_finite_and_in_bounds(tmp_path: Path, fields: str, where: str) -> None:
    field_name = fields.split(":", 1)[0]
    text = MINI.replace('    pd: ["pd-dev:2379"]\n', "" if field_name == "pd" else '    pd: ["pd-dev:2379"]\n').replace(
        "    env: dev\n", f"    env: dev\n    {fields}\n"
    )
    fleet = load_fleet(write(tmp_path, text))
    assert "dev" not in fleet.clusters
    lines = lines_of(fleet)
    assert len(lines) == 1 and lines[0].startswith(f"cluster 'dev': {where}"), lines
    assert len(lines[0]) < 400


@pytest.mark.parametrize(
    "fields",
    [
        "log_backup: {max_checkpoint_lag: 7d}",
        "br: {timeout: 1s, ratelimit_mib: 100000, concurrency: 256}",
        "retention: {keep_days: 3650, keep_full: 100, max_chain_length: 0}",
        "drill: {fingerprint_max_rows: 10000000000, fingerprint_max_tables: 1000000}",
        "pd: ['pd-dev:65535']",
    ],
)
def test_numbers_at_the_bounds_are_fine(tmp_path: Path, fields: str) -> None:
    text = MINI
    if fields.startswith("pd:"):
        text = text.replace('    pd: ["pd-dev:2379"]\n', "")
    fleet = load_fleet(write(tmp_path, text.replace("    env: dev\n", f"    env: dev\n    {fields}\n")))
    assert fleet.ok, lines_of(fleet)


# ----------------------------------------------------------------------------------------- version


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", "version 2 is not known; this tidbops reads version 1"),
        ("0", "version 0 is not known; this tidbops reads version 1"),
        ('"1"', "version must be the number 1 (it is a string)"),
        ("true", "version must be the number 1 (it is a boolean)"),
        ("1.0", "version must be the number 1 (it is a float)"),
        ("[1]", "version must be the number 1 (it is a list)"),
    ],
)
def test_unknown_versions_are_refused(tmp_path: Path, value: str, expected: str) -> None:
    assert expected in config_error(write(tmp_path, MINI.replace("version: 1", f"version: {value}")))


def test_a_missing_version_is_version_1(tmp_path: Path) -> None:
    assert load_fleet(write(tmp_path, MINI.replace("version: 1\n", ""))).ok


# -------------------------------------------------------------------------------------- production


def test_production_true_marks_production(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, MINI.replace("    env: dev\n", "    env: dev\n    production: true\n")))
    assert fleet.ok and fleet.get("dev").is_production
    assert needs_confirm(fleet.get("dev"), dry_run=True)


@pytest.mark.parametrize("env", ["prod", "production", "prd", "live"])
def test_production_envs_are_configurable_and_extend_the_builtin_ones(tmp_path: Path, env: str) -> None:
    text = MINI.replace("clusters:", "production_envs: [live]\nclusters:").replace("env: dev", f"env: {env}")
    fleet = load_fleet(write(tmp_path, text))
    assert fleet.ok, lines_of(fleet)
    assert fleet.get("dev").is_production
    assert not fleet.get("scratch1").is_production


def test_a_custom_production_env_is_not_production_without_the_list(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, MINI.replace("env: dev", "env: live")))
    assert not fleet.get("dev").is_production


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(("    scratch: true\n", "    scratch: true\n    production: true\n"),
                     "cluster 'scratch1': scratch: production: true marks it production; a production cluster can never be scratch",
                     id="production-true-scratch"),
        pytest.param(("clusters:", "production_envs: [scratch]\nclusters:"),
                     "cluster 'scratch1': scratch: env 'scratch' is production (production_envs); a production cluster can never be scratch",
                     id="production-env-scratch"),
        pytest.param(("env: dev", "env: prod\n    production: false"),
                     "cluster 'dev': production: env 'prod' is production; production: false cannot unmark it",
                     id="production-false-on-prod"),
        pytest.param(("clusters:", "production_envs: [Live]\nclusters:"),
                     "production_envs[0]: 'Live' is not a valid env",
                     id="bad-production-env"),
    ],
)  # fmt: skip
def test_production_cross_checks(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    fleet = load_fleet(write(tmp_path, MINI.replace(*edit, 1)))
    assert any(line.startswith(expected) for line in lines_of(fleet)), lines_of(fleet)


def test_a_production_restore_target_needs_the_explicit_flag(tmp_path: Path) -> None:
    prod = "\n".join(
        [
            "  - name: prod",
            "    env: prod",
            "    pd: ['pd-prod:2379']",
            "    tidb_conn_id: tidb_prod",
            "    storage: {uri: 's3://backups'}",
            "    restore: {allowed_targets: [scratch1, prod], allow_in_place: true}",
            "",
        ]
    )
    fleet = load_fleet(write(tmp_path, MINI + prod))
    assert "prod" not in fleet.clusters
    assert (
        "cluster 'prod': restore.allowed_targets[1]: 'prod' is a production cluster; set "
        "restore.allow_production_targets: true to allow restores into it"
    ) in lines_of(fleet)
    dev_to_prod = MINI.replace("    env: dev\n", "    env: dev\n    restore: {allowed_targets: [prod]}\n")
    fleet = load_fleet(write(tmp_path, dev_to_prod + prod.replace(", prod], allow_in_place: true", "]")))
    assert lines_of(fleet) == [
        "cluster 'dev': restore.allowed_targets[0]: 'prod' is a production cluster; set "
        "restore.allow_production_targets: true to allow restores into it"
    ]
    in_place = prod.replace("[scratch1, prod], allow_in_place: true", "[scratch1], allow_in_place: true")
    fleet = load_fleet(write(tmp_path, MINI + in_place))
    assert lines_of(fleet) == [
        "cluster 'prod': restore.allow_in_place: prod is a production cluster; set "
        "restore.allow_production_targets: true to allow restoring it in place"
    ]
    allowed = prod.replace("allow_in_place: true}", "allow_in_place: true, allow_production_targets: true}")
    fleet = load_fleet(write(tmp_path, MINI + allowed))
    assert fleet.ok, lines_of(fleet)
    assert allowed_targets(fleet.get("prod"), fleet.clusters) == ["scratch1", "prod"]
    assert needs_confirm(fleet.get("prod"), dry_run=True)


# ------------------------------------------------------------------------------------------- cache


class _Planted:
    """A pickle that leaves a mark when loaded: loading it is running someone else's code."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.mkdir, (str(self.mark),))


def _digest_name(config: Path) -> str:
    load_fleet_cached(config, cache_dir=None)
    (key,) = [k for k in config_mod._MEMO if k[0] == str(config)]
    return f"fleet-{key[1]}.pickle"


@pytest.fixture
def fresh_memo() -> None:
    config_mod._MEMO.clear()


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def test_cache_is_written_private_and_read_back(tmp_path: Path, fresh_memo: None) -> None:
    config = write(tmp_path, MINI)
    cache = tmp_path / "cache"
    first = load_fleet_cached(config, cache_dir=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("fleet-") and files[0].suffix == ".pickle"
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    config_mod._MEMO.clear()
    again = load_fleet_cached(config, cache_dir=cache)
    assert list(again.clusters) == list(first.clusters)


def test_cache_ignores_a_symlink_at_the_old_temporary_name(tmp_path: Path, fresh_memo: None) -> None:
    config = write(tmp_path, MINI)
    name = _digest_name(config)
    config_mod._MEMO.clear()
    cache = _private_dir(tmp_path / "cache")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    old_tmp = cache / name.replace(".pickle", f".{os.getpid()}.tmp")
    old_tmp.symlink_to(victim)
    load_fleet_cached(config, cache_dir=cache)
    assert victim.read_text() == "precious"
    assert old_tmp.is_symlink()
    assert (cache / name).is_file() and not (cache / name).is_symlink()


def test_cache_never_follows_a_symlink_at_the_cache_file_name(tmp_path: Path, fresh_memo: None) -> None:
    config = write(tmp_path, MINI)
    name = _digest_name(config)
    config_mod._MEMO.clear()
    cache = _private_dir(tmp_path / "cache")
    elsewhere = _private_dir(tmp_path / "elsewhere")
    planted = elsewhere / "planted.pickle"
    planted.write_bytes(pickle.dumps(_Planted(tmp_path / "ran")))
    planted.chmod(0o600)
    (cache / name).symlink_to(planted)
    fleet = load_fleet_cached(config, cache_dir=cache)
    assert not (tmp_path / "ran").exists(), "a symlinked cache file was unpickled"
    assert list(fleet.clusters) == ["dev", "scratch1"]
    assert planted.read_bytes() == pickle.dumps(_Planted(tmp_path / "ran"))
    assert not (cache / name).is_symlink()  # replaced by our own file, the target untouched


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o707, 0o755, 0o1777])
def test_cache_dir_others_can_use_is_neither_read_nor_written(tmp_path: Path, fresh_memo: None, mode: int) -> None:
    config = write(tmp_path, MINI)
    name = _digest_name(config)
    config_mod._MEMO.clear()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / name).write_bytes(pickle.dumps(_Planted(tmp_path / "ran")))
    (cache / name).chmod(0o600)
    cache.chmod(mode)
    before = sorted(p.name for p in cache.iterdir())
    fleet = load_fleet_cached(config, cache_dir=cache)
    assert not (tmp_path / "ran").exists()
    assert list(fleet.clusters) == ["dev", "scratch1"]
    assert sorted(p.name for p in cache.iterdir()) == before


def test_cache_dir_that_is_a_symlink_is_not_used(tmp_path: Path, fresh_memo: None) -> None:
    config = write(tmp_path, MINI)
    real = _private_dir(tmp_path / "real")
    link = tmp_path / "cache"
    link.symlink_to(real)
    load_fleet_cached(config, cache_dir=link)
    assert list(real.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory to another user")
def test_cache_dir_owned_by_someone_else_is_neither_read_nor_written(tmp_path: Path, fresh_memo: None) -> None:
    config = write(tmp_path, MINI)
    name = _digest_name(config)
    config_mod._MEMO.clear()
    cache = _private_dir(tmp_path / "cache")
    (cache / name).write_bytes(pickle.dumps(_Planted(tmp_path / "ran")))
    (cache / name).chmod(0o600)
    os.chown(cache / name, 4242, 4242)
    os.chown(cache, 4242, 4242)
    before = sorted(p.name for p in cache.iterdir())
    load_fleet_cached(config, cache_dir=cache)
    assert not (tmp_path / "ran").exists()
    assert sorted(p.name for p in cache.iterdir()) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_cache_file_owned_by_someone_else_is_not_read(tmp_path: Path, fresh_memo: None) -> None:
    config = write(tmp_path, MINI)
    name = _digest_name(config)
    config_mod._MEMO.clear()
    cache = _private_dir(tmp_path / "cache")
    (cache / name).write_bytes(pickle.dumps(_Planted(tmp_path / "ran")))
    (cache / name).chmod(0o600)
    os.chown(cache / name, 4242, 4242)
    load_fleet_cached(config, cache_dir=cache)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_cache_file_others_can_write_is_not_read(tmp_path: Path, fresh_memo: None, mode: int) -> None:
    config = write(tmp_path, MINI)
    name = _digest_name(config)
    config_mod._MEMO.clear()
    cache = _private_dir(tmp_path / "cache")
    (cache / name).write_bytes(pickle.dumps(_Planted(tmp_path / "ran")))
    (cache / name).chmod(mode)
    load_fleet_cached(config, cache_dir=cache)
    assert not (tmp_path / "ran").exists()


def test_cache_key_is_the_content_read_once(tmp_path: Path, fresh_memo: None) -> None:
    # an edit between hashing and loading cannot file one content's fleet under the other's key
    config = write(tmp_path, MINI)
    first = load_fleet_cached(config, cache_dir=tmp_path / "cache")
    config.write_text(MINI.replace("name: dev", "name: dev2"))
    second = load_fleet_cached(config, cache_dir=tmp_path / "cache")
    assert list(first.clusters) == ["dev", "scratch1"] and list(second.clusters) == ["dev2", "scratch1"]


def test_texts_built_to_be_slow_to_scan_are_scanned_in_linear_time(tmp_path: Path) -> None:
    """Runs of name characters were quadratic for the credential patterns (25 s for 300 KB); now linear."""
    slow = ("-a-" * 400)[:1000]
    text = MINI.replace("clusters:", "x:\n" + "".join(f'  - "{slow}{i}"\n' for i in range(300)) + "clusters:")
    t0 = time.perf_counter()
    fleet = load_fleet(write(tmp_path, text))
    assert [i.field for i in fleet.issues] == ["x"]  # only the unknown top-level key
    assert time.perf_counter() - t0 < 5  # a hang bound, not a benchmark: quadratic took minutes


def test_the_restore_guardrails_ask_confirm_for_every_kind_of_production(tmp_path: Path) -> None:
    from tidbops.restore import RestoreRefused, RestoreRequest, check_request

    live = "\n".join(
        [
            "  - name: live1",
            "    env: live",
            "    pd: ['pd-live1:2379']",
            "    tidb_conn_id: tidb_live1",
            "    storage: {uri: 's3://backups'}",
            "  - name: marked",
            "    env: test",
            "    production: true",
            "    pd: ['pd-marked:2379']",
            "    tidb_conn_id: tidb_marked",
            "    storage: {uri: 's3://backups'}",
            "",
        ]
    )
    text = MINI.replace("clusters:", "production_envs: [live]\nclusters:").replace(
        "    env: dev\n",
        "    env: dev\n    restore: {allowed_targets: [live1, marked], allow_production_targets: true}\n",
    )
    fleet = load_fleet(write(tmp_path, text + live))
    assert fleet.ok, lines_of(fleet)
    for target, why in (("live1", "(env live, marked production)"), ("marked", "(env test, marked production)")):
        req = RestoreRequest(source="dev", target=target, reason="a test restore", dry_run=True)
        with pytest.raises(RestoreRefused, match=rf"{target} is a production cluster {re.escape(why)}: type"):
            check_request(req, fleet.clusters)


def test_a_route_named_like_a_secret_is_not_loaded_or_echoed(tmp_path: Path) -> None:
    key_id = "AKIAIOSFODNN7EXAMPLE"
    text = MINI.replace("  log: {kind: log}\n", f"  log: {{kind: log}}\n  {key_id}: {{kind: log}}\n")
    fleet = load_fleet(write(tmp_path, text))
    assert key_id not in fleet.alert_routes and "log" in fleet.alert_routes
    assert lines_of(fleet) == [
        "alert_routes: a key that looks like an AWS access key id; secrets belong in Airflow connections, "
        "reference them by conn id"
    ]


@pytest.mark.parametrize("endpoint", ["http://[::1", "http://minio:99999", "ftp://minio:9000", "http://minio:9000/?a=1"])
def test_a_storage_endpoint_boto3_cannot_use_is_refused_at_load(tmp_path: Path, endpoint: str) -> None:
    fleet = load_fleet(write(tmp_path, MINI.replace('storage: {uri: "s3://backups"}',
                                                      f'storage: {{uri: "s3://backups", endpoint: "{endpoint}"}}')))  # fmt: skip
    assert any(i.field == "storage.endpoint" and "S3 endpoint" in i.message for i in fleet.issues), fleet.issues
