"""Render report sections as Markdown: the tables and notes, for terminals and pull requests.

Figures are not embedded (Markdown viewers differ too much); each is named with its caption
and a pointer to ``report.html``, which holds them.
"""

from __future__ import annotations

from robodistill.report.page import Figure, Note, Section, Table


def render_markdown(title: str, sections: list[Section]) -> str:
    """The summary: a heading per section, its tables as pipe tables."""
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        parts.extend(render_block(b) for b in section.blocks)
    return "\n\n".join(parts) + "\n"


def render_block(block: Table | Figure | Note) -> str:
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Figure):
        return f"_Figure (in report.html): {block.caption}_"
    return block.text


def render_table(table: Table) -> str:
    lines = [
        _row(table.columns),
        "|" + "|".join("---" for _ in table.columns) + "|",
        *(_row(r) for r in table.rows),
    ]
    if table.caption:
        lines += ["", table.caption]
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") or " " for c in cells) + " |"
