from __future__ import annotations

from pathlib import Path

import pytest

from tidbops.config import default_config_path, load_fleet
from tidbops.errors import ConfigError, UnknownClusterError

pytestmark = pytest.mark.unit

SHIPPED = default_config_path().read_text()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "clusters.yaml"
    p.write_text(text)
    return p


def test_shipped_config_is_valid() -> None:
    fleet = load_fleet()
    assert fleet.ok, [str(i) for i in fleet.issues]
    assert list(fleet.clusters) == ["dev", "uat", "prod", "scratch1", "scratch2", "secure"]
    prod = fleet.get("prod")
    assert prod.is_production and not prod.scratch
    assert prod.br.encryption is not None and prod.br.encryption.key_conn_id == "br_crypter_prod"
    assert prod.storage.uri == "s3://tidbops-backups" and prod.storage.conn_id == "s3_playground"  # from defaults
    assert prod.log_backup.max_checkpoint_lag == 300.0
    assert prod.retention.keep_days == 30 and prod.retention.keep_full == 2  # own value wins, rest merged
    assert prod.log_storage_uri == "s3://tidbops-backups/prod/log"
    assert fleet.get("scratch1").schedules.full is None


def test_models_are_frozen() -> None:
    cluster = load_fleet().get("dev")
    with pytest.raises(Exception, match="frozen"):
        cluster.env = "prod"  # type: ignore[misc]


def test_unknown_cluster_lists_known() -> None:
    with pytest.raises(UnknownClusterError, match="known clusters: dev, prod, scratch1, scratch2, secure, uat"):
        load_fleet().get("nope")


# (id, edit of the shipped file, the one expected line, clusters that must still load)
BAD = [
    (
        "typo-field",
        ('      full: "0 1 * * *"\n', '      ful: "0 1 * * *"\n'),
        "cluster 'dev': schedules.ful: unknown field (did you mean 'full'?); valid fields: cluster_check, drill, full,",
        {"uat", "prod"},
    ),
    (
        "bad-cron",
        ('full: "0 1 * * 0"', 'full: "61 1 * * 0"'),
        "cluster 'uat': schedules.full: '61 1 * * 0' is not a valid cron expression; use 5 fields",
        {"dev", "prod"},
    ),
    (
        "duplicate-name",
        ("name: uat", "name: dev"),
        "cluster 'dev': name: duplicate cluster name (also entry #1); names must be unique",
        {"prod"},
    ),
    (
        "unknown-scratch-target",
        ("target: scratch2", "target: scratch9"),
        "cluster 'uat': drill.target: 'scratch9' is not a cluster; scratch clusters: scratch1, scratch2",
        {"dev", "prod"},
    ),
    (
        "target-not-scratch",
        ("target: scratch2", "target: dev"),
        "cluster 'uat': drill.target: 'dev' is not marked scratch: true; scratch clusters: scratch1, scratch2",
        {"dev", "prod"},
    ),
    (
        "secret-password-field",
        ("    tidb_conn_id: tidb_prod\n", "    tidb_conn_id: tidb_prod\n    password: hunter22\n"),
        "cluster 'prod': password: (secret-named field) holds a value; secrets belong in Airflow connections",
        {"dev", "uat"},
    ),
    (
        "secret-in-uri",
        (
            "    tidb_conn_id: tidb_uat\n",
            "    tidb_conn_id: tidb_uat\n    storage: {uri: 's3://b/p?access-key=x&secret-access-key=y'}\n",
        ),
        "cluster 'uat': storage.uri: looks like a credential (access-key=",
        {"dev", "prod"},
    ),
    (
        "secret-aws-key",
        ("key_conn_id: br_crypter_uat", "key_conn_id: AKIAIOSFODNN7EXAMPLE"),
        "cluster 'uat': br.encryption.key_conn_id: looks like an AWS access key id",
        {"dev", "prod"},
    ),
    (
        "secret-hex-key",
        ("    tidb_conn_id: tidb_dev\n", "    tidb_conn_id: tidb_dev\n    owner: 0123456789abcdef0123456789abcdef\n"),
        "cluster 'dev': owner: looks like an encryption key (hex)",
        {"uat", "prod"},
    ),
    (
        "bad-compression",
        ("    tidb_conn_id: tidb_dev\n", "    tidb_conn_id: tidb_dev\n    br: {compression: gzip}\n"),
        "cluster 'dev': br.compression: 'gzip' is not valid; use 'lz4', 'zstd' or 'snappy'",
        {"uat", "prod"},
    ),
    (
        "bad-env",
        ("env: uat", "env: UAT"),
        "cluster 'uat': env: 'UAT' is not a valid env; use a lower-case word",
        {"dev", "prod"},
    ),
    (
        "missing-conn",
        ("    tidb_conn_id: tidb_uat\n", ""),
        "cluster 'uat': tidb_conn_id: required field is missing",
        {"dev", "prod"},
    ),
    (
        "bad-duration",
        ("max_checkpoint_lag: 5m", "max_checkpoint_lag: soon"),
        "cluster 'prod': log_backup.max_checkpoint_lag: 'soon' is not a duration; use e.g. 90s, 10m, 1h30m",
        {"dev", "uat"},
    ),
    (
        "unknown-alert-route",
        ("alerts: [dba-log, dba-email]", "alerts: [dba-log, pager]"),
        "cluster 'prod': alerts[1]: 'pager' is not an alert route; defined routes: dba-email, dba-log",
        {"dev", "uat"},
    ),
    (
        "scratch-with-backups",
        (
            '    scratch: true\n    pd: ["127.0.0.1:23795"]',
            "    scratch: true\n    schedules: {full: '@daily'}\n    pd: [\"127.0.0.1:23795\"]",
        ),
        "cluster 'scratch2': scratch: a scratch cluster is wiped by drills; it cannot have backups scheduled",
        {"dev", "uat", "prod", "scratch1"},
    ),
    (
        "shared-pd",
        ('pd: ["127.0.0.1:23792"]', 'pd: ["127.0.0.1:23791"]'),
        "cluster 'uat': pd: '127.0.0.1:23791' is also the PD of cluster 'dev'; each cluster needs its own PD",
        {"prod"},
    ),
    (
        "unknown-restore-target",
        ("allowed_targets: [scratch1, scratch2]\n\n  - name: uat", "allowed_targets: [scratch1, qa]\n\n  - name: uat"),
        "cluster 'dev': restore.allowed_targets[1]: 'qa' is not a cluster; known: dev, prod, scratch1, scratch2, secure, uat",
        {"uat", "prod"},
    ),
]


