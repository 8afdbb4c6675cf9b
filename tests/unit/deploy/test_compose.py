"""The docker-compose stack, held honest without a Docker engine: valid against the Compose spec, every
reference resolves, images pinned, versions agree (TiDB == br, Airflow == requirements.txt), connections of
the compose fleet defined, ports unique, healthchecks present. What runs: `docker-compose config -q` when
Debian's docker-compose client is installed (scripts/system-deps.sh); never `up`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tests.conftest import REPO
from tidbops.config import load_fleet

pytestmark = pytest.mark.unit

COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
FLEET = REPO / "include/config/compose.yaml"
# reference material gathered beside the repository (never committed): $TIDBOPS_REFERENCE_DIR, else the
# checkout's sibling ../shared/reference, else this workplace's /work/shared/reference (CI's clean clone of
# main may live elsewhere on the same machine)
_REFERENCE_DIRS = [
    Path(d)
    for d in (os.environ.get("TIDBOPS_REFERENCE_DIR"), REPO.parent / "shared/reference", "/work/shared/reference")
    if d
]
SCHEMA = next(
    (d / "schemas/compose-spec.json" for d in _REFERENCE_DIRS if (d / "schemas/compose-spec.json").is_file()),
    _REFERENCE_DIRS[0] / "schemas/compose-spec.json",
)
PLACEHOLDER = "change-me"
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


COMPOSE = _compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} with the values of ``env``."""

    def one(match: re.Match[str]) -> str:
        name, tail = match.group(1), match.group(2) or ""
        if name in env:
            return env[name]
        if tail.startswith((":-", "-")):
            return tail.split("-", 1)[1]
        raise AssertionError(f"${{{name}}} is neither in .env.example nor has a default")

    return VARIABLE.sub(one, text)


def _one_shot_jobs() -> set[str]:
    """Services others wait for to complete (airflow-init, tidb-init, minio-init): they need no healthcheck."""
    return {
        target
        for service in SERVICES.values()
        for target, how in _depends_on(service).items()
        if how.get("condition") == "service_completed_successfully"
    }


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    return {name: {} for name in deps} if isinstance(deps, list) else deps


def _image_tag(image: str) -> tuple[str, str]:
    name, sep, tag = image.rpartition(":")
    assert sep and "/" not in tag, f"{image}: no tag"
    return name, tag


def test_valid_against_the_compose_spec() -> None:
    if not SCHEMA.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SCHEMA} is missing in CI")
        pytest.skip(f"{SCHEMA} is not on this machine (reference material, not in the repository)")
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_every_dependency_exists_and_its_condition_can_be_met() -> None:
    one_shot = _one_shot_jobs()
    for name, service in SERVICES.items():
        for target, how in _depends_on(service).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            condition = how.get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target} to be healthy: no healthcheck"
            if condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") in (None, "no"), f"{target} is awaited to end but restarts"
            if "profiles" in SERVICES[target]:  # never required from a service outside that profile
                assert set(service.get("profiles", [])) & set(SERVICES[target]["profiles"]), (name, target)
    assert one_shot == {"airflow-init", "tidb-init", "minio-init"}


def _volume_sources() -> Iterator[tuple[str, str]]:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
            yield name, source


def test_named_volumes_are_declared_and_used_and_bind_mounts_exist() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for name, source in _volume_sources():
        if source.startswith((".", "/")):
            assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repository"
        else:
            assert source in declared, f"{name} uses volume {source}, not declared"
            used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def test_networks_referenced_exist() -> None:
    declared = set(COMPOSE.get("networks") or {}) | {"default"}
    for name, service in SERVICES.items():
        for network in service.get("networks", []):
            assert network in declared, f"{name} joins unknown network {network}"


def test_every_image_is_pinned_to_an_exact_tag() -> None:
    for name, service in SERVICES.items():
        assert "image" in service, f"{name} has no image"
        _, tag = _image_tag(service["image"])
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {service['image']} is not an exact tag"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            _, tag = _image_tag(line.split()[1])
            assert tag != "latest" and re.search(r"\d", tag), line


