"""Text that did not come from this process, made safe for a terminal, markdown and HTML.

A fleet's reports come from many hosts, and one compromised host can hand
the merging job anything: escape sequences that repaint a terminal or a CI
log, markdown that shifts a table's cells or opens an HTML comment that
swallows the rest of a job summary, look-alike names. ``clean`` takes the
characters out that no report text needs; ``md_text`` and ``md_code`` then
escape what markdown would read as syntax. Nothing here imports rich.
"""
from __future__ import annotations

import re
import unicodedata

#: Longest text kept of one field (the rest is cut, with an ellipsis).
TEXT_LIMIT = 4000
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#!|~$])")


def _kept(ch: str) -> bool:
    """Whether a character may stay: no control (C0, C1, DEL) and no format character
    (zero-width, bidirectional overrides), which show nothing or reorder what is shown."""
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")


def clean(text: object, limit: int = TEXT_LIMIT) -> str:
    """``text`` on one line, without control or format characters, at most ``limit`` characters."""
    s = _LINE_BREAKS.sub(" ", str(text))
    if not s.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in s):
        s = "".join(c for c in s if _kept(c))
    return s if len(s) <= limit else s[: max(0, limit - 1)] + "…"


def sane(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` as read from a report, kept as it is except for control and format characters
    (newlines and tabs stay: a renderer folds them) and its length."""
    if not text.isascii() or any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in text):
        text = "".join(c for c in text if c in "\n\t" or _kept(c))
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def md_text(text: object) -> str:
    """``text`` as literal markdown (a table cell, a list item): cleaned, and every character
    markdown or its HTML would read as syntax escaped, pipes included."""
    s = clean(text)
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return s.replace("&", "&amp;")


def md_code(text: object) -> str:
    """``text`` as inline code that nothing in it can end early or turn into a link: markdown
    is still read between HTML tags, so the text inside is escaped as ``md_text`` escapes it."""
    return f"<code>{md_text(text)}</code>"
