"""BR's table filter (``pkg/util/table-filter``): ``db.table`` rules, ``!`` exclusions, ``* ? [a-z] [!a-z]``,
backslash escapes, ``"quoted"`` / ```backquoted``` literals, ``/regexp/`` and ``@file`` imports.

Rules are evaluated from the last to the first; the first matching rule decides; no match means
"not selected". BR wraps filters case-insensitively unless ``--case-sensitive``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import plain


class FilterError(Exception):
    pass


class _Matcher:
    def match(self, s: str) -> bool:
        raise NotImplementedError

    def match_all(self) -> bool:
        return False

    def lower(self) -> _Matcher:
        return self


@dataclass(frozen=True)
class _Literal(_Matcher):
    text: str

    def match(self, s: str) -> bool:
        return s == self.text

    def lower(self) -> _Matcher:
        return _Literal(self.text.lower())


@dataclass(frozen=True)
class _All(_Matcher):
    """``trueMatcher``: the ``*`` pattern."""

    def match(self, s: str) -> bool:
        return True

    def match_all(self) -> bool:
        return True


@dataclass(frozen=True)
class _Regex(_Matcher):
    pattern: str

    def match(self, s: str) -> bool:
        return re.search(self.pattern, s) is not None

    def lower(self) -> _Matcher:
        return _Regex("(?i)" + self.pattern) if not self.pattern.startswith("(?i)") else self


def _regex(pattern: str) -> _Matcher:
    return _All() if pattern == "(?s)^.*$" else _Regex(pattern)


@dataclass(frozen=True)
class _Rule:
    schema: _Matcher
    table: _Matcher
    positive: bool


_REGEXP = re.compile(r"^/(?:\\.|[^/])+/")
_DQUOTED = re.compile(r'^"(?:""|[^"])+"')
_BQUOTED = re.compile(r"^`(?:``|[^`])+`")
_RANGE = re.compile(r"^\[!?(?:\\[^0-9a-zA-Z]|[^\\\]])+\]")


class _Parser:
    def __init__(self) -> None:
        self.file_name = "<cmdline>"
        self.line_num = 1
        self.rules: list[_Rule] = []

    def error(self, msg: str) -> FilterError:
        return FilterError(f"at {self.file_name}:{self.line_num}: {msg}")

    def parse(self, line: str, can_import: bool) -> None:
        line = line.strip(" \t")
        if not line:
            return
        positive = True
        if line[0] == "#":
            return
        if line[0] == "!":
            positive = False
            line = line[1:]
        elif line[0] == "@":
            if not can_import:
                raise self.error("importing filter files recursively is not allowed")
            self._import(line[1:])
            return
        schema, line = self.parse_pattern(line)
        if not line:
            raise self.error("wrong table pattern")
        if line[0] != ".":
            raise self.error("syntax error: missing '.' between schema and table patterns")
        table, line = self.parse_pattern(line[1:])
        if line:
            raise self.error("syntax error: stray characters after table pattern")
        self.rules.append(_Rule(schema, table, positive))

    def _import(self, name: str) -> None:
        try:
            with open(name, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            raise self.error(
                f"cannot open filter file: open {name}: {exc.strerror.lower() if exc.strerror else exc}"
            ) from None
        old = (self.file_name, self.line_num)
        self.file_name, self.line_num = name, 1
        for ln in lines:
            self.parse(ln, False)
            self.line_num += 1
        self.file_name, self.line_num = old

    def parse_pattern(self, line: str) -> tuple[_Matcher, str]:
        if not line:
            raise self.error("syntax error: missing pattern")
        c = line[0]
        if c == "/":
            m = _REGEXP.match(line)
            if not m:
                raise self.error("syntax error: incomplete regexp")
            body = line[1 : m.end() - 1]
            try:
                re.compile(body)
            except re.error as exc:
                raise self.error(f"invalid pattern: {exc}") from None
            return _regex(body), line[m.end() :]
        if c == '"':
            m = _DQUOTED.match(line)
            if not m:
                raise self.error("syntax error: incomplete quoted identifier")
            return _Literal(line[1 : m.end() - 1].replace('""', '"')), line[m.end() :]
        if c == "`":
            m = _BQUOTED.match(line)
            if not m:
                raise self.error("syntax error: incomplete quoted identifier")
            return _Literal(line[1 : m.end() - 1].replace("``", "`")), line[m.end() :]
        return self._wildcard(line)

    def _wildcard(self, line: str) -> tuple[_Matcher, str]:
        literal: list[str] = []
        pattern: list[str] = ["(?s)^"]
        is_literal = True
        i = 0
        while i < len(line):
            c = line[i]
            if c == "\\":
                if i == len(line) - 1:
                    raise self.error("syntax error: cannot place \\ at end of line")
                esc = line[i + 1]
                if esc.isascii() and esc.isalnum():
                    raise self.error(f"cannot escape a letter or number (\\{esc}), it is reserved for future extension")
                literal.append(esc)
                pattern.append(re.escape(esc))
                i += 2
            elif c == ".":
                break
            elif c == "*":
                is_literal = False
                pattern.append(".*")
                i += 1
            elif c == "?":
                is_literal = False
                pattern.append(".")
                i += 1
            elif c == "[":
                is_literal = False
                m = _RANGE.match(line[i:])
                if not m:
                    raise self.error("syntax error: failed to parse character class")
                end = i + m.end()
                if line[i + 1] == "!":
                    pattern.append("[^" + line[i + 2 : end])
                elif line[i + 1] == "^":
                    pattern.append("[\\^" + line[i + 2 : end])
                else:
                    pattern.append(line[i:end])
                i = end
            else:
                if not (c in "$_" or (c.isascii() and c.isalnum()) or ord(c) >= 0x80):
                    raise self.error(f"unexpected special character '{c}'")
                literal.append(c)
                pattern.append(re.escape(c))
                i += 1
        rest = line[i:]
        if is_literal:
            return _Literal("".join(literal)), rest
        pattern.append("$")
        return _regex("".join(pattern)), rest


class TableFilter:
    """A parsed filter; ``match_table``/``match_schema`` follow ``tableFilter`` exactly."""

    def __init__(self, rules: list[_Rule], case_sensitive: bool = False, source: Iterable[str] = ()) -> None:
        self.case_sensitive = case_sensitive
        rules = list(reversed(rules))
        if not case_sensitive:
            rules = [_Rule(r.schema.lower(), r.table.lower(), r.positive) for r in rules]
        self.rules = rules
        self.source = list(source)

    def _norm(self, s: str) -> str:
        return s if self.case_sensitive else s.lower()

    def match_table(self, schema: str, table: str) -> bool:
        schema, table = self._norm(schema), self._norm(table)
        for r in self.rules:
            if r.schema.match(schema) and r.table.match(table):
                return r.positive
        return False

    def match_schema(self, schema: str) -> bool:
        schema = self._norm(schema)
        for r in self.rules:
            if r.schema.match(schema) and (r.positive or r.table.match_all()):
                return r.positive
        return False


def parse(args: Iterable[str], case_sensitive: bool = False) -> TableFilter:
    args = list(args)
    p = _Parser()
    for a in args:
        p.parse(a, True)
    return TableFilter(p.rules, case_sensitive, args)


def schemas_filter(db: str, case_sensitive: bool = False) -> TableFilter:
    """``filter.NewSchemasFilter(db)``."""
    return TableFilter([_Rule(_Literal(db), _All(), True)], case_sensitive, [f"`{db}`.*"])


def tables_filter(db: str, table: str, case_sensitive: bool = False) -> TableFilter:
    """``filter.NewTablesFilter(filter.Table{Schema: db, Name: table})``."""
    return TableFilter([_Rule(_Literal(db), _Literal(table), True)], case_sensitive, [f"`{db}`.`{table}`"])


def parse_or_br_error(args: Iterable[str], case_sensitive: bool = False) -> TableFilter:
    try:
        return parse(args, case_sensitive)
    except FilterError as exc:
        raise plain(str(exc)) from None