def test_tidb_images_are_the_version_of_the_br_in_the_dockerfile() -> None:
    br = re.search(r"^FROM pingcap/br:(\S+) AS br$", DOCKERFILE.read_text(), re.M)
    assert br, "the Dockerfile copies br from pingcap/br:<version>"
    assert re.search(r"^COPY --from=br /br /usr/local/bin/br$", DOCKERFILE.read_text(), re.M)
    tidb = {
        name: _image_tag(s["image"])
        for name, s in SERVICES.items()
        if _image_tag(s["image"])[0] in ("pingcap/pd", "pingcap/tikv", "pingcap/tidb")
    }
    assert {image for image, _ in tidb.values()} == {"pingcap/pd", "pingcap/tikv", "pingcap/tidb"}
    assert len(tidb) == 6, tidb  # two clusters
    assert {tag for _, tag in tidb.values()} == {br.group(1)}, (tidb, br.group(1))
    assert re.fullmatch(r"v8\.5\.\d+", br.group(1))


def test_the_airflow_base_image_is_the_version_requirements_pins() -> None:
    base = re.search(r"^FROM apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)$", DOCKERFILE.read_text(), re.M)
    pin = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert base and pin, "FROM apache/airflow:<version>-python<x.y> and apache-airflow==<version>"
    assert base.group(1) == pin.group(1)
    assert tuple(map(int, base.group(2).split("."))) >= (3, 11)


def test_host_ports_are_unique() -> None:
    seen: dict[str, str] = {}
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            host = str(port["published"]) if isinstance(port, dict) else str(port).rsplit(":", 1)[0]
            assert host not in seen, f"{name} and {seen[host]} both publish {host}"
            seen[host] = name
    assert {"8080", "4000", "4001", "9000"} <= set(seen)


def test_long_running_services_have_a_healthcheck() -> None:
    one_shot = _one_shot_jobs()
    for name, service in SERVICES.items():
        if name in one_shot:
            assert "restart" not in service, name
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"] not in (["CMD", "true"], "true"), f"{name}: a healthcheck that cannot fail"


