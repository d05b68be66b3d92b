"""What a report says, independent of its format: sections of tables, figures and notes.

The section builders produce these; the HTML and Markdown renderers only lay them out, so both
outputs always show the same numbers. Cells are already formatted strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    """A table of formatted cells; ``caption`` says what the numbers are and where from."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    align_numbers: bool = True
    """Right-align cells that start with a number (off for key-value tables)."""


@dataclass
class Figure:
    """A PNG image (embedded as base64 in the HTML page) with its caption."""

    png: bytes
    caption: str
    alt: str = ""
    inline: bool = False
    """Laid out side by side with other inline figures (small images such as video stills)."""


@dataclass
class Note:
    """A paragraph of plain text."""

    text: str


Block = Table | Figure | Note


@dataclass
class Section:
    """One titled part of the report; ``anchor`` is its id in the page."""

    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)
