"""The ``br`` command tree and a faithful re-implementation of cobra/pflag parsing.

What matters for callers (and is reproduced here):

* ``TraverseChildren``: flags may precede sub-command names (``br --pd x backup full``);
* ``--flag value``, ``--flag=value``, ``-s value``, ``-svalue``, ``-s=value``; booleans take no value
  (``--checksum false`` leaves ``false`` as a positional argument, which ``Args: NoArgs`` rejects with
  ``unknown command "false" for "br backup full"``); write ``--checksum=false``;
* string slices (``--pd a,b``) are CSV; string arrays (``-f``) repeat; the first use replaces the default;
* pflag's error texts: ``unknown flag: --x``, ``unknown shorthand flag: 'z' in -z``,
  ``flag needs an argument: --x``, ``invalid argument "v" for "--f" flag: <Go parse error>``;
* cobra's ``required flag(s) "db", "table" not set``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import CobraError
from .tso import parse_go_duration

# --------------------------------------------------------------------------- values


def _go_quote(s: str) -> str:
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _parse_bool(s: str) -> bool:
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {_go_quote(s)}: invalid syntax")


def _parse_int(s: str, bits: int, unsigned: bool) -> int:
    fn = "strconv.ParseUint" if unsigned else "strconv.ParseInt"
    text = s.replace("_", "") if re.fullmatch(r"[+-]?0[xXoObB]?[0-9a-fA-F_]+", s) else s
    try:
        if unsigned and text.startswith(("+", "-")):
            raise ValueError
        value = int(text, 0)
    except ValueError:
        raise ValueError(f"{fn}: parsing {_go_quote(s)}: invalid syntax") from None
    lo, hi = (0, (1 << bits) - 1) if unsigned else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if not lo <= value <= hi:
        raise ValueError(f"{fn}: parsing {_go_quote(s)}: value out of range")
    return value


def _parse_duration(s: str) -> int:
    return parse_go_duration(s)


@dataclass
class Flag:
    name: str
    kind: str  # bool|string|string_slice|string_array|uint|uint32|uint64|int|int32|int64|duration
    default: Any
    short: str = ""
    hidden: bool = False
    usage: str = ""
    deprecated: str = ""
    value: Any = None
    changed: bool = False

    def __post_init__(self) -> None:
        self.value = list(self.default) if isinstance(self.default, list) else self.default

    @property
    def no_opt_default(self) -> str:
        return "true" if self.kind == "bool" else ""

    def display_name(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"

    def set(self, raw: str) -> None:
        try:
            if self.kind == "bool":
                self.value = _parse_bool(raw)
            elif self.kind == "string":
                self.value = raw
            elif self.kind == "string_slice":
                items = next(csv.reader(io.StringIO(raw))) if raw else []
                self.value = items if not self.changed else [*self.value, *items]
            elif self.kind == "string_array":
                self.value = [raw] if not self.changed else [*self.value, raw]
            elif self.kind in ("uint", "uint64"):
                self.value = _parse_int(raw, 64, unsigned=True)
            elif self.kind == "uint32":
                self.value = _parse_int(raw, 32, unsigned=True)
            elif self.kind in ("int", "int64"):
                self.value = _parse_int(raw, 64, unsigned=False)
            elif self.kind == "int32":
                self.value = _parse_int(raw, 32, unsigned=False)
            elif self.kind == "duration":
                self.value = _parse_duration(raw)
            else:  # pragma: no cover - programming error
                raise AssertionError(self.kind)
        except ValueError as exc:
            raise CobraError(
                f"invalid argument {_go_quote(raw)} for {_go_quote(self.display_name())} flag: {exc}"
            ) from None
        self.changed = True

    def value_string(self) -> str:
        """pflag's ``Value.String()`` (used by the ``["arguments"]`` log line)."""
        v = self.value
        if self.kind == "bool":
            return "true" if v else "false"
        if self.kind == "string_slice":
            return "[" + ",".join(v) + "]"
        if self.kind == "string_array":
            return "[" + ",".join(v) + "]"
        if self.kind == "duration":
            from .tso import go_duration

            return go_duration(v)
        return str(v)


# --------------------------------------------------------------------------- commands


