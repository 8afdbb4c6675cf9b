"""BR command lines, built by pure functions: an argv list per request, never a shell string.

Every builder takes the cluster's validated config plus one request and returns the full argv (``br``
first). What BR accepts is the contract in ``/work/shared/reference/br-cli.md``:

* booleans are written ``--flag=false`` (``--checksum false`` makes ``false`` a stray positional, and
  every BR subcommand refuses positionals);
* ``--concurrency`` is left out when ``--ratelimit`` is set (BR forces 1 and prints a warning);
* secrets never reach argv: S3 keys go through the environment (``br_env``), the encryption key through
  ``--crypter.key-file`` pointing at a 0600 file, and storage URIs with credentials are refused;
* table filters are checked against BR's table-filter grammar before BR ever sees them.

``tidbops.redact.redact_argv`` renders command lines for logs and plans with secrets replaced by
``***``; ``parse_ts`` reads times the way BR's ``ParseTSString`` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal

from tidbops import tso
from tidbops.br.errors import BRRequestError, InvalidFilterError, InvalidTimestampError
from tidbops.config import ClusterConfig, EncryptionConfig, StorageConfig

BackupKind = Literal["full", "incremental"]
RestoreScope = Literal["full", "db", "table"]
LogSub = Literal["start", "status", "pause", "resume", "stop", "truncate", "metadata"]

UINT64_MAX = (1 << 64) - 1
BR_TZ_REQUIRED = "must set timezone when using datetime format ts, e.g. '2018-05-11 01:42:23+0800'"

_STORAGE_SCHEMES = ("s3://", "local://", "gcs://", "gs://", "azure://", "azblob://", "noop://")
_CREDENTIAL_PARAMS = re.compile(
    r"(?i)(?:^|[?&;])(access[-_]key|secret[-_]access[-_]key|session[-_]token|account[-_]key|sas[-_]token|"
    r"encryption[-_]key)="
)
_TASK_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MAX_FILTER = 512


# ----------------------------------------------------------------------------------------- checks


def _no_controls(value: str, what: str) -> None:
    for ch in value:
        if ord(ch) < 0x20 or ch == "\x7f":
            raise BRRequestError(f"{what} {value!r} contains a control character (newline, tab, NUL, …)")


def _check_storage_uri(uri: str, what: str = "storage URI") -> str:
    if not isinstance(uri, str) or not uri:
        raise BRRequestError(f"{what} is empty; use s3://bucket/prefix or local:///absolute/path")
    if _CREDENTIAL_PARAMS.search(uri) or re.search(r"^[a-z0-9]+://[^/@]*@", uri):  # first: never echo these
        raise BRRequestError(
            f"{what} carries credentials; they must not be in a URI or argv — pass them through the "
            "environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, see br_env)"
        )
    _no_controls(uri, what)
    if any(ch.isspace() for ch in uri):
        raise BRRequestError(f"{what} {uri!r} contains whitespace")
    if not uri.startswith(_STORAGE_SCHEMES):
        raise BRRequestError(f"{what} {uri!r} has no known scheme; use one of {', '.join(_STORAGE_SCHEMES)}")
    return uri


def _check_tso(value: int, flag: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BRRequestError(f"{flag} must be a TSO integer, got {value!r}; use parse_ts() for datetimes")
    if not 0 < value <= UINT64_MAX:
        raise BRRequestError(f"{flag} {value} is not a TSO (1 … 2^64-1)")
    return str(value)


def _check_name(value: str | None, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BRRequestError(f"{what} is required")
    _no_controls(value, what)
    if value != value.strip():
        raise BRRequestError(f"{what} {value!r} has leading or trailing whitespace")
    if len(value) > 64:
        raise BRRequestError(f"{what} {value!r} is longer than 64 characters (a MySQL identifier limit)")
    return value


def _check_path(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BRRequestError(f"{what} is empty")
    _no_controls(value, what)
    return value


def _task_name(value: str | None, cluster: ClusterConfig) -> str:
    name = value or cluster.log_backup.task_name
    if not name:
        raise BRRequestError(
            f"cluster {cluster.name!r}: no log backup task name (pass task_name or set log_backup.task_name)"
        )
    if not _TASK_NAME.match(name):
        raise BRRequestError(f"log backup task name {name!r} is invalid; use letters, digits, '_' or '-'")
    return name


# --------------------------------------------------------------------------------------- filters


_RANGE = re.compile(r"\[!?(?:\\[^0-9a-zA-Z]|[^\\\]])+\]")


def _filter_part_regex(pattern: str, s: str, which: str) -> tuple[str, str]:
    """Consume one database or table pattern from ``s``: what follows it, and the pattern as a regex
    (anchored, except a ``/regexp/``, which BR searches for anywhere in the name)."""
    if not s:
        raise InvalidFilterError(pattern, f"the {which} pattern is missing")
    head = s[0]
    if head == "/":
        i = 1
        while i < len(s):
            if s[i] == "\\":
                i += 2
                continue
            if s[i] == "/":
                break
            i += 1
        if i >= len(s) or i == 1:
            raise InvalidFilterError(pattern, f"the {which} /regexp/ is empty or not closed")
        body = s[1:i]
        try:
            re.compile(body)
        except re.error as exc:
            raise InvalidFilterError(pattern, f"the {which} /regexp/ does not compile ({exc})") from None
        return s[i + 1 :], body
    if head in '`"':
        i = 1
        while i < len(s):
            if s[i] == head:
                if i + 1 < len(s) and s[i + 1] == head:  # a doubled quote is a literal quote
                    i += 2
                    continue
                break
            i += 1
        if i >= len(s):
            kind = "backquoted" if head == "`" else "double-quoted"
            raise InvalidFilterError(pattern, f"the {kind} {which} name is not closed (quotes must pair up)")
        if i == 1:
            raise InvalidFilterError(pattern, f"the quoted {which} name is empty")
        return s[i + 1 :], "^" + re.escape(s[1:i].replace(head * 2, head)) + "$"
    i = 0
    regex = ["^"]
    while i < len(s):
        c = s[i]
        if c == ".":
            break
        if c == "\\":
            if i == len(s) - 1:
                raise InvalidFilterError(pattern, "a filter cannot end with '\\'")
            esc = s[i + 1]
            if esc.isascii() and esc.isalnum():
                raise InvalidFilterError(pattern, f"'\\{esc}' escapes a letter or digit, which BR reserves")
            if esc.isspace():
                raise InvalidFilterError(pattern, "spaces are only allowed inside `backquotes`")
            regex.append(re.escape(esc))
            i += 2
        elif c in "*?":
            regex.append(".*" if c == "*" else ".")
            i += 1
        elif c == "[":
            m = _RANGE.match(s, i)
            if m is None:
                raise InvalidFilterError(pattern, "a character class '[…]' is empty or not closed")
            if any(ch.isspace() for ch in m.group()):
                raise InvalidFilterError(pattern, "spaces are only allowed inside `backquotes`")
            body = m.group()[1:-1]
            negate = body.startswith("!")
            regex.append("[" + ("^" if negate else "") + (body[1:] if negate else body).replace("^", "\\^") + "]")
            i = m.end()
        elif c.isspace():
            raise InvalidFilterError(pattern, "spaces are only allowed inside `backquotes`")
        elif c in "$_" or (c.isascii() and c.isalnum()) or ord(c) >= 0x80:
            regex.append(re.escape(c))
            i += 1
        else:
            raise InvalidFilterError(pattern, f"unexpected character {c!r} (shell and SQL punctuation is not a filter)")
    if i == 0:
        raise InvalidFilterError(pattern, f"the {which} pattern is missing")
    return s[i:], "".join(regex) + "$"


def validate_filter(pattern: str) -> None:
    """See ``compile_filter``; raises ``InvalidFilterError`` the same way, returns nothing."""
    compile_filter(pattern)


def compile_filter(pattern: str) -> tuple[bool, re.Pattern[str], re.Pattern[str]]:
    """One BR table-filter rule: ``(excludes, database regex, table regex)``; ``InvalidFilterError``
    unless ``pattern`` is a rule we accept.

    BR's grammar (docs: table-filter): ``[!]<db-pattern>.<table-pattern>``, each pattern a plain name, a
    wildcard (``*``, ``?``, ``[a-z]``, ``[!a-z]``, ``\\``-escaped punctuation), a `` `backquoted` `` or
    ``"double-quoted"`` name (quotes doubled inside), or a ``/regexp/``. Stricter than BR on purpose:
    ``@file`` imports, comments, control characters and whitespace outside quotes are refused.
    """
    if not isinstance(pattern, str):
        raise InvalidFilterError(repr(pattern), "a filter must be a string")
    if not pattern:
        raise InvalidFilterError(pattern, "the filter is empty")
    if len(pattern) > _MAX_FILTER:
        raise InvalidFilterError(pattern[:40] + "…", f"longer than {_MAX_FILTER} characters")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in pattern):
        raise InvalidFilterError(pattern, "it contains a control character (newline, tab, NUL, …)")
    if pattern != pattern.strip():
        raise InvalidFilterError(pattern, "it has leading or trailing whitespace")
    body = pattern
    if body[0] == "@":
        raise InvalidFilterError(pattern, "@file imports are not allowed; list each rule as its own filter")
    if body[0] == "#":
        raise InvalidFilterError(pattern, "a '#' comment is not a filter")
    if body[0] == "!":
        body = body[1:]
        if not body:
            raise InvalidFilterError(pattern, "'!' must be followed by a '<db>.<table>' pattern")
    rest, db_regex = _filter_part_regex(pattern, body, "database")
    if not rest or rest[0] != ".":
        raise InvalidFilterError(pattern, "missing '.' between the database and table patterns")
    rest, table_regex = _filter_part_regex(pattern, rest[1:], "table")
    if rest:
        raise InvalidFilterError(pattern, f"stray characters {rest!r} after the table pattern")
    return pattern[0] == "!", re.compile(db_regex, re.IGNORECASE), re.compile(table_regex, re.IGNORECASE)


def table_matcher(filters: Sequence[str]) -> Callable[[str, str], bool]:
    """Whether BR's filter ``filters`` selects table ``db.table``: the last rule that matches decides
    (``!`` rules exclude), no match means not selected, names compare case-insensitively (BR's default,
    without ``--case-sensitive``). No filters: every table. Raises ``InvalidFilterError`` like
    ``validate_filter``."""
    if isinstance(filters, str):
        raise BRRequestError("filters must be a list of patterns, not one string")
    rules = [compile_filter(p) for p in filters]

    def selected(db: str, table: str) -> bool:
        if not rules:
            return True
        for negated, db_re, table_re in reversed(rules):
            if db_re.search(db) and table_re.search(table):
                return not negated
        return False

    return selected


def _filter_args(filters: Sequence[str]) -> list[str]:
    if isinstance(filters, str):
        raise BRRequestError("filters must be a list of patterns, not one string")
    out: list[str] = []
    for pattern in filters:
        validate_filter(pattern)
        out += ["-f", pattern]
    return out


# ------------------------------------------------------------------------------------ timestamps


_DATETIME = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,9}))?")
_ZONE = re.compile(r" ?(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)")


def parse_ts(text: str, require_tz: bool, *, local_tz: tzinfo | None = None) -> int:
    """A TSO from BR-style time input (``ParseTSString``).

    An all-digit string is a TSO as is. Anything else must be a datetime ``YYYY-MM-DD HH:MM:SS[.frac]``
    with an optional zone (``+0800``, ``+08:00``, `` +08:00``, ``+08``, ``Z``); BR converts it with
    logical 0. Without a zone: ``require_tz`` (log start/truncate, restore point) fails with BR's own
    text; otherwise the time is read in ``local_tz`` (default: this machine's zone, which is BR's zone
    when BR runs here). An empty string is refused (BR reads it as "now"; pass no flag instead).
    """
    if not isinstance(text, str):
        raise InvalidTimestampError(f"{text!r} is not a time; use a TSO or 'YYYY-MM-DD HH:MM:SS+0800'")
    s = text.strip()
    if not s:
        raise InvalidTimestampError("empty time; use a TSO or a datetime such as '2018-05-11 01:42:23+0800'")
    if re.fullmatch(r"[0-9]+", s):
        value = int(s) if len(s) <= 20 else UINT64_MAX + 1
        if value > UINT64_MAX:
            raise InvalidTimestampError(f"{s[:30]!r} is not a TSO: larger than 2^64-1")
        return value
    m = _DATETIME.match(s)
    zone = _ZONE.fullmatch(s, m.end()) if m else None
    if m is None or (zone is None and m.end() != len(s)):
        raise InvalidTimestampError(
            f"{text!r} is neither a TSO nor a datetime; use a TSO (e.g. 435844546560000000) or "
            "'YYYY-MM-DD HH:MM:SS+0800'"
        )
    if zone is None and require_tz:
        raise InvalidTimestampError(BR_TZ_REQUIRED)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
    try:
        naive = datetime(year, month, day, hour, minute, second, micros)
        if zone is None:
            dt = naive.replace(tzinfo=local_tz) if local_tz is not None else naive.astimezone()
        elif zone.group(1):
            dt = naive.replace(tzinfo=UTC)
        else:
            hours, minutes = int(zone.group(3)), int(zone.group(4) or "0")
            if hours > 14 or minutes > 59:
                raise ValueError(f"bad zone offset {zone.group(0).strip()}")
            sign = -1 if zone.group(2) == "-" else 1
            dt = naive.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
        return tso.from_datetime(dt)
    except (ValueError, OverflowError) as exc:
        raise InvalidTimestampError(f"{text!r} is not a valid datetime: {exc}") from None


# ------------------------------------------------------------------------------ environment/paths


def br_env(access_key: str, secret_key: str, session_token: str | None = None) -> dict[str, str]:
    """The environment that carries S3 credentials to BR (BR passes them on to TiKV by default)."""
    env: dict[str, str] = {}
    for name, value in (
        ("AWS_ACCESS_KEY_ID", access_key),
        ("AWS_SECRET_ACCESS_KEY", secret_key),
        ("AWS_SESSION_TOKEN", session_token),
    ):
        if value is None and name == "AWS_SESSION_TOKEN":
            continue
        if not isinstance(value, str) or not value.strip():
            raise BRRequestError(f"{name} is empty; the storage connection needs an access key and a secret key")
        if any(ord(ch) < 0x20 for ch in value):
            raise BRRequestError(f"{name} contains a control character")
        env[name] = value
    return env


# -------------------------------------------------------------------------------------- builders


def _pd(cluster: ClusterConfig) -> list[str]:
    return ["--pd", ",".join(cluster.pd), *tls_args(cluster)]


def tls_args(cluster: ClusterConfig) -> list[str]:
    """``--ca/--cert/--key`` for a TLS cluster (BR's ``task.TLSConfig``: TLS is on when ``--ca`` is set), from
    PEM paths: ``tls.conn_id`` must first be resolved into files (``BRHook.session`` does it)."""
    tls = cluster.tls
    if tls is None:
        return []
    if tls.conn_id is not None or tls.ca is None:
        raise BRRequestError(
            f"cluster {cluster.name!r}: tls.conn_id {tls.conn_id!r} is not resolved into PEM files; "
            "run BR through a session (BRHook.session) that writes them"
        )
    args = ["--ca", _check_path(tls.ca, "tls.ca")]
    if tls.cert is not None and tls.key is not None:
        args += ["--cert", _check_path(tls.cert, "tls.cert"), "--key", _check_path(tls.key, "tls.key")]
    return args


def _storage(flag: str, uri: str) -> list[str]:
    return [flag, _check_storage_uri(uri, flag.lstrip("-"))]


def _s3_options(uris: Iterable[str], storage: StorageConfig) -> list[str]:
    if not any(u.startswith("s3://") for u in uris):
        return []
    args: list[str] = []
    if storage.endpoint:
        args += ["--s3.endpoint", storage.endpoint]
    if storage.region:
        args += ["--s3.region", storage.region]
    if storage.sse:
        args += ["--s3.sse", storage.sse]
    if storage.sse_kms_key_id:
        args += ["--s3.sse-kms-key-id", storage.sse_kms_key_id]
    return args


def _crypter(encryption: EncryptionConfig | None, key_file: str | None, owner: str) -> list[str]:
    if encryption is None:
        if key_file is not None:
            raise BRRequestError(f"cluster {owner!r} has no br.encryption, but a crypter key file was given")
        return []
    if not key_file:
        raise BRRequestError(
            f"cluster {owner!r} encrypts backups ({encryption.method}): pass crypter_key_file, "
            "a 0600 file holding the hex key (the key never goes into argv)"
        )
    return ["--crypter.method", encryption.method, "--crypter.key-file", _check_path(key_file, "crypter key file")]


def _log_crypter(encryption: EncryptionConfig | None, key_file: str | None, owner: str) -> list[str]:
    """``--log.crypter.method`` + ``--log.crypter.key-file`` (BR v8.4+, ``task/common.go``): an owner-key
    cluster's log key (#17), a 0600 file, never argv."""
    if key_file is None:
        return []
    if encryption is None or not encryption.owner_key:
        raise BRRequestError(f"cluster {owner!r} does not encrypt its log backup with owner-held keys")
    return ["--log.crypter.method", encryption.method, "--log.crypter.key-file", _check_path(key_file, "log key file")]


def _tail(log_file: str | None) -> list[str]:
    return ["--log-file", _check_path(log_file, "log file")] if log_file is not None else []


def _bool(flag: str, value: bool) -> str:
    return f"{flag}={'true' if value else 'false'}"


def _br(cluster: ClusterConfig, br_path: str | None) -> str:
    return _check_path(br_path or cluster.br.path, "br path")


def backup_argv(
    cluster: ClusterConfig,
    *,
    kind: BackupKind,
    storage_uri: str,
    backupts: int | None = None,
    lastbackupts: int | None = None,
    log_file: str | None = None,
    br_path: str | None = None,
    crypter_key_file: str | None = None,
    filters: Sequence[str] = (),
) -> list[str]:
    """``br backup full`` (a full snapshot, or incremental with ``--lastbackupts``)."""
    if kind == "full":
        if lastbackupts is not None:
            raise BRRequestError("a full backup takes no lastbackupts (that makes it incremental)")
    elif kind == "incremental":
        if lastbackupts is None:
            raise BRRequestError("an incremental backup needs lastbackupts: the BackupTS of the previous backup")
    else:
        raise BRRequestError(f"backup kind {kind!r} is not 'full' or 'incremental'")
    if backupts is not None and lastbackupts is not None and backupts <= lastbackupts:
        raise BRRequestError(f"backupts {backupts} must be after lastbackupts {lastbackupts}")
    br = cluster.br
    argv = [_br(cluster, br_path), "backup", "full", *_pd(cluster), *_storage("--storage", storage_uri)]
    if backupts is not None:
        argv += ["--backupts", _check_tso(backupts, "--backupts")]
    if lastbackupts is not None:
        argv += ["--lastbackupts", _check_tso(lastbackupts, "--lastbackupts")]
    if br.ratelimit_mib is not None:
        argv += ["--ratelimit", str(br.ratelimit_mib)]  # BR forces concurrency 1: say nothing about it
    else:
        argv += ["--concurrency", str(br.concurrency)]
    argv += ["--compression", br.compression, _bool("--checksum", br.checksum)]
    argv += _filter_args(filters)
    argv += _s3_options([storage_uri], cluster.storage)
    argv += _crypter(br.encryption, crypter_key_file, cluster.name)
    return argv + _tail(log_file)


def restore_full_argv(
    cluster: ClusterConfig,
    *,
    storage_uri: str,
    scope: RestoreScope = "full",
    db: str | None = None,
    table: str | None = None,
    filters: Sequence[str] = (),
    source: ClusterConfig | None = None,
    with_sys_table: bool | None = None,
    log_file: str | None = None,
    br_path: str | None = None,
    crypter_key_file: str | None = None,
) -> list[str]:
    """``br restore full|db|table`` into ``cluster`` from a snapshot of ``source`` (default: the same cluster).

    The target's PD, checksum and rate limit apply; the source's storage options and encryption apply
    to reading the backup.
    """
    origin = source or cluster
    argv = [_br(cluster, br_path), "restore"]
    if scope == "full":
        if db is not None or table is not None:
            raise BRRequestError("a full restore takes no db/table; use filters, or scope 'db'/'table'")
        argv += ["full"]
    elif scope == "db":
        if table is not None:
            raise BRRequestError("a database restore takes no table; use scope 'table'")
        argv += ["db", "--db", _check_name(db, "database name")]
    elif scope == "table":
        argv += ["table", "--db", _check_name(db, "database name"), "--table", _check_name(table, "table name")]
    else:
        raise BRRequestError(f"restore scope {scope!r} is not 'full', 'db' or 'table'")
    if filters and scope != "full":
        raise BRRequestError(f"filters only apply to a full restore, not to scope {scope!r}")
    argv += [*_pd(cluster), *_storage("--storage", storage_uri)]
    if cluster.br.ratelimit_mib is not None:
        argv += ["--ratelimit", str(cluster.br.ratelimit_mib)]
    argv += [_bool("--checksum", cluster.br.checksum)]
    if with_sys_table is not None:
        argv += [_bool("--with-sys-table", with_sys_table)]
    argv += _filter_args(filters)
    argv += _s3_options([storage_uri], origin.storage)
    argv += _crypter(origin.br.encryption, crypter_key_file, origin.name)
    return argv + _tail(log_file)


def restore_point_argv(
    cluster: ClusterConfig,
    *,
    log_storage_uri: str,
    full_backup_storage_uri: str | None = None,
    restored_ts: int | None = None,
    start_ts: int | None = None,
    filters: Sequence[str] = (),
    source: ClusterConfig | None = None,
    with_sys_table: bool | None = None,
    log_file: str | None = None,
    br_path: str | None = None,
    crypter_key_file: str | None = None,
    log_crypter_key_file: str | None = None,
) -> list[str]:
    """``br restore point`` (PITR): a snapshot plus the logs up to ``restored_ts`` (default: the log end).

    BR v8 refuses ``--start-ts`` together with ``--full-backup-storage`` (the snapshot's BackupTS is
    the start), so this does too. The crypter flags decrypt the snapshot part; an owner-key source's log
    is decrypted with its log key (``log_crypter_key_file``: ``--log.crypter.*``, #17).
    """
    origin = source or cluster
    if start_ts is not None and full_backup_storage_uri is not None:
        raise BRRequestError("start_ts and full_backup_storage_uri are mutually exclusive (BR v8)")
    if start_ts is not None and restored_ts is not None and start_ts > restored_ts:
        raise BRRequestError(f"start_ts {start_ts} is after restored_ts {restored_ts}")
    argv = [
        _br(cluster, br_path),
        "restore",
        "point",
        *_pd(cluster),
        *_storage("--storage", log_storage_uri),
    ]
    uris = [log_storage_uri]
    if full_backup_storage_uri is not None:
        argv += _storage("--full-backup-storage", full_backup_storage_uri)
        uris.append(full_backup_storage_uri)
    if start_ts is not None:
        argv += ["--start-ts", _check_tso(start_ts, "--start-ts")]
    if restored_ts is not None:
        argv += ["--restored-ts", _check_tso(restored_ts, "--restored-ts")]
    argv += [_bool("--checksum", cluster.br.checksum)]
    if with_sys_table is not None:
        argv += [_bool("--with-sys-table", with_sys_table)]
    argv += _filter_args(filters)
    argv += _s3_options(uris, origin.storage)
    if full_backup_storage_uri is not None:
        argv += _crypter(origin.br.encryption, crypter_key_file, origin.name)
    elif crypter_key_file is not None:
        raise BRRequestError("a crypter key file only applies with full_backup_storage_uri (the snapshot part)")
    argv += _log_crypter(origin.br.encryption, log_crypter_key_file, origin.name)
    return argv + _tail(log_file)


def log_argv(
    cluster: ClusterConfig,
    sub: LogSub,
    *,
    task_name: str | None = None,
    storage_uri: str | None = None,
    start_ts: int | None = None,
    until: int | None = None,
    gc_ttl_seconds: int | None = None,
    json_output: bool = True,
    dry_run: bool = False,
    log_file: str | None = None,
    br_path: str | None = None,
    log_crypter_key_file: str | None = None,
) -> list[str]:
    """``br log start|status|pause|resume|stop|truncate|metadata``.

    ``task_name`` defaults to the cluster's ``log_backup.task_name`` (``status`` without one lists every
    task); ``storage_uri`` defaults to the cluster's log storage. ``truncate`` always passes ``-y`` and
    needs ``until`` (a TSO); ``status`` prints JSON unless ``json_output=False``. ``truncate`` and
    ``metadata`` only read the storage, so they get no ``--pd``.
    """
    argv = [_br(cluster, br_path), "log", sub]
    if start_ts is not None and sub != "start":
        raise BRRequestError(f"start_ts only applies to 'log start', not 'log {sub}'")
    if until is not None and sub != "truncate":
        raise BRRequestError(f"until only applies to 'log truncate', not 'log {sub}'")
    if gc_ttl_seconds is not None and sub != "pause":
        raise BRRequestError(f"gc_ttl_seconds only applies to 'log pause', not 'log {sub}'")
    if dry_run and sub != "truncate":
        raise BRRequestError(f"dry_run only applies to 'log truncate', not 'log {sub}'")
    if log_crypter_key_file is not None and sub != "start":
        raise BRRequestError(f"a log key file only applies to 'log start', not 'log {sub}'")
    uri = storage_uri or cluster.log_storage_uri
    uses_storage = sub in ("start", "truncate", "metadata")
    if storage_uri is not None and not uses_storage:
        raise BRRequestError(f"'log {sub}' reads PD, not the storage; it takes no storage_uri")
    if sub == "start":
        argv += ["--task-name", _task_name(task_name, cluster), *_pd(cluster), "--storage", _check_storage_uri(uri)]
        if start_ts is not None:
            argv += ["--start-ts", _check_tso(start_ts, "--start-ts")]
        argv += _log_crypter(cluster.br.encryption, log_crypter_key_file, cluster.name)
    elif sub == "status":
        argv += _pd(cluster)
        if task_name is not None:
            argv += ["--task-name", _task_name(task_name, cluster)]
        if json_output:
            argv += ["--json"]
    elif sub in ("pause", "resume", "stop"):
        argv += ["--task-name", _task_name(task_name, cluster), *_pd(cluster)]
        if gc_ttl_seconds is not None:
            if isinstance(gc_ttl_seconds, bool) or not isinstance(gc_ttl_seconds, int) or gc_ttl_seconds < 1:
                raise BRRequestError(f"gc_ttl_seconds must be a positive integer, got {gc_ttl_seconds!r}")
            argv += ["--gc-ttl", str(gc_ttl_seconds)]
    elif sub == "truncate":
        if until is None:
            raise BRRequestError("'log truncate' needs until: the TSO before which log data is deleted")
        argv += ["--storage", _check_storage_uri(uri), "--until", _check_tso(until, "--until"), "-y"]
        if dry_run:
            argv += ["--dry-run"]
    elif sub == "metadata":
        argv += ["--storage", _check_storage_uri(uri)]
    else:
        raise BRRequestError(f"'log {sub}' is not a BR log subcommand")
    if uses_storage:
        argv += _s3_options([uri], cluster.storage)
    return argv + _tail(log_file)


def debug_checksum_argv(
    cluster: ClusterConfig,
    *,
    storage_uri: str,
    log_file: str | None = None,
    br_path: str | None = None,
    crypter_key_file: str | None = None,
) -> list[str]:
    """``br debug checksum`` (hidden): BR re-reads every data file of the backup at ``storage_uri`` and
    compares its SHA-256 with the one in ``backupmeta`` (verification tier 2, #16).

    It only reads the storage, so it gets no ``--pd``; an encrypted backup needs the crypter flags to
    decrypt its ``backupmeta`` (the key only as a file). Success prints ``backup data checksum succeed!``
    on stdout; see ``tidbops.br.output.parse_debug_checksum``.
    """
    argv = [_br(cluster, br_path), "debug", "checksum", *_storage("--storage", storage_uri)]
    argv += _s3_options([storage_uri], cluster.storage)
    argv += _crypter(cluster.br.encryption, crypter_key_file, cluster.name)
    return argv + _tail(log_file)
