"""Render report sections as one self-contained HTML page.

Everything is inline: the stylesheet in a ``<style>`` element, every figure a base64
``data:`` PNG, no script at all. A Content-Security-Policy meta tag forbids the page any other
source, so a browser shows the report without network and would refuse (and log) anything
that tried to load from elsewhere. Text is escaped with :func:`html.escape`; backticks in
captions and notes become ``<code>``.
"""

from __future__ import annotations

import base64
import html
import re

from robodistill.report.page import Figure, Note, Section, Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       margin: 0; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 6px; font-size: 22px; }
nav a { color: #b8c7ff; margin-right: 14px; text-decoration: none; font-size: 14px; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 32px 40px; }
section { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; margin: 18px 0;
          padding: 6px 20px 16px; }
h2 { font-size: 18px; border-bottom: 1px solid #e4e7ed; padding-bottom: 6px; }
.scroll { overflow-x: auto; margin: 12px 0; }
table { border-collapse: collapse; font-size: 13.5px; }
caption { caption-side: bottom; text-align: left; color: #5a6270; font-size: 12.5px;
          padding-top: 6px; max-width: 1100px; }
th, td { border-bottom: 1px solid #e4e7ed; padding: 4px 10px; text-align: left;
         white-space: nowrap; }
th { background: #eef1f6; font-weight: 600; white-space: normal; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:hover { background: #f3f6ff; }
figure { margin: 14px 0; }
figure.inline { display: inline-block; vertical-align: top; margin: 8px 18px 8px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e7ed; }
figcaption { color: #5a6270; font-size: 12.5px; }
code { background: #eef1f6; padding: 0 3px; border-radius: 3px; font-size: 12.5px; }
"""

NUMERIC = re.compile(r"^[-–]?\d|^–$")


def render_html(title: str, sections: list[Section]) -> str:
    """The whole page: header with a link to every section, then the sections in order."""
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = "\n".join(render_section(s) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1><nav>{nav}</nav></header>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def render_section(section: Section) -> str:
    blocks = "\n".join(render_block(b) for b in section.blocks)
    title = html.escape(section.title)
    return f'<section id="{html.escape(section.anchor)}">\n<h2>{title}</h2>\n{blocks}\n</section>'


def render_block(block: Table | Figure | Note) -> str:
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        kind = ' class="inline"' if block.inline else ""
        return (
            f'<figure{kind}><img src="data:image/png;base64,{data}" alt="{html.escape(block.alt)}">'
            f"<figcaption>{_text(block.caption)}</figcaption></figure>"
        )
    return f"<p>{_text(block.text)}</p>"


def render_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = "\n".join(
        "<tr>" + "".join(_cell(cell, table.align_numbers) for cell in row) + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{_text(table.caption)}</caption>" if table.caption else ""
    return (
        f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody></table></div>"
    )


def _cell(cell: str, align_numbers: bool) -> str:
    kind = ' class="num"' if align_numbers and NUMERIC.match(cell) else ""
    return f"<td{kind}>{html.escape(cell)}</td>"


def _text(text: str) -> str:
    """Escaped text with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
