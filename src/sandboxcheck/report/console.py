"""Terminal helpers shared by every format: consoles, columns, progress."""
from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from ..model import Result
from ..run.options import Progress

STATUS_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "skip": "dim"}


class RichProgress(Progress):
    """A progress bar on stderr (used only when stderr is a terminal)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(TextColumn("[bold]checks"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.description}"),
                        console=console_for(sys.stderr), transient=True)
        self._task: Any = None

    def start(self, total: int) -> None:
        """Show the bar."""
        self._bar.start()
        self._task = self._bar.add_task("", total=total)

    def advance(self, result: Result) -> None:
        """One more check done."""
        self._bar.update(self._task, advance=1, description=f"{result.id}: {result.status.value}")

    def finish(self) -> None:
        """Remove the bar."""
        self._bar.stop()


def console_for(out: IO[str], color: bool | None = None, width: int | None = None) -> Console:
    """A console on ``out`` that follows the conventions people set in their environment.

    ``color`` None lets rich decide as it does for every rich program: colour on a
    terminal, none when ``NO_COLOR`` is set, forced by ``FORCE_COLOR``. The width
    is ``width``, else ``COLUMNS``, else the terminal's, else 80.
    """
    return Console(file=out, force_terminal=color, no_color=True if color is False else None,
                   width=width, soft_wrap=False, highlight=False)


def cut(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    one = " ".join(text.split())
    return one if len(one) <= width else one[:max(0, width - 1)] + "…"


class Columns:
    """Aligned columns of one line per row, never cut, then a last column cut to what room is left."""

    def __init__(self, heads: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> None:
        self.widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(heads)]
        room = width - sum(self.widths) - 2 * len(self.widths)
        #: Characters left for the last column; 0 when too few to be worth showing.
        self.room = room if room >= MIN_REASON else 0

    def line(self, cells: Sequence[str], last: str = "", styles: Mapping[int, str] | None = None,
             bold: bool = False) -> Text:
        """``cells`` aligned (styled by index), then ``last`` as it is (cut it with ``cut``)."""
        text = Text(style="bold" if bold else "")
        for i, (cell, width) in enumerate(zip(cells, self.widths)):
            text.append(("  " if i else "") + cell.ljust(width), style=(styles or {}).get(i, ""))
        if last:
            text.append("  " + last)
        text.rstrip()
        return text


def labelled(label: str, text: str, width: int, indent: str = "  ") -> str:
    """``label: text`` on lines of ``width``, continued under the text; words are never split."""
    return textwrap.fill(" ".join(text.split()), max(40, width), initial_indent=f"{indent}{label}: ",
                         subsequent_indent=indent + "  ", break_long_words=False, break_on_hyphens=False)


#: Below this many characters left for it, the compact table leaves the reason out (-v shows it).
MIN_REASON = 12


def md_cell(text: str) -> str:
    """``text`` as one markdown table cell: on one line, every markdown character escaped."""
    from .text import md_text

    return md_text(text)
