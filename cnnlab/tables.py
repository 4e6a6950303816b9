"""Tables cnnlab writes: aligned Markdown, and CSV rows whose cells stay data.

Cells can hold names from elsewhere (class folder names, file paths), so they are escaped where they are
written: in Markdown ``|``, ``<``, ``>`` and line breaks; in CSV a leading ``=``, ``+``, ``-``, ``@``,
tab or carriage return, which spreadsheets read as a formula (OWASP's CSV-injection advice).
"""

import csv
import re
from collections.abc import Iterable

_MARKDOWN = {"|": "\\|", "<": "&lt;", ">": "&gt;", "\r\n": " ", "\n": " ", "\r": " "}
_NUMBER = re.compile(r"[+-]?(\d[\d,]*\.?\d*|\.\d+)(e[+-]?\d+)?%?")


def markdown_cell(value) -> str:
    """``value`` as the text of one Markdown table cell."""
    text = str(value)
    for raw, escaped in _MARKDOWN.items():
        text = text.replace(raw, escaped)
    return text


def markdown_table(header: list[str], rows: list[list], align: str = "") -> str:
    """An aligned Markdown table; ``align`` holds ``l`` or ``r`` per column (default: left). Cells are
    escaped (``markdown_cell``)."""
    cells = [[markdown_cell(c) for c in header]] + [[markdown_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    align = align.ljust(len(header), "l")

    def line(row):
        padded = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        return "| " + " | ".join(padded) + " |"

    ends = [":" if a == "r" else "-" for a in align]
    rule = "".join("|" + "-" * (w + 1) + end for w, end in zip(widths, ends, strict=True))
    return "\n".join([line(cells[0]), rule + "|", *(line(r) for r in cells[1:])])


def csv_cell(value):
    """``value`` for a CSV cell: text that a spreadsheet would run as a formula gets a leading ``'``;
    numbers (``-0.5``) stay numbers."""
    if not isinstance(value, str) or not value or value[0] not in "=+-@\t\r":
        return value
    return value if _NUMBER.fullmatch(value) else "'" + value


def write_csv(path, header: list[str], rows: Iterable[Iterable]) -> None:
    """A CSV file of ``header`` and ``rows``, every cell through ``csv_cell``."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([csv_cell(c) for c in header])
        writer.writerows([csv_cell(c) for c in row] for row in rows)
