"""Showing text that comes from files (model, node, tensor and target names, paths) literally in the terminal.

rich interprets ``[...]`` in plain strings as markup (a node named ``[/x]`` raises MarkupError, ``[link=...]``
injects a link) and ``:name:`` as emoji; a name may also carry escape sequences that drive the terminal. Every
such string is shown through :func:`text` (a :class:`rich.text.Text`, never parsed) after :func:`literal`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Bounded tables (:func:`print_table`): the first HEAD_ROWS and last TAIL_ROWS rows unless all rows are asked
# for; more than RICH_TABLE_MAX_ROWS rows print as aligned plain text (rich's layout costs ~1 ms a row).
HEAD_ROWS = 100
TAIL_ROWS = 100
RICH_TABLE_MAX_ROWS = 500


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


def shown_indices(total: int, all_rows: bool = False, head: int = HEAD_ROWS, tail: int = TAIL_ROWS) -> list[int | None]:
    """Row indices to show of ``total``: all, or the first ``head`` and last ``tail`` with ``None`` (one "… N
    more" row) between them when that leaves at least two rows out."""
    if all_rows or total <= head + tail + 1:
        return list(range(total))
    return [*range(head), None, *range(total - tail, total)]


def print_table(console: Console, title: str, columns: Sequence[tuple[str, str]], total: int,
                row: Callable[[int], Sequence[str]], noun: str, all_rows: bool = False,
                head: int = HEAD_ROWS, tail: int = TAIL_ROWS) -> int:
    """Print ``total`` rows, ``row(i)`` giving row i's cells as plain strings (shown literally), under ``title``
    with ``columns`` = (header, "left" | "right"); bounded as :func:`shown_indices` says, the left-out rows
    replaced by one "… N more <noun> (use --all to list every <noun singular>)" row. Returns the number of
    data rows printed."""
    indices = shown_indices(total, all_rows, head, tail)
    omitted = total - head - tail
    more = f"… {omitted:,} more {noun}s (use --all to list every {noun})"
    rows = [None if i is None else [literal(c) for c in row(i)] for i in indices]
    if len(rows) > RICH_TABLE_MAX_ROWS:
        _print_plain(console, title, columns, rows, more)
    else:
        table = Table(title=text(title))
        for header, justify in columns:
            table.add_column(header, justify=justify)
        for cells in rows:
            if cells is None:  # "…" in the first column, the count in the second
                table.add_row(Text("…"), Text(more, style="italic"), *[Text("")] * (len(columns) - 2))
            else:
                table.add_row(*(Text(c) for c in cells))
        console.print(table)
    return sum(cells is not None for cells in rows)


def _print_plain(console: Console, title: str, columns: Sequence[tuple[str, str]], rows: list, more: str) -> None:
    """A large table as aligned plain text: header, rule, one line per row (cells already literal)."""
    headers = [h for h, _ in columns]
    widths = [cell_len(h) for h in headers]
    for cells in rows:
        if cells is not None:
            for k, c in enumerate(cells):
                n = len(c) if c.isascii() else cell_len(c)
                if n > widths[k]:
                    widths[k] = n

    def line(cells):
        out = []
        for c, w, (_, justify) in zip(cells, widths, columns):
            pad = " " * (w - (len(c) if c.isascii() else cell_len(c)))
            out.append(pad + c if justify == "right" else c + pad)
        return "  ".join(out).rstrip()

    lines = [literal(title), line(headers), "  ".join("─" * w for w in widths)]
    lines += [more if cells is None else line(cells) for cells in rows]
    console.print(Text("\n".join(lines)), soft_wrap=True)
