"""The one redaction: what it masks, what it leaves readable, and what ``find_secret`` recognises."""

from __future__ import annotations

import io
import shlex
import sys

import pytest
from sqlalchemy.engine import make_url

from tidbops.redact import (
    RedactingWriter,
    find_secret,
    is_secret_name,
    redact,
    redact_argv,
    redact_url,
    redacted_output,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        pytest.param(
            "mysql+pymysql://u:hunter2@db:3306/cat?charset=utf8mb4",
            "hunter2",
            "mysql+pymysql://u:***@db:3306/cat",
            id="url-userinfo",
        ),
        pytest.param(
            "mysql+pymysql://u@db/cat?charset=utf8mb4&password=hunter2",
            "hunter2",
            "charset=utf8mb4",
            id="url-query-password",
        ),
        pytest.param(
            "http://ak:p@ss@minio:9000/bucket", "p@ss", "http://ak:***@minio:9000/bucket", id="url-password-with-at"
        ),
        pytest.param(
            "s3://b/p?access-key=AKIAIOSFODNN7EXAMPLE&secret-access-key=wJalrXUtnFEMI%2FK7MDENG",
            "wJalrXUtnFEMI",
            "s3://b/p?access-key=",
            id="br-storage-params",
        ),
        pytest.param(
            "s3://b/p?session-token=FQoGZXIvYXdzEBYaDH&region=us-east-1",
            "FQoGZXIvYXdzEBYaDH",
            "region=us-east-1",
            id="session-token",
        ),
        pytest.param(
            "AWS_SECRET_ACCESS_KEY=wJalr/XUtn+FEMI AWS_REGION=us",
            "wJalr/XUtn+FEMI",
            "AWS_REGION=us",
            id="env-assignment",
        ),
        pytest.param(
            "aws_session_token: IQoJb3JpZ2luX2VjEJr", "IQoJb3JpZ2luX2VjEJr", "aws_session_token: ***", id="yaml-field"
        ),
        pytest.param('{"password": "hun\\"ter2", "user": "root"}', 'hun\\"ter2', '"user": "root"', id="json"),
        pytest.param("key AKIAIOSFODNN7EXAMPLE in use", "IOSFODNN7EXAMPLE", "key AKIA*** in use", id="aws-key-id"),
        pytest.param(
            "br backup full --crypter.key=00112233445566778899aabbccddeeff --pd pd:2379",
            "00112233445566778899aabbccddeeff",
            "--pd pd:2379",
            id="crypter-key-eq",
        ),
        pytest.param(
            "br log start --log.crypter.key 00112233445566778899aabbccddeeff --pd pd:2379",
            "00112233445566778899aabbccddeeff",
            "--log.crypter.key ***",
            id="log-crypter-key-space",
        ),
        pytest.param("mysql --password hunter2 -h db", "hunter2", "-h db", id="password-flag"),
        pytest.param(
            '["br", "--crypter.key", "00ff11ee", "-s", "x"]', "00ff11ee", '"--crypter.key", "***", "-s"', id="json-argv"
        ),
        pytest.param(
            "root:hunter2@tcp(127.0.0.1:4000)/test", "hunter2", "root:***@tcp(127.0.0.1:4000)/test", id="go-dsn"
        ),
        pytest.param(
            "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig", "eyJhbGciOi", "Authorization: Bearer ***", id="auth-header"
        ),
        pytest.param(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA",
            "-----END RSA PRIVATE KEY-----",
            id="pem",
        ),
        pytest.param(
            "https://hooks.slack.com/x?token=xoxb-1234567890-abcdefghij",
            "1234567890-abcdefghij",
            "https://hooks.slack.com/x?token=***",
            id="slack-token",
        ),
        pytest.param(
            "CREATE USER 'app'@'%' IDENTIFIED WITH mysql_native_password BY 'hunter2'",
            "hunter2",
            "IDENTIFIED WITH mysql_native_password BY '***'",
            id="sql-identified-by",
        ),
        pytest.param(
            "?X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=deadbeefcafe&X-Amz-Expires=60",
            "deadbeefcafe",
            "X-Amz-Expires=60",
            id="presigned-url",
        ),
    ],
)
def test_masks(text: str, secret: str, kept: str) -> None:
    shown = redact(text)
    assert secret not in shown
    assert kept in shown
    assert "***" in shown


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("br backup full --crypter.key-file /run/tidbops/k --pd pd:2379", id="key-file-path"),
        pytest.param("AWS_ACCESS_KEY_ID is empty; key_conn_id: br_crypter_uat", id="id-names"),
        pytest.param("Digest 0611cc2fe792f8c146cc97d39b31d9562014cf15f8d41f23a4938ca341f54182", id="digest"),
        pytest.param("[region] [start-key=7480000000000000FF] [end-key=74800000000000] [key=t_1]", id="br-keys"),
        pytest.param("password=&user=root", id="empty-password"),
        pytest.param("restore of task-123456789012 by desk-abcdefghijklmnop passed: 3", id="words"),
        pytest.param("sse_kms_key_id: arn:aws:kms:us-east-1:1:key/abc", id="kms-key-id"),
        pytest.param("mysql+pymysql://root@db:4000/test", id="user-without-password"),
    ],
)
def test_leaves_readable(text: str) -> None:
    assert redact(text) == text


