"""Outside text made fit to show: escaped so a terminal shows it and acts on nothing, on one line, short.

``printable`` escapes what a terminal acts on or hides (controls, bidi and zero-width format characters,
separators, surrogates, unassigned code points) visibly, ``\\x1b``, ``\\r``, ``\\u202e``; every script stays
as it is. ``one_line`` is that, cut to a length; ``shown`` is a value's ``repr`` cut short, for messages
that quote what a user or a file gave. Secrets are ``tidbops.redact``'s business, not this module's.
"""

from __future__ import annotations

import unicodedata

__all__ = ["one_line", "printable", "shown"]

# What a terminal acts on or hides: controls (C0, DEL, C1), format characters (bidi overrides and
# isolates, zero-width characters, tags), lone surrogates, line and paragraph separators, unassigned.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"})
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` safe to print on a terminal, every character of those categories written as its escape."""
    if text.isprintable():  # the usual case: no character of those categories (nor any other space but " ")
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _ESCAPED_CATEGORIES else ch for ch in text)


def one_line(text: str, limit: int) -> str:
    """``printable(text)`` (so on one line), cut to ``limit`` characters with ``…``."""
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: object, limit: int = 60) -> str:
    """A value as a message quotes it: its ``repr``, cut to ``limit``; a huge integer by its size only."""
    if isinstance(value, int) and value.bit_length() > 200:
        return f"a number of {len(str(abs(value))) if value.bit_length() < 14000 else 'thousands of'} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
