"""PyMySQL's "preferred TLS" context, built once per process (``share_preferred_tls_context``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

CODE = """
import ssl, sys
import pymysql
from tidbops.connections import share_preferred_tls_context

def conn(**kw):
    return pymysql.connections.Connection(host="127.0.0.1", port=9, user="u", defer_connect=True, **kw)

before = [conn().ctx for _ in range(2)]
assert before[0] is not before[1]  # PyMySQL alone: a new context per connection
share_preferred_tls_context()
share_preferred_tls_context()  # idempotent
first, second = conn(), conn()
assert first.ctx is second.ctx and first.ssl and not first._ssl_required  # offered, not required
assert first.ctx.verify_mode == before[0].verify_mode == ssl.CERT_NONE
assert first.ctx.check_hostname is before[0].check_hostname is False
asked = conn(ssl={"ca": sys.argv[1]})  # TLS options: a context of its own, verifying
assert asked.ctx is not first.ctx and asked.ctx.verify_mode == ssl.CERT_REQUIRED and asked._ssl_required
assert not conn(ssl_disabled=True).ssl
"""


def test_a_connection_without_tls_options_reuses_one_preferred_context() -> None:
    """In a fresh interpreter: the patch is process-wide, the way a task process applies it."""
    import certifi

    subprocess.run([sys.executable, "-c", CODE, certifi.where()], check=True)