@pytest.mark.parametrize(("edit", "expected", "still_loaded"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_entry_gives_one_precise_line(
    tmp_path: Path, edit: tuple[str, str], expected: str, still_loaded: set[str]
) -> None:
    old, new = edit
    assert old in SHIPPED, f"test edit does not apply: {old!r}"
    fleet = load_fleet(write(tmp_path, SHIPPED.replace(old, new, 1)))
    lines = [str(i) for i in fleet.issues]
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]
    assert "\n" not in lines[0]
    assert still_loaded <= set(fleet.clusters)
    bad_cluster = fleet.issues[0].cluster
    assert bad_cluster not in fleet.clusters or expected.startswith("cluster 'dev': name: duplicate")


def test_secret_value_is_never_echoed(tmp_path: Path) -> None:
    text = SHIPPED.replace(
        "    conn_id: s3_playground", "    conn_id: s3_playground\n    endpoint: http://minio:p4ssw0rdXYZ@host:9000", 1
    )
    fleet = load_fleet(write(tmp_path, text))
    assert not fleet.clusters, "a secret in defaults blocks every cluster"
    assert len(fleet.issues) == 1
    assert "p4ssw0rdXYZ" not in str(fleet.issues[0])
    assert "defaults.storage.endpoint: looks like a password in a URL" in str(fleet.issues[0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [\n  - name: a\n", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping with a 'clusters' list"),
        ("clusters: {a: 1}\n", "'clusters' must be a list"),
    ],
    ids=["yaml-syntax", "not-a-mapping", "clusters-not-a-list"],
)
def test_unusable_file_raises_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_fleet(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the fleet config"):
        load_fleet(tmp_path / "nope.yaml")


def test_schedules_may_be_off(tmp_path: Path) -> None:
    text = SHIPPED.replace('full: "0 1 * * *"', "full: off", 1).replace(
        'incremental: "0 */4 * * *"', "incremental: null", 1
    )
    dev = load_fleet(write(tmp_path, text)).get("dev")
    assert dev.schedules.full is None and dev.schedules.incremental is None
    assert dev.schedules.drill == "0 3 * * 6"


def test_importing_the_config_builds_no_validator_until_one_is_needed() -> None:
    """Every DAG-file parse process, task and CLI command imports ``tidbops.config`` and reads the fleet from its
    cache (unpickled, never validated): the models' validators are built on first validation only, and no
    model is instantiated at import (a default instance would build its model's validator)."""
    import subprocess
    import sys

    code = (
        "import tidbops.config as c\n"
        "models = [m for m in vars(c).values() if isinstance(m, type) and issubclass(m, c._Model) and m is not c._Model]\n"
        "assert len(models) > 15, models\n"
        "built = [m.__name__ for m in models if m.__pydantic_complete__]\n"
        "assert not built, built\n"
        "cluster = c.ClusterConfig.model_validate({'name': 'dev', 'pd': ['pd:2379'], 'tidb_conn_id': 'tidb_dev', 'env': 'dev',\n"
        "    'storage': {'uri': 's3://backups/dev'}})\n"
        "assert c.ClusterConfig.__pydantic_complete__ and cluster.schedules == c.Schedules()\n"
        "assert cluster.br.kubernetes is None and cluster.retention == c.RetentionConfig()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