def test_known_secrets_longest_first_anywhere() -> None:
    assert redact("pw=abc; again abcdef", ["abc", "abcdef"]) == "pw=***; again ***"
    assert redact("nothing", [None, "", "  "]) == "nothing"


def test_idempotent() -> None:
    text = "http://a:b@h/?password=x&secret-access-key=y --crypter.key z AKIAIOSFODNN7EXAMPLE"
    assert redact(redact(text)) == redact(text)


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("mysql://u:p@h/db", "a password in a URL"),
        ("s3://b/p?secret-access-key=x", "a credential (secret-access-key=…)"),
        ("AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "an encryption key (hex)"),
        ("ghp_abcdefghijklmnopqrstuvwxyz", "an API token"),
        ("-----BEGIN PRIVATE KEY-----", "a private key"),
        ("s3://tidbops-backups/dev", None),
        ("https://hooks.example.com/x", None),
        ("br_crypter_uat", None),
    ],
)
def test_find_secret(value: str, what: str | None) -> None:
    assert find_secret(value) == what


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("secret_access_key", True),
        ("api-key", True),
        ("crypter.key", True),
        ("token", True),
        ("key_conn_id", False),
        ("sse_kms_key_id", False),
        ("tokens", False),
        ("key", False),
        ("task_name", False),
    ],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


# what the BR command module and the catalog redacted before there was one redaction: still masked
REDACT_CASES = [
    pytest.param("s3://b/p?access-key=AKIA1&secret-access-key=abc/def+g", (), "s3://b/p?access-key=***&secret-access-key=***", id="uri-params"),
    pytest.param("s3://b/p?session-token=tok&region=x", (), "s3://b/p?session-token=***&region=x", id="token-keeps-others"),
    pytest.param("azure://c/p?account-key=K1&sas-token=S2", (), "azure://c/p?account-key=***&sas-token=***", id="azure"),
    pytest.param("br backup --crypter.key=0123abcd -s x", (), "br backup --crypter.key=*** -s x", id="crypter-key-equals"),
    pytest.param("br backup --crypter.key 0123abcd -s x", (), "br backup --crypter.key *** -s x", id="crypter-key-space"),
    pytest.param("--crypter.key-file /run/k", (), "--crypter.key-file /run/k", id="key-file-path-kept"),
    pytest.param("AWS_SECRET_ACCESS_KEY=zzz AWS_ACCESS_KEY_ID=AK", (), "AWS_SECRET_ACCESS_KEY=*** AWS_ACCESS_KEY_ID=***", id="env"),
    pytest.param("failed: password hunter2 and hunter22", ("hunter2", "hunter22"), "failed: password *** and ***", id="known-longest-first"),
    pytest.param("nothing secret here", ("", "  "), "nothing secret here", id="empty-secrets-ignored"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "secrets", "expected"), REDACT_CASES)
def test_br_cases(text: str, secrets: tuple[str, ...], expected: str) -> None:
    assert redact(text, secrets) == expected


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("s3://b/x?access-key=AK&secret-access-key=S3CR3T&x=1", "S3CR3T"),
        ("--crypter.key=0123456789abcdef0123456789abcdef failed", "0123456789abcdef0123456789abcdef"),
        ("mysql://root:hunter2@db:4000/x", "hunter2"),
        ("key AKIAIOSFODNN7EXAMPLE used", "IOSFODNN7EXAMPLE"),
        ("password: letmein", "letmein"),
    ],
)
def test_catalog_error_cases(text: str, hidden: str) -> None:
    assert hidden not in redact(text)
    assert "***" in redact(text)


# ------------------------------------------------------------------------------------------ properties
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
_SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/", min_size=8, max_size=40)
_NOISE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_FORMS = (
    "mysql+pymysql://root:{s}@db:4000/x",
    "s3://b/p?access-key=AK&secret-access-key={s}&region=x",
    "--crypter.key={s}",
    "--log.crypter.key {s}",
    'password: "{s}"',
    "AWS_SECRET_ACCESS_KEY={s}",
    "session-token={s}",
    '{{"password": "{s}"}}',
)


@FUZZ
@given(_NOISE, st.sampled_from(_FORMS), _SECRET, _NOISE)
def test_planted_credentials_never_survive(before: str, form: str, secret: str, after: str) -> None:
    text = f"{before} {form.format(s=secret)} {after}"
    assume(text.count(secret) == 1)  # not also in the noise around it
    assert secret not in redact(text)


