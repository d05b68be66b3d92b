"""``robodistill report``: every bench/eval JSON of a folder -> one self-contained HTML page.

:mod:`~robodistill.report.collect` finds and classifies the JSON files,
:mod:`~robodistill.report.sections` turns them into format-free sections (tables, figures,
notes; :mod:`~robodistill.report.page`), which :mod:`~robodistill.report.html` renders as a
page with every image embedded (no network, no external CSS or JS) and
:mod:`~robodistill.report.markdown` as a summary for terminals and pull requests.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_report(folder: str | Path) -> tuple[Path, Path]:
    """Write ``folder/report.html`` and ``folder/report.md``; returns both paths.

    Raises ValueError (saying how to fix it) when the folder holds no JSON at all.
    """
    from robodistill.report.collect import collect
    from robodistill.report.html import render_html
    from robodistill.report.markdown import render_markdown
    from robodistill.report.sections import build_sections

    collection = collect(Path(folder))
    sections = build_sections(collection)
    title = f"robodistill report: {collection.root.resolve().name}"
    html_path = _write_atomic(collection.root / "report.html", render_html(title, sections))
    md_path = _write_atomic(collection.root / "report.md", render_markdown(title, sections))
    return html_path, md_path


def _write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` via a temp file and a rename: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