def _conn_ids(value: object) -> Iterator[str]:
    """Every ``*conn_id`` value anywhere in the loaded fleet (clusters, routes, catalog, nested models)."""
    if isinstance(value, BaseModel):
        for field, item in value:
            if field.endswith("conn_id") and isinstance(item, str):
                yield item
            else:
                yield from _conn_ids(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _conn_ids(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _conn_ids(item)


def test_the_compose_fleet_loads_with_the_projects_loader() -> None:
    fleet = load_fleet(FLEET)
    assert fleet.ok, fleet.issues
    assert [c.name for c in fleet.sources()] == ["demo"]
    assert [c.name for c in fleet.clusters.values() if c.scratch] == ["scratch1"]
    assert fleet.catalog.conn_id, "a shared catalog: the celery profile runs tasks on several hosts"
    hosts = {c.name: c.pd[0].split(":")[0] for c in fleet.clusters.values()}
    assert hosts == {"demo": "pd", "scratch1": "scratch-pd"} and set(hosts.values()) <= set(SERVICES)


def test_every_connection_the_compose_fleet_names_is_defined_from_env() -> None:
    fleet = load_fleet(FLEET)
    wanted = set(_conn_ids(fleet.clusters)) | set(_conn_ids(fleet.alert_routes)) | set(_conn_ids(fleet.catalog))
    assert {"tidb_demo", "tidb_scratch1", "s3_minio", "tidbops_catalog"} <= wanted
    env = COMPOSE["x-airflow-common"]["environment"]
    example = _env_example()
    defined = {
        key.removeprefix("AIRFLOW_CONN_").lower(): value
        for key, value in env.items()
        if key.startswith("AIRFLOW_CONN_")
    }
    assert wanted <= set(defined), f"not defined: {wanted - set(defined)}"
    for conn_id, raw in defined.items():
        secrets = {m.group(1) for m in VARIABLE.finditer(raw)}
        assert secrets and secrets <= set(example), (conn_id, secrets - set(example))
        conn = json.loads(_interpolate(raw, example))  # placeholders in: still valid JSON
        assert conn["conn_type"] in ("mysql", "aws"), conn_id
        assert PLACEHOLDER in json.dumps(conn), f"{conn_id}: its secret is not read from .env"
        if conn["conn_type"] == "mysql":
            assert conn["host"] in SERVICES, (conn_id, conn["host"])


def test_env_example_holds_placeholders_only_and_every_variable_compose_needs() -> None:
    example = _env_example()
    for key, value in example.items():
        if key != "AIRFLOW_EXECUTOR":
            assert value == PLACEHOLDER, f"{key}: .env.example holds placeholders only"
    text = COMPOSE_FILE.read_text()
    required = {m.group(1) for m in VARIABLE.finditer(text) if not (m.group(2) or "").startswith((":-", "-"))}
    assert required <= set(example), f"missing from .env.example: {required - set(example)}"
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()


def test_source_tikv_runs_log_backup() -> None:
    mounts = dict(v.split(":")[:2] for v in SERVICES["tikv"]["volumes"])
    assert mounts["./deploy/compose/tikv.toml"] == "/etc/tikv/tikv.toml"
    assert "--config=/etc/tikv/tikv.toml" in SERVICES["tikv"]["command"]
    config = tomllib.loads((REPO / "deploy/compose/tikv.toml").read_text())
    assert config["log-backup"]["enable"] is True


def test_the_celery_profile_adds_redis_and_a_worker_and_local_is_the_default() -> None:
    assert {n for n, s in SERVICES.items() if "celery" in s.get("profiles", [])} == {"redis", "airflow-worker"}
    env = COMPOSE["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    airflow = {n for n, s in SERVICES.items() if s.get("image", "").startswith("tidbops-airflow:")}
    expected = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
    assert airflow == expected | {"airflow-worker", "airflow-init"}
    for name in airflow:
        assert SERVICES[name].get("build") == ".", name


@pytest.mark.parametrize("profile", [None, "celery"], ids=["local", "celery"])
def test_docker_compose_config_accepts_it(tmp_path: Path, profile: str | None) -> None:
    client = shutil.which("docker-compose")
    if client is None:
        pytest.skip("Debian's docker-compose client is not installed (scripts/system-deps.sh installs it)")
    env_file = tmp_path / "env"
    env_file.write_text(ENV_EXAMPLE.read_text().replace(PLACEHOLDER, "abc123"))
    argv = [client, "--env-file", str(env_file), "-f", str(COMPOSE_FILE)]
    argv += ["--profile", profile] if profile else []
    done = subprocess.run([*argv, "config", "-q"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr


def test_the_smoke_script_parses_and_triggers_dags_the_compose_fleet_has() -> None:
    script = REPO / "scripts/compose-smoke.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, timeout=30).returncode == 0
    text = script.read_text()
    dags = re.search(r"^DAGS=\((.*)\)$", text, re.M)
    assert dags, "DAGS=(...) in scripts/compose-smoke.sh"
    fleet = load_fleet(FLEET)
    source = fleet.sources()[0].name
    assert dags.group(1).split() == [
        f"tidb_backup_full__{source}",
        f"tidb_log_backup_check__{source}",
        f"tidb_restore_drill__{source}",
    ]
    assert "/auth/token" in text and "/api/v2/dags/" in text and "--data @" in text


def _dockerignored(path: str) -> bool:
    """Docker's .dockerignore matching, for the plain patterns ours uses (no ! exceptions)."""
    import fnmatch

    patterns = [
        p.strip().rstrip("/")
        for p in (REPO / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")], "exceptions are not handled here"
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(prefix.rsplit("/", 1)[-1], pattern[3:])
            ):
                return True
    return False


def test_the_dockerfile_copies_what_exists_in_the_build_context_and_never_the_playground() -> None:
    copies = [
        line.split()[1:]
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
    ]
    sources = [arg for args in copies for arg in args[:-1] if not arg.startswith("--")]
    assert {"requirements.txt", "constraints.txt", "setup.py", "include/tidbops", "dags"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"the Dockerfile copies {source}, which does not exist"
        assert not _dockerignored(source), f".dockerignore leaves {source} out of the build context"
    assert not [s for s in sources if "playground" in s]
    assert _dockerignored("include/tidbops_playground/br/cli.py") and _dockerignored("playground/setup.py")
    assert _dockerignored(".env") and _dockerignored(".env.prod") and _dockerignored(".venv/bin/python")
    assert not _dockerignored("include/tidbops/config.py") and not _dockerignored("dags/tidb_restore.py")
