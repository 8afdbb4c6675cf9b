"""Entry point: cobra-like dispatch, BR's ``Init`` (log file, ``Detail BR log in``), common flag parsing
(``task.Config.ParseFromFlags``) and the ``Error: ...`` / exit-code contract.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import cancel
from .crypter import PLAINTEXT, Cipher, parse_cipher, parse_log_cipher
from .errors import BRError, Canceled, CobraError, br_error
from .filter import TableFilter, parse_or_br_error, schemas_filter, tables_filter
from .flags import (
    Command,
    Flag,
    HelpRequested,
    build_tree,
    parse_flags,
    traverse,
    unknown_command_error,
    usage,
    validate_required,
)
from .output import LOG, SUMMARY
from .storage import S3Options, redact_url
from .tso import log_file_timestamp

DEFAULT_VERSION = "v8.5.1"
GIT_HASH = "0000000000000000000000000000000000000000"  # the emulator is not built from pingcap/tidb
GO_VERSION = "go1.23.4"
BUILD_TIME = "2025-01-15 10:04:11"


def emulated_version() -> str:
    v = os.environ.get("TIDBOPS_BR_EMULATE_VERSION", DEFAULT_VERSION).strip() or DEFAULT_VERSION
    return v if v.startswith("v") else "v" + v


def version_tuple(v: str | None = None) -> tuple[int, int, int]:
    parts = (v or emulated_version()).lstrip("v").split("-")[0].split(".")
    nums = [int(p) if p.isdigit() else 0 for p in parts[:3]]
    while len(nums) < 3:
        nums.append(0)
    return nums[0], nums[1], nums[2]


def build_info() -> str:
    return (
        f"Release Version: {emulated_version()}\n"
        f"Git Commit Hash: {GIT_HASH}\n"
        "Git Branch: HEAD\n"
        f"Go Version: {GO_VERSION}\n"
        f"UTC Build Time: {BUILD_TIME}\n"
        "Race Enabled: false"
    )


@dataclass
class Runtime:
    """The parsed command line, handed to each command handler."""

    cmd: Command
    flags: dict[str, Flag]
    argv: list[str]
    log_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.flags[name].value

    def has(self, name: str) -> bool:
        return name in self.flags

    def changed(self, name: str) -> bool:
        return name in self.flags and self.flags[name].changed


@dataclass
class CommonConfig:
    storage: str
    send_creds: bool
    concurrency: int
    checksum: bool
    rate_limit: int
    table_filter: TableFilter
    explicit_filter: bool
    filter_str: list[str]
    schemas: set[str]
    tables: set[str]
    check_requirements: bool
    pd: list[str]
    cipher: Cipher = PLAINTEXT
    log_cipher: Cipher = PLAINTEXT  # --log.crypter.*: the log backup's plaintext data key (v8.4+)
    s3: S3Options = field(default_factory=S3Options)
    tls_ca: str = ""  # --ca: BR speaks https/TLS to PD and TiKV when it is set (task.TLSConfig.IsEnabled)


def enclose(name: str) -> str:
    return "`" + name + "`"


def parse_common(rt: Runtime) -> CommonConfig:
    """``task.Config.ParseFromFlags``."""
    g = rt.get
    schemas: set[str] = set()
    tables: set[str] = set()
    explicit = False
    filter_str: list[str] = []
    if rt.has("filter"):
        explicit = rt.changed("filter")
        filter_str = list(g("filter"))
        table_filter = parse_or_br_error(filter_str, case_sensitive=bool(g("case-sensitive")))
    elif rt.has("db"):
        db = g("db")
        if not db:
            raise br_error("ErrInvalidArgument", "empty database name is not allowed")
        schemas.add(enclose(db))
        if rt.has("table"):
            tbl = g("table")
            if not tbl:
                raise br_error("ErrInvalidArgument", "empty table name is not allowed")
            tables.add(f"{enclose(db)}.{enclose(tbl)}")
            table_filter = tables_filter(db, tbl)
        else:
            table_filter = schemas_filter(db)
    else:
        table_filter = parse_or_br_error(["*.*"])
    if g("switch-mode-interval") <= 0:
        from .tso import go_duration

        raise br_error(
            "ErrInvalidArgument",
            f"--switch-mode-interval must be positive, {go_duration(g('switch-mode-interval'))} is not allowed",
        )
    s3 = S3Options(
        endpoint=g("s3.endpoint"),
        region=g("s3.region"),
        storage_class=g("s3.storage-class"),
        sse=g("s3.sse"),
        sse_kms_key_id=g("s3.sse-kms-key-id"),
        acl=g("s3.acl"),
        provider=g("s3.provider"),
        role_arn=g("s3.role-arn"),
        external_id=g("s3.external-id"),
    )
    pd = [p for p in g("pd")]
    if not pd:
        raise br_error("ErrInvalidArgument", "must provide at least one PD server address")
    cipher = parse_cipher(g("crypter.method"), g("crypter.key"), g("crypter.key-file"))
    log_cipher = parse_log_cipher(
        g("log.crypter.method"), g("log.crypter.key"), g("log.crypter.key-file"), str(g("master-key") or "")
    )
    normalized: list[str] = []
    tls = bool(g("ca"))
    for p in pd:
        if p.startswith("http://"):
            if tls:
                raise br_error("ErrInvalidArgument", "pd url starts with http while TLS enabled")
            p = p[len("http://") :]
        elif p.startswith("https://"):
            if not tls:
                raise br_error("ErrInvalidArgument", "pd url starts with https while TLS disabled")
            p = p[len("https://") :]
        normalized.append(p)
    return CommonConfig(
        storage=g("storage"),
        send_creds=bool(g("send-credentials-to-tikv")),
        concurrency=int(g("concurrency")),
        checksum=bool(g("checksum")),
        rate_limit=int(g("ratelimit")) * int(g("ratelimit-unit")),
        table_filter=table_filter,
        explicit_filter=explicit,
        filter_str=filter_str,
        schemas=schemas,
        tables=tables,
        check_requirements=bool(g("check-requirements")),
        pd=normalized,
        cipher=cipher,
        log_cipher=log_cipher,
        s3=s3,
        tls_ca=str(g("ca") or ""),
    )


# --------------------------------------------------------------------------- Init / logging

_REDACT = {
    "crypter.key",
    "log.crypter.key",
    "azblob.encryption-key",
    "master-key",
    "azblob.account-key",
    "azblob.sas-token",
}
_URL_FLAGS = {"storage", "full-backup-storage", "checkpoint-storage"}


def _init(rt: Runtime) -> None:
    """``cmd.Init`` + ``build.LogInfo`` + ``LogEnvVariables`` + ``task.LogArguments``."""
    log_file = rt.get("log-file")
    if not rt.changed("log-file"):
        log_file = os.path.join(tempfile.gettempdir(), "br.log." + log_file_timestamp())
    try:
        path = LOG.init(log_file, rt.get("log-level"), rt.get("log-format"))
    except OSError as exc:
        raise BRError(f"open {log_file}: {(exc.strerror or str(exc)).lower()}") from None
    rt.log_file = path
    if path:
        sys.stderr.write(f"Detail BR log in {path} \n")
        sys.stderr.flush()
    LOG.info(
        "info.go:49",
        "Welcome to Backup & Restore (BR)",
        ("release-version", emulated_version()),
        ("git-hash", GIT_HASH),
        ("git-branch", "HEAD"),
        ("go-version", GO_VERSION),
        ("utc-build-time", BUILD_TIME),
        ("race-enabled", False),
    )
    LOG.info(
        "common.go:1080", "emulator", ("implementation", "tidbops br emulator"), ("python", platform.python_version())
    )
    fields: list[tuple[str, Any]] = [("__command", rt.cmd.path)]
    for name in sorted(rt.flags):
        f = rt.flags[name]
        if not f.changed:
            continue
        if name in _URL_FLAGS:
            fields.append((name, redact_url(f.value)))
        elif name in _REDACT:
            fields.append((name, "<redacted>"))
        else:
            fields.append((name, f.value_string()))
    LOG.info("common.go:1106", "arguments", *fields)


def run_unsupported(rt: Runtime) -> None:
    raise BRError(f"`{rt.cmd.path}` is not emulated by the br emulator (raw/txn KV is out of scope)")


def _handler(cmd: Command) -> Callable[[Runtime], None]:
    module_name, func = cmd.handler.split(":")
    if module_name == "cli":
        return globals()[func]  # type: ignore[no-any-return]
    module = importlib.import_module(f"{__package__}.{module_name}")
    return getattr(module, func)  # type: ignore[no-any-return]


def _report(err: str, verbose: bool = True) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"Error: {err}\n")
    sys.stderr.flush()
    fields: list[tuple[str, Any]] = [("error", err)]
    if verbose:
        fields.append(("errorVerbose", err + "\n(stack traces are not available in the br emulator)"))
    LOG.error("main.go:58", "br failed", *fields)
    return 1


def _unexpected(exc: Exception) -> str:
    """go-sql-driver's ``Error <code>: <message>`` for SQL errors, the exception text otherwise."""
    try:
        import pymysql

        if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
            return f"Error {exc.args[0]}: {exc.args[1]}"
    except ImportError:  # pragma: no cover
        pass
    return f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from tidbops_playground import journal

    journal.record(args)  # the playground's own record of every call (not BR's contract)
    LOG.reset()
    cancel.install()
    vt = version_tuple()
    root = build_tree(checksum_default_backup=vt < (8, 5, 0), with_sys_table_default=vt >= (7, 6, 0))
    try:
        try:
            cmd, rest = traverse(root, args)
            positional = parse_flags(cmd, rest)
        except HelpRequested as h:
            sys.stdout.write(usage(h.cmd))
            return 0
        if cmd is root and root.flagset()["version"].value:
            sys.stdout.write(build_info() + "\n")
            return 0
        if not cmd.runnable:
            if positional and cmd.parent is None:
                raise unknown_command_error(cmd, positional[0])
            sys.stdout.write(usage(cmd))
            return 0
        if cmd.no_args and positional:
            raise CobraError(f'unknown command "{positional[0]}" for "{cmd.path}"')
        rt = Runtime(cmd=cmd, flags=cmd.flagset(), argv=args)
        for f in rt.flags.values():
            if f.changed and f.deprecated:
                sys.stderr.write(f"Flag --{f.name} has been deprecated, {f.deprecated}\n")
        _init(rt)
        validate_required(cmd)
        SUMMARY.reset()
        _handler(cmd)(rt)
        return 0
    except CobraError as exc:
        return _report(str(exc), verbose=False)
    except BRError as exc:
        return _report(str(exc))
    except Canceled as exc:
        return _report(str(exc))
    except KeyboardInterrupt:
        return _report("context canceled")
    except Exception as exc:  # a bug or an unexpected server error: still BR's error contract
        import traceback

        LOG.error("main.go:57", "unexpected error", ("traceback", traceback.format_exc()))
        return _report(_unexpected(exc))
    finally:
        LOG.close()
