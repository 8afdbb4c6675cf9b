"""Table filters: BR's table-filter grammar (pingcap/docs table-filter.md), minus what we refuse on purpose."""

from __future__ import annotations

import pytest

from tidbops.br.command import validate_filter
from tidbops.br.errors import InvalidFilterError

pytestmark = pytest.mark.unit

VALID = [
    pytest.param("db1.tbl1", id="plain"),
    pytest.param("*.*", id="everything"),
    pytest.param("shop.*", id="one-db"),
    pytest.param("*.backup_*", id="table-prefix"),
    pytest.param("db[0-9].tbl[0-9a-f][0-9a-f]", id="ranges"),
    pytest.param("db?.t[!a-z]", id="question-and-negated-range"),
    pytest.param("!*.Password", id="exclusion"),
    pytest.param("!employees.salaries", id="exclusion-plain"),
    pytest.param("`db.with.dots`.`tbl\\2`", id="backquoted-with-dots"),
    pytest.param('"db.with.dots"."tbl\\1"', id="double-quoted"),
    pytest.param('"foo""bar".`foo``bar`', id="doubled-quotes"),
    pytest.param("`my db`.`my table`", id="spaces-inside-backquotes"),
    pytest.param("`$(rm -rf /)`.t", id="shell-text-inside-quotes-is-a-name"),
    pytest.param("db\\.with\\.dots.*", id="escaped-dots"),
    pytest.param("foo\\`bar.x", id="escaped-backquote"),
    pytest.param("$money.t_1", id="dollar-underscore"),
    pytest.param("数据库.表", id="non-ascii"),
    pytest.param("/^db\\d{2,}$/./^tbl\\d{2,}$/", id="regexp"),
    pytest.param("/b/.*", id="regexp-db-wildcard-table"),
    pytest.param("mysql.bind_info", id="system-table"),
]

INVALID = [
    pytest.param("", "empty", id="empty"),
    pytest.param("db", "missing '.'", id="no-dot"),
    pytest.param("db.", "table pattern is missing", id="no-table"),
    pytest.param(".tbl", "database pattern is missing", id="no-db"),
    pytest.param("a.b.c", "stray characters '.c'", id="three-parts"),
    pytest.param("!", "must be followed", id="bare-bang"),
    pytest.param("!!a.b", "unexpected character '!'", id="double-bang"),
    pytest.param("@filters.txt", "@file imports are not allowed", id="file-import"),
    pytest.param("# comment", "comment", id="comment"),
    pytest.param("my db.t", "spaces are only allowed inside `backquotes`", id="space"),
    pytest.param(" db.t", "leading or trailing whitespace", id="leading-space"),
    pytest.param("db.t ", "leading or trailing whitespace", id="trailing-space"),
    pytest.param("db\\ x.t", "spaces are only allowed", id="escaped-space"),
    pytest.param("db.[ ]", "spaces are only allowed", id="space-range"),
    pytest.param("db.t\u3000x", "spaces are only allowed", id="ideographic-space"),
    pytest.param("db.t;DROP TABLE x", "unexpected character ';'", id="semicolon"),
    pytest.param("db.$(whoami)", "unexpected character '('", id="command-substitution"),
    pytest.param("`db.t", "backquoted database name is not closed", id="unclosed-backquote"),
    pytest.param("db.`t", "backquoted table name is not closed", id="unclosed-backquote-table"),
    pytest.param("db.t`x`", "unexpected character '`'", id="backquote-mid-name"),
    pytest.param('"db.t', "double-quoted database name is not closed", id="unclosed-double-quote"),
    pytest.param("``.t", "quoted database name is empty", id="empty-backquotes"),
    pytest.param("`a`b.t", "missing '.'", id="partially-quoted"),
    pytest.param("db.t\nother.t", "control character", id="newline"),
    pytest.param("db.t\x00", "control character", id="nul"),
    pytest.param("db\t.t", "control character", id="tab"),
    pytest.param("db.t|cat", "unexpected character '|'", id="pipe"),
    pytest.param("db.t&", "unexpected character '&'", id="ampersand"),
    pytest.param("db.t>x", "unexpected character '>'", id="redirect"),
    pytest.param("db.t'", "unexpected character", id="single-quote"),
    pytest.param("db.[a-z", "character class", id="unclosed-range"),
    pytest.param("db.[]", "character class", id="empty-range"),
    pytest.param("db\\", "cannot end with", id="trailing-backslash"),
    pytest.param("d\\b.t", "escapes a letter or digit", id="escaped-letter"),
    pytest.param("db.\\n", "escapes a letter or digit", id="c-escape"),
    pytest.param("/unclosed.t", "not closed", id="unclosed-regexp"),
    pytest.param("//.t", "empty or not closed", id="empty-regexp"),
    pytest.param("/(/.t", "does not compile", id="bad-regexp"),
    pytest.param("-f.t", "unexpected character '-'", id="looks-like-a-flag"),
    pytest.param("x" * 600 + ".t", "longer than", id="too-long"),
]


@pytest.mark.parametrize("pattern", VALID)
def test_valid_filters(pattern: str) -> None:
    validate_filter(pattern)


@pytest.mark.parametrize(("pattern", "reason"), INVALID)
def test_invalid_filters_say_why_and_what_is_valid(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidFilterError) as info:
        validate_filter(pattern)
    message = str(info.value)
    assert reason in message
    assert "'<db>.<table>'" in message and "backquoted" in message, "the error says what a valid filter is"
    assert info.value.reason and isinstance(info.value, ValueError)


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidFilterError, match="must be a string"):
        validate_filter(42)  # type: ignore[arg-type]
