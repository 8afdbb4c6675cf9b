"""The servers integration tests run against: an S3 endpoint (moto in server mode) and MariaDB."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servers import free_port
from tidbops_playground.mariadb import MariaDBInstance, find_binary
from tidbops_playground.s3server import S3Server


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 endpoint for the module's tests (each makes its own bucket)."""
    s3 = S3Server(tmp_path_factory.mktemp("s3"), free_port())
    s3.start()
    try:
        yield s3
    finally:
        s3.stop()


def real_mariadb_version() -> str:
    """The binary's own version string (``10.11.19-MariaDB-0+deb12u1``): the server as it really is."""
    out = subprocess.run([find_binary("mariadbd"), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Ver (\S+)", out)
    assert match, out
    return match.group(1)


def _mariadb(base: Path, **kwargs: str) -> Iterator[MariaDBInstance]:
    instance = MariaDBInstance(base, free_port(), secrets.token_hex(12), **kwargs)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBInstance]:
    """A MariaDB server reporting its own version (each test makes and drops its own database)."""
    yield from _mariadb(tmp_path_factory.mktemp("mariadb"), version_string=real_mariadb_version())


@pytest.fixture(scope="session")
def mariadb_as_tidb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBInstance]:
    """As the playground runs its clusters: reporting ``8.0.11-TiDB-v8.5.1`` (a MySQL 8 version)."""
    yield from _mariadb(tmp_path_factory.mktemp("mariadb-as-tidb"))