@dataclass
class Command:
    name: str
    short: str = ""
    runnable: bool = False
    hidden: bool = False
    aliases: tuple[str, ...] = ()
    no_args: bool = True
    local: list[Flag] = field(default_factory=list)
    persistent: list[Flag] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    children: list[Command] = field(default_factory=list)
    parent: Command | None = None
    handler: str = ""  # dotted "<module>:<function>" resolved by the CLI

    def add(self, *cmds: Command) -> Command:
        for c in cmds:
            c.parent = self
            self.children.append(c)
        return self

    @property
    def path(self) -> str:
        parts = []
        c: Command | None = self
        while c is not None:
            parts.append(c.name)
            c = c.parent
        return " ".join(reversed(parts))

    def find_child(self, name: str) -> Command | None:
        for c in self.children:
            if c.name == name or name in c.aliases:
                return c
        return None

    def flagset(self) -> dict[str, Flag]:
        """Local + own persistent + inherited persistent flags (nearest definition wins)."""
        chain: list[Command] = []
        c: Command | None = self
        while c is not None:
            chain.append(c)
            c = c.parent
        result: dict[str, Flag] = {}
        for f in self.local:
            result.setdefault(f.name, f)
        for cmd in chain:
            for f in cmd.persistent:
                result.setdefault(f.name, f)
        return result


def parse_flags(cmd: Command, args: list[str]) -> list[str]:
    """pflag's ``FlagSet.Parse`` (interspersed) over ``cmd.flagset()``; returns the positional args."""
    flags = cmd.flagset()
    shorts = {f.short: f for f in flags.values() if f.short}
    positional: list[str] = []
    rest = list(args)
    while rest:
        s = rest.pop(0)
        if len(s) == 0 or s[0] != "-" or len(s) == 1:
            positional.append(s)
            continue
        if s[1] == "-":
            if len(s) == 2:
                positional.extend(rest)
                break
            name = s[2:]
            if not name or name[0] in "-=":
                raise CobraError(f"bad flag syntax: {s}")
            key, eq, value = name.partition("=")
            flag = flags.get(key)
            if flag is None:
                if key == "help":
                    raise HelpRequested(cmd)
                raise CobraError(f"unknown flag: --{key}")
            if eq:
                flag.set(value)
            elif flag.no_opt_default:
                flag.set(flag.no_opt_default)
            elif rest:
                flag.set(rest.pop(0))
            else:
                raise CobraError(f"flag needs an argument: {s}")
            continue
        shorthands = s[1:]
        while shorthands:
            c = shorthands[0]
            flag = shorts.get(c)
            if flag is None:
                if c == "h":
                    raise HelpRequested(cmd)
                raise CobraError(f"unknown shorthand flag: '{c}' in -{shorthands}")
            if len(shorthands) > 2 and shorthands[1] == "=":
                flag.set(shorthands[2:])
                shorthands = ""
            elif flag.no_opt_default:
                flag.set(flag.no_opt_default)
                shorthands = shorthands[1:]
            elif len(shorthands) > 1:
                flag.set(shorthands[1:])
                shorthands = ""
            elif rest:
                flag.set(rest.pop(0))
                shorthands = ""
            else:
                raise CobraError(f"flag needs an argument: '{c}' in -{shorthands}")
    return positional


class HelpRequested(Exception):
    def __init__(self, cmd: Command) -> None:
        super().__init__(cmd.path)
        self.cmd = cmd


def _is_flag_arg(arg: str) -> bool:
    return (len(arg) >= 3 and arg.startswith("--")) or (len(arg) >= 2 and arg[0] == "-" and arg[1] != "-")


def traverse(root: Command, args: list[str]) -> tuple[Command, list[str]]:
    """cobra's ``Command.Traverse`` (``TraverseChildren: true``)."""
    c = root
    rest = list(args)
    while True:
        collected: list[str] = []
        in_flag = False
        found: Command | None = None
        idx = 0
        fs = c.flagset()
        shorts = {f.short: f for f in fs.values() if f.short}
        for idx, arg in enumerate(rest):  # noqa: B007
            if arg.startswith("--") and "=" not in arg:
                f = fs.get(arg[2:])
                in_flag = not (f is not None and f.no_opt_default)
                collected.append(arg)
                continue
            if (
                arg.startswith("-")
                and "=" not in arg
                and len(arg) == 2
                and not (arg[1] in shorts and shorts[arg[1]].no_opt_default)
            ):
                in_flag = True
                collected.append(arg)
                continue
            if in_flag:
                in_flag = False
                collected.append(arg)
                continue
            if _is_flag_arg(arg):
                collected.append(arg)
                continue
            found = c.find_child(arg)
            break
        if found is None:
            return c, rest
        parse_flags(c, collected)
        rest = rest[idx + 1 :]
        c = found


