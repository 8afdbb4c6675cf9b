"""Literal redaction of SQL text, in the spirit of TiDB's ``tidb_redact_log = ON``.

TiDB (``ExecStmt.GetTextToLog``) logs ``parser.NormalizeKeepHint(sql)`` when redaction is on: every
literal becomes ``?``, optimizer hints stay, and the prepared-statement arguments are not appended. This
module does the same on text that was logged without redaction, without a SQL parser:

* quoted strings (``'…'``, ``"…"``, with ``''`` / ``\\'`` escapes, ``_utf8'…'``, ``N'…'``), numbers
  (``42``, ``-1.5e3`` keeps its sign as ``-?``), hex and bit literals (``0x1F``, ``X'1F'``, ``b'01'``) and
  TiDB's redaction markers (``‹…›``, ``tidb_redact_log = MARKER``) become ``?``;
* ``[arguments: (…)]`` (prepared statements) is removed; ``/*+ hints */`` stay; other comments go;
* identifiers are untouched: ```quoted```, ``t_0`` and ``db1.t2``; the truncation marker ``(len:N)`` stays;
* a string cut by truncation (no closing quote) is redacted up to the end.
"""

from __future__ import annotations

import re

_TOKENS = re.compile(
    r"""
      (?P<ident>`(?:[^`]|``)*`?)                               # `quoted identifier`
    | (?P<hint>/\*\+.*?\*/)                                    # optimizer hint: kept
    | (?P<comment>/\*.*?(?:\*/|\Z)|(?:--\s|\#)[^\n]*)         # other comments: dropped
    | (?P<string>(?:_[A-Za-z0-9]+|[NnXxBb])?
         '(?:[^'\\]|\\.|'')*(?:'|\Z)
       | "(?:[^"\\]|\\.|"")*(?:"|\Z))                          # string / hex / bit literal
    | (?P<marker>‹[^›]*(?:›|\Z))                               # MARKER-mode value
    | (?P<word>[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*)     # identifier or keyword (may hold digits)
    | (?P<number>0[xX][0-9A-Fa-f]+|0[bB][01]+
         |(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)                # number
    """,
    re.VERBOSE | re.DOTALL,
)
_ARGUMENTS_MARK = "[arguments: "
_LEN_MARK = re.compile(r"\(len:\d+\);?\s*\Z")


def _replace(m: re.Match[str]) -> str:
    kind = m.lastgroup
    if kind in ("string", "marker", "number"):
        return "?"
    if kind == "comment":
        return " " if m.group(0).startswith("/*") else ""
    return m.group(0)


def drop_arguments(sql: str) -> str:
    """``sql`` without TiDB's ``[arguments: (…)]`` (prepared-statement arguments, appended at the end): from
    the first ``[arguments: `` (and the blanks before it) to the last ``]``, when only an optional ``;`` and
    blanks follow it. Linear time, whatever the text (a regular expression for this took quadratic time on
    text with many markers)."""
    start = sql.find(_ARGUMENTS_MARK)
    if start < 0:
        return sql
    tail = sql.rstrip()
    if tail.endswith(";"):
        tail = tail[:-1]
    if not tail.endswith("]") or len(tail) - 1 < start + len(_ARGUMENTS_MARK):
        return sql
    lead = len(sql[:start].rstrip())
    return sql[:lead] + sql[len(tail) :]


def redact_sql(sql: str) -> str:
    """``sql`` with its literals replaced by ``?`` (see the module docstring).

    >>> redact_sql("SELECT * FROM t_1 WHERE a = 'x' AND b IN (1, 2.5) [arguments: (3, \\"y\\")];")
    'SELECT * FROM t_1 WHERE a = ? AND b IN (?, ?);'
    """
    marker = _LEN_MARK.search(sql)
    tail = ""
    if marker:
        tail = sql[marker.start() :]
        sql = sql[: marker.start()]
    sql = drop_arguments(sql)
    return _TOKENS.sub(_replace, sql) + tail