@FUZZ
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | _NOISE
        | st.sampled_from(_FORMS).map(lambda f: f.format(s="Zq9xY7wV")),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(_NOISE | st.sampled_from(["password", "token"]), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_json_stays_json(doc: object) -> None:
    import json

    for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False, indent=2)):
        shown = redact(text)
        json.loads(shown)
        assert "Zq9xY7wV" not in shown


@FUZZ
@given(_NOISE)
def test_idempotent_on_anything(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_a_colon_that_ends_a_sentence_is_kept() -> None:
    assert redact("catalog at m://h/db?password=hunter2: refused") == "catalog at m://h/db?password=***: refused"
    assert redact("password=pass:word done") == "password=*** done"


_FIELDISH = st.lists(st.sampled_from([
    "password", "db_password", "--crypter.key", "aws_access_key_id", "key", "id", "token", "x-", "Secret", "mypassword",
    "=", ":", " ", "\t", '"', "'", "\\", "hunter2", "null", ",", "&", "\n", "-", ".", "_", "é",
]), max_size=30).map("".join)  # fmt: skip


@FUZZ
@given(_FIELDISH | _NOISE)
def test_the_fast_field_scan_equals_the_plain_substitution(text: str) -> None:
    from tidbops.redact import _FIELD, _field, _redact_fields

    assert _redact_fields(text) == _FIELD.sub(_field, text)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "unit", ["-a-", "a-", "--a-", "-", "--password ", "a:b@", "://a:", "password=", '\\"password\\": ', "a.b_"]
)
def test_linear_time_on_adversarial_runs(unit: str) -> None:
    """Runs of name characters and separators (what a forged config or log can hold) stay linear."""
    import time

    text = unit * (200_000 // len(unit))
    started = time.perf_counter()
    redact(text)
    find_secret(text)
    assert time.perf_counter() - started < 10  # quadratic here took minutes; linear takes milliseconds


# ------------------------------------------------------------------- the same redaction in other shapes


def test_argv_masks_a_secret_flag_value_whole_and_stays_shell_quoted() -> None:
    argv = ["br", "restore", "full", "--crypter.key", "not-hex-at-all", "--password=p w", "-s", "s3://b/p?x=1",
            "--pd", "pd:2379", "-f", "`my db`.*", "--ratelimit", "hunter2"]  # fmt: skip
    shown = redact_argv(argv, ["hunter2"])
    assert "not-hex-at-all" not in shown and "p w" not in shown and "hunter2" not in shown
    assert shlex.split(shown) == [
        "br", "restore", "full", "--crypter.key", "***", "--password=***", "-s", "s3://b/p?x=1",
        "--pd", "pd:2379", "-f", "`my db`.*", "--ratelimit", "***",
    ]  # fmt: skip


def test_argv_leaves_a_key_file_path_readable() -> None:
    assert shlex.split(redact_argv(["br", "--crypter.key-file", "/run/key"])) == [
        "br",
        "--crypter.key-file",
        "/run/key",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("mysql+pymysql://u:hunter2@db:3306/cat", "mysql+pymysql://u:***@db:3306/cat", id="userinfo"),
        pytest.param(make_url("mysql+pymysql://u:hunter2@db/cat"), "mysql+pymysql://u:***@db/cat", id="url-object"),
        pytest.param(
            "mysql+pymysql://u@db/cat?password=hunter2", "mysql+pymysql://u@db/cat?password=***", id="query-password"
        ),
        pytest.param("sqlite:////tmp/c.db", "sqlite:////tmp/c.db", id="no-secret"),
        pytest.param("not a url hunter2", "<unparseable database URL>", id="unparseable"),
    ],
)
def test_url(url: object, shown: str) -> None:
    assert redact_url(url) == shown


def test_writer_redacts_a_secret_written_in_pieces_once_its_line_ends() -> None:
    target = io.StringIO()
    writer = RedactingWriter(target)
    writer.write("password=hun")
    writer.write("ter2 and more")
    assert target.getvalue() == ""  # the line is not complete: nothing leaves yet
    writer.write("\nnext password=")
    assert target.getvalue() == "password=*** and more\n"
    writer.write("hunter3")
    writer.drain()
    assert target.getvalue() == "password=*** and more\nnext password=***"
    with pytest.raises(TypeError):
        writer.write(b"")  # type: ignore[arg-type]


def test_redacted_output_covers_stdout_and_stderr_and_restores_them(capsys: pytest.CaptureFixture[str]) -> None:
    before = sys.stdout, sys.stderr
    with redacted_output():
        print("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI")
        print("mysql://root:hunter2@db/x", file=sys.stderr, end="")  # a partial last line is drained too
    assert (sys.stdout, sys.stderr) == before
    out, err = capsys.readouterr()
    assert out == "AWS_SECRET_ACCESS_KEY=***\n" and err == "mysql://root:***@db/x"