def validate_required(cmd: Command) -> None:
    flags = cmd.flagset()
    missing = sorted(name for name in cmd.required if not flags[name].changed)
    if missing:
        raise CobraError('required flag(s) "' + '", "'.join(missing) + '" not set')


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def unknown_command_error(cmd: Command, arg: str) -> CobraError:
    text = f'unknown command "{arg}" for "{cmd.path}"'
    if cmd.parent is None:
        suggestions = [
            c.name for c in cmd.children if not c.hidden and (_levenshtein(arg, c.name) <= 2 or c.name.startswith(arg))
        ]
        if suggestions:
            text += "\n\nDid you mean this?\n" + "".join(f"\t{s}\n" for s in suggestions)
    return CobraError(text)


def usage(cmd: Command) -> str:
    lines = [cmd.short or cmd.name, "", "Usage:"]
    if cmd.runnable:
        lines.append(f"  {cmd.path} [flags]")
    if cmd.children:
        lines.append(f"  {cmd.path} [command]")
        lines += ["", "Available Commands:"]
        width = max(len(c.name) for c in cmd.children)
        for c in cmd.children:
            if not c.hidden:
                lines.append(f"  {c.name.ljust(width)}   {c.short}")
    local = [f for f in cmd.flagset().values() if not f.hidden]
    if local:
        lines += ["", "Flags:"]
        for f in sorted(local, key=lambda x: x.name):
            head = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
            lines.append(f"{head.ljust(40)} {f.usage}")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the tree

Builder = Callable[[], list[Flag]]

MIB = 1 << 20


def _common_flags() -> list[Flag]:
    """``cmd.DefineCommonFlags`` + ``task.DefineCommonFlags`` + ``storage.DefineFlags`` (root, persistent)."""
    f = [
        Flag("log-level", "string", "info", short="L", usage="Set the log level"),
        Flag("log-file", "string", "", usage="Set the log file path. If not set, logs will output to temp file"),
        Flag("log-format", "string", "text", usage="Set the log format"),
        Flag("redact-log", "bool", False, hidden=True),
        Flag("redact-info-log", "bool", False, usage="Set whether to redact sensitive info in log"),
        Flag("status-addr", "string", "", usage="Set the HTTP listening address for the status report service."),
        Flag("slow-log-file", "string", "", hidden=True),
        Flag("send-credentials-to-tikv", "bool", True, short="c", usage="Whether send credentials to tikv"),
        Flag(
            "storage",
            "string",
            "",
            short="s",
            usage='specify the url where backup storage, eg, "s3://bucket/path/prefix"',
        ),
        Flag("pd", "string_slice", ["127.0.0.1:2379"], short="u", usage="PD address"),
        Flag("ca", "string", "", usage="CA certificate path for TLS connection"),
        Flag("cert", "string", "", usage="Certificate path for TLS connection"),
        Flag("key", "string", "", usage="Private key path for TLS connection"),
        Flag("checksum-concurrency", "uint", 4, hidden=True),
        Flag("ratelimit", "uint64", 0, usage="The rate limit of the task, MB/s per node"),
        Flag("checksum", "bool", True, usage="Run checksum at end of task"),
        Flag(
            "remove-tiflash",
            "bool",
            True,
            hidden=True,
            deprecated=(
                "TiFlash is fully supported by BR now, removing TiFlash isn't needed any more. "
                "This flag would be ignored."
            ),
        ),
        Flag("concurrency", "uint32", 0, hidden=True),
        Flag("ratelimit-unit", "uint64", MIB, hidden=True),
        Flag("check-requirements", "bool", True, usage="Whether start version check before execute command"),
        Flag("switch-mode-interval", "duration", 5 * 60 * 10**9, usage="maintain import mode on TiKV during restore"),
        Flag("grpc-keepalive-time", "duration", 10 * 10**9, hidden=True),
        Flag("grpc-keepalive-timeout", "duration", 3 * 10**9, hidden=True),
        Flag("enable-opentracing", "bool", False),
        Flag("no-credentials", "bool", False, hidden=True),
        Flag("skip-check-path", "bool", False, hidden=True),
        Flag(
            "crypter.method",
            "string",
            "plaintext",
            usage="Encrypt/decrypt method, be one of plaintext|aes128-ctr|aes192-ctr|aes256-ctr case-insensitively",
        ),
        Flag(
            "crypter.key",
            "string",
            "",
            usage="aes-crypter key, used to encrypt/decrypt the data by the hexadecimal string",
        ),
        Flag("crypter.key-file", "string", "", usage="FilePath, its content is used as the cipher-key"),
        Flag("log.crypter.method", "string", "plaintext", usage="Log backup encryption method"),
        Flag("log.crypter.key", "string", ""),
        Flag("log.crypter.key-file", "string", ""),
        Flag("master-key-crypter-method", "string", "plaintext"),
        Flag("master-key", "string", ""),
        Flag("metadata-download-batch-size", "uint", 128, hidden=True),
    ]
    for name in (
        "endpoint",
        "region",
        "storage-class",
        "sse",
        "sse-kms-key-id",
        "acl",
        "provider",
        "role-arn",
        "external-id",
    ):
        f.append(Flag(f"s3.{name}", "string", "", usage=f"(experimental) Set the S3 {name}"))
    f.append(Flag("s3.object-lock-enabled", "bool", False, hidden=True))
    for name in ("endpoint", "storage-class", "predefined-acl", "credentials-file"):
        f.append(Flag(f"gcs.{name}", "string", ""))
    for name in (
        "endpoint",
        "access-tier",
        "account-name",
        "account-key",
        "sas-token",
        "encryption-scope",
        "encryption-key",
    ):
        f.append(Flag(f"azblob.{name}", "string", ""))
    return f


