"""SQL TLS read from a connection's extra: the same settings reach pymysql and the SQLAlchemy URL."""

from __future__ import annotations

import ssl

import pytest

from tidbops.connections import SQLTLS, sql_tls

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({}, None, id="nothing"),
        pytest.param({"ssl_ca": "/ca.pem"}, SQLTLS(ca="/ca.pem"), id="flat-ca"),
        pytest.param({"ssl_ca": " /ca.pem "}, SQLTLS(ca="/ca.pem"), id="spaces-trimmed"),
        pytest.param(
            {"ssl_ca": "/ca.pem", "ssl_cert": "/c.pem", "ssl_key": "/k.pem"},
            SQLTLS("/ca.pem", "/c.pem", "/k.pem"),
            id="flat-mutual",
        ),
        pytest.param({"ssl": {"ca": "/ca.pem"}}, SQLTLS(ca="/ca.pem"), id="provider-dict"),
        pytest.param(
            {"ssl": '{"ca": "/ca.pem", "verify": false}'}, SQLTLS("/ca.pem", verify=False), id="provider-json"
        ),
        pytest.param({"ssl_verify": "false"}, SQLTLS(verify=False), id="encrypt-only"),
        pytest.param({"ssl_ca": "/ca.pem", "ssl_verify": "yes"}, SQLTLS("/ca.pem"), id="verify-word"),
    ],
)
def test_extras_read(extra: dict[str, object], expected: SQLTLS | None) -> None:
    assert sql_tls(extra) == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param({"ssl_ca": "/ca.pem", "ssl_cert": "/c.pem"}, "ssl_cert and ssl_key go together", id="cert-only"),
        pytest.param({"ssl_key": "/k.pem"}, "ssl_cert and ssl_key go together", id="key-only"),
        pytest.param({"ssl_verify": "true"}, "no ssl_ca to verify", id="verify-without-ca"),
        pytest.param({"ssl_ca": "/ca.pem", "ssl_verify": "maybe"}, "must be true or false", id="bad-flag"),
        pytest.param({"ssl": "{not json"}, "not a JSON object", id="bad-json"),
        pytest.param({"ssl": ["/ca.pem"]}, "must be an object", id="not-an-object"),
    ],
)
def test_bad_extras_say_what_is_wrong(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sql_tls(extra)


def test_verified_tls_checks_the_certificate_and_the_host_name() -> None:
    tls = SQLTLS("/ca.pem", "/c.pem", "/k.pem")
    assert tls.pymysql_ssl() == {
        "ca": "/ca.pem",
        "cert": "/c.pem",
        "key": "/k.pem",
        "check_hostname": True,
        "verify_mode": ssl.CERT_REQUIRED,
    }
    assert tls.url_query() == {
        "ssl_ca": "/ca.pem",
        "ssl_cert": "/c.pem",
        "ssl_key": "/k.pem",
        "ssl_check_hostname": "true",
    }


def test_unverified_tls_encrypts_without_checking() -> None:
    tls = SQLTLS("/ca.pem", verify=False)
    assert tls.pymysql_ssl() == {"check_hostname": False, "verify_mode": ssl.CERT_NONE}
    assert tls.url_query() == {"ssl_check_hostname": "false"}


def test_pymysql_builds_the_context_we_describe(tmp_path: pytest.TempPathFactory) -> None:
    """pymysql's own context from our dict: verification on, host name checked (a real CA file)."""
    import pymysql.connections

    from tidbops_playground.tlsgen import make_ca  # the playground's generator: a real PEM

    ca = make_ca(tmp_path)  # type: ignore[arg-type]
    ctx = pymysql.connections.Connection._create_ssl_ctx(None, SQLTLS(str(ca.ca)).pymysql_ssl())
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    ctx = pymysql.connections.Connection._create_ssl_ctx(None, SQLTLS(str(ca.ca), verify=False).pymysql_ssl())
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
