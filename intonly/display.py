"""Showing text that comes from files (model, node, tensor and target names, paths) literally in the terminal.

rich interprets ``[...]`` in plain strings as markup (a node named ``[/x]`` raises MarkupError, ``[link=...]``
injects a link) and ``:name:`` as emoji; a name may also carry escape sequences that drive the terminal. Every
such string is shown through :func:`text` (a :class:`rich.text.Text`, never parsed) after :func:`literal`.
"""

from __future__ import annotations

from rich.text import Text


def literal(value) -> str:
    """``str(value)`` with every non-printable character (ESC, newline, tab, ...) as its Python escape, so a name
    can neither drive the terminal nor break a table row."""
    s = str(value)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)


def text(value, style: str = "") -> Text:
    """A literal :class:`~rich.text.Text` of ``value`` (no markup or emoji interpretation)."""
    return Text(literal(value), style=style)