def _filter_flags(default: list[str], hidden: bool = False) -> list[Flag]:
    return [
        Flag("filter", "string_array", default, short="f", hidden=hidden, usage="select tables to process"),
        Flag(
            "case-sensitive",
            "bool",
            False,
            hidden=hidden,
            usage="whether the table names used in --filter should be case-sensitive",
        ),
    ]


RESTORE_FULL_DEFAULT_FILTER = [
    "*.*",
    "!__TiDB_BR_Temporary_*.*",
    "!mysql.*",
    "mysql.bind_info",
    "mysql.user",
    "mysql.db",
    "mysql.tables_priv",
    "mysql.columns_priv",
    "mysql.global_priv",
    "mysql.global_grants",
    "mysql.default_roles",
    "mysql.role_edges",
    "!sys.*",
    "!INFORMATION_SCHEMA.*",
    "!PERFORMANCE_SCHEMA.*",
    "!METRICS_SCHEMA.*",
    "!INSPECTION_SCHEMA.*",
]


def _db_flags() -> list[Flag]:
    return [Flag("db", "string", "", usage="database name")]


def _table_flags() -> list[Flag]:
    return [Flag("db", "string", "", usage="database name"), Flag("table", "string", "", short="t", usage="table name")]


def _backup_flags(checksum_default: bool) -> list[Flag]:
    return [
        Flag(
            "timeago",
            "duration",
            0,
            usage="The history version of the backup task, e.g. 1m, 1h. Do not exceed GCSafePoint",
        ),
        Flag(
            "lastbackupts",
            "uint64",
            0,
            usage="(experimental) the last time backup ts, use for incremental backup, support TSO only",
        ),
        Flag(
            "backupts",
            "string",
            "",
            usage="the backup ts support TSO or datetime, e.g. '400036290571534337', '2018-05-11 01:42:23'",
        ),
        Flag("gcttl", "int64", 300, usage="the TTL (in seconds) that PD holds for BR's GC safepoint"),
        Flag(
            "compression",
            "string",
            "zstd",
            usage="backup sst file compression algorithm, value can be one of 'lz4|zstd|snappy'",
        ),
        Flag("compression-level", "int32", 0, usage="compression level used for sst file compression"),
        Flag("concurrency", "uint32", 4, usage="The size of a BR thread pool that executes tasks"),
        Flag("table-concurrency", "uint", 128, usage="The size of a BR thread pool used for backup table metas"),
        Flag("remove-schedulers", "bool", False, hidden=True),
        Flag("ignore-stats", "bool", True, usage="ignore backup stats"),
        Flag("use-backupmeta-v2", "bool", True, usage="use backup meta v2 to store meta info"),
        Flag("keyspace-name", "string", "", usage="keyspace name for backup"),
        Flag("use-checkpoint", "bool", True, hidden=True),
        Flag("replica-read-label", "string", "", usage="specify the label of the stores to be used for backup"),
        # v8.5.0: snapshot backups default to --checksum=false (docs br-snapshot-manual)
        Flag("checksum", "bool", checksum_default, usage="Run checksum at end of task"),
    ]


def _restore_flags() -> list[Flag]:
    return [
        Flag("no-schema", "bool", False, hidden=True),
        Flag(
            "load-stats",
            "bool",
            True,
            usage="Run load stats or update stats_meta to trigger auto-analyze at end of snapshot restore task",
        ),
        Flag(
            "with-tidb-placement-mode",
            "string",
            "STRICT",
            usage="correspond to tidb global/session variable with-tidb-placement-mode",
        ),
        Flag("keyspace-name", "string", "", usage="correspond to tidb config keyspace-name"),
        Flag("use-checkpoint", "bool", True, hidden=True),
        Flag(
            "checkpoint-storage", "string", "", usage="specify the external storage url where checkpoint data is saved"
        ),
        Flag("wait-tiflash-ready", "bool", False, usage="whether wait tiflash replica ready if tiflash exists"),
        Flag(
            "allow-pitr-from-incremental",
            "bool",
            True,
            usage="whether make incremental restore compatible with later log restore",
        ),
        Flag("sys-check-collation", "bool", False, usage="whether check the privileges table rows"),
        Flag("online", "bool", False, usage="(experimental) Whether online when restore"),
        Flag(
            "granularity",
            "string",
            "coarse-grained",
            usage="(deprecated) Whether split & scatter regions using fine-grained way during restore",
        ),
        Flag(
            "tikv-max-restore-concurrency",
            "uint",
            128,
            usage="The size of thread pool on each store that executes tasks",
        ),
        Flag("concurrency", "uint32", 128, usage="(deprecated) The size of thread pool on BR that executes tasks"),
        Flag("merge-region-size-bytes", "uint64", 96 * MIB, hidden=True),
        Flag("merge-region-key-count", "uint64", 960000, hidden=True),
        Flag("pd-concurrency", "uint", 1, hidden=True),
        Flag("stats-concurrency", "uint", 12, hidden=True),
        Flag("batch-flush-interval", "duration", 16 * 10**9, hidden=True),
        Flag("ddl-batch-size", "uint", 128, hidden=True),
        Flag("with-sys-table", "bool", True, usage="whether restore system privilege tables on default setting"),
        Flag("reset-sys-users", "string_array", ["cloud_admin", "root"], hidden=True),
        Flag("use-fsr", "bool", False, hidden=True),
    ]


def _stream_restore_flags() -> list[Flag]:
    return [
        Flag("start-ts", "string", "", usage="the start timestamp which log restore from."),
        Flag("restored-ts", "string", "", usage="the point of restore, used for log restore."),
        Flag(
            "full-backup-storage",
            "string",
            "",
            usage="specify the backup full storage. fill it if want restore full backup before restore log.",
        ),
        Flag("pitr-batch-count", "uint32", 8, usage="specify the batch count to restore log."),
        Flag("pitr-batch-size", "uint32", 16 * 1024 * 1024, usage="specify the batch size to retore log."),
        Flag("pitr-concurrency", "uint32", 16, usage="specify the concurrency to restore log."),
    ]


def _debug_flags() -> list[Flag]:
    return [Flag("field", "string", "", usage="decode specified field")]


def build_tree(checksum_default_backup: bool = False, with_sys_table_default: bool = True) -> Command:
    root = Command("br", short="br is a TiDB/TiKV cluster backup restore tool.", no_args=False)
    root.local = [Flag("version", "bool", False, short="V", usage="Display version information about BR")]
    root.persistent = _common_flags()

    backup = Command("backup", short="backup a TiDB/TiKV cluster", no_args=False)
    backup.persistent = _backup_flags(checksum_default_backup)
    backup.add(
        Command(
            "full",
            short="backup all database",
            runnable=True,
            handler="backup:run_full",
            local=[*_filter_flags(["*.*"]), Flag("type", "string", "kv", usage="type of full backup")],
        ),
        Command(
            "db", short="backup a database", runnable=True, handler="backup:run_db", local=_db_flags(), required=["db"]
        ),
        Command(
            "table",
            short="backup a table",
            runnable=True,
            handler="backup:run_table",
            local=_table_flags(),
            required=["db", "table"],
        ),
        Command(
            "raw",
            short="(experimental) backup a raw kv range from TiKV cluster",
            runnable=True,
            handler="cli:run_unsupported",
            hidden=False,
        ),
        Command(
            "txn",
            short="(experimental) backup a txn kv range from TiKV cluster",
            runnable=True,
            handler="cli:run_unsupported",
        ),
    )

    restore = Command("restore", short="restore a TiDB/TiKV cluster", no_args=False)
    restore.persistent = _restore_flags()
    for f in restore.persistent:
        if f.name == "with-sys-table":
            f.default = f.value = with_sys_table_default
    restore.add(
        Command(
            "full",
            short="restore all tables",
            runnable=True,
            handler="restore:run_full",
            local=[*_filter_flags(RESTORE_FULL_DEFAULT_FILTER), Flag("type", "string", "kv")],
        ),
        Command(
            "db",
            short="restore tables in a database from the backup data",
            runnable=True,
            handler="restore:run_db",
            local=_db_flags(),
            required=["db"],
        ),
        Command(
            "table",
            short="restore a table from the backup data",
            runnable=True,
            handler="restore:run_table",
            local=_table_flags(),
            required=["db", "table"],
        ),
        Command(
            "point",
            short="restore data from log until specify commit timestamp",
            runnable=True,
            handler="restore:run_point",
            local=[*_filter_flags(RESTORE_FULL_DEFAULT_FILTER, hidden=True), *_stream_restore_flags()],
        ),
        Command(
            "raw",
            short="(experimental) restore a raw kv range to TiKV cluster",
            runnable=True,
            handler="cli:run_unsupported",
        ),
        Command(
            "txn", short="(experimental) restore txn kv to TiKV cluster", runnable=True, handler="cli:run_unsupported"
        ),
    )

    log = Command("log", short="backup stream log from TiDB/TiKV cluster", no_args=False)
    log.add(
        Command(
            "start",
            short="start a log backup task",
            runnable=True,
            handler="log:run_start",
            local=[
                Flag("task-name", "string", "", usage="The task name for the backup log task."),
                Flag(
                    "start-ts",
                    "string",
                    "",
                    usage="usually equals last full backupTS, used for backup log. Default value is current ts.",
                ),
                Flag("end-ts", "string", "999999999999999999", hidden=True),
                Flag("gc-ttl", "int64", 1800, hidden=True),
                *_filter_flags(["*.*"], hidden=True),
            ],
        ),
        Command(
            "stop",
            short="stop a log backup task",
            runnable=True,
            handler="log:run_stop",
            local=[Flag("task-name", "string", "", usage="The task name for the backup log task.")],
        ),
        Command(
            "pause",
            short="pause a log backup task",
            runnable=True,
            handler="log:run_pause",
            local=[
                Flag("task-name", "string", "", usage="The task name for the backup log task."),
                Flag("gc-ttl", "int64", 86400, usage="the TTL (in seconds) that PD holds for BR's GC safepoint"),
            ],
        ),
        Command(
            "resume",
            short="resume a log backup task",
            runnable=True,
            handler="log:run_resume",
            local=[Flag("task-name", "string", "", usage="The task name for the backup log task.")],
        ),
        Command(
            "status",
            short="get status for the log backup task",
            runnable=True,
            handler="log:run_status",
            local=[
                Flag(
                    "task-name",
                    "string",
                    "*",
                    usage="The task name for backup stream log. If default, get status of all of tasks",
                ),
                Flag("json", "bool", False, usage="Print JSON as the output."),
            ],
        ),
        Command(
            "truncate",
            short="truncate the log data until sometime.",
            runnable=True,
            handler="log:run_truncate",
            local=[
                Flag("until", "string", "", usage="Remove all backup data until this TS."),
                Flag("dry-run", "bool", False, usage="Run the command but don't really delete the files."),
                Flag("yes", "bool", False, short="y", usage="Skip all prompts and always execute the command."),
            ],
        ),
        Command("metadata", short="get the metadata of log dir", runnable=True, handler="log:run_metadata"),
    )

    debug = Command(
        "debug", short="commands to check/debug backup data", aliases=("validate",), hidden=True, no_args=False
    )
    debug.add(
        Command(
            "decode", short="decode backupmeta to json", runnable=True, handler="debug:run_decode", local=_debug_flags()
        ),
        Command("checksum", short="check the backup data", runnable=True, hidden=True, handler="debug:run_checksum"),
    )
    root.add(debug, backup, restore, log)
    return root
