"""Find the JSON results under a folder and tell which producer wrote each one.

A file is recognized by its ``"bench"`` field (``policy``, ``methods``, ``loop``, ``video``,
``refine``, ``compass``) or, for files written before that field existed and for
``robodistill eval --json``, by the keys its producer always writes (:data:`SIGNATURES`).
Files nobody claims are kept as *unknown* and listed in the report, never fatal. Datasets
(LeRobot or video clips), checkpoint folders and hidden files are not searched: their
JSON is metadata.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_FILES = ("report.html", "report.md")


@dataclass
class Found:
    """One recognized result file."""

    path: Path
    kind: str
    data: dict[str, Any]

    def label(self, root: Path) -> str:
        """The file's path relative to the report folder (how the page names it)."""
        return self.path.relative_to(root).as_posix()


@dataclass
class Collection:
    """Every result under ``root``, by kind, plus what was not understood."""

    root: Path
    found: list[Found] = field(default_factory=list)
    unknown: list[tuple[Path, str]] = field(default_factory=list)
    """(file, why it was not recognized)."""
    skipped: list[Path] = field(default_factory=list)
    """Dataset and checkpoint folders left out of the search."""

    def of(self, kind: str) -> list[Found]:
        return [f for f in self.found if f.kind == kind]


def _has(*keys: str) -> Callable[[Path, dict[str, Any]], bool]:
    return lambda path, data: all(k in data for k in keys)


SIGNATURES: dict[str, Callable[[Path, dict[str, Any]], bool]] = {
    "eval": _has("task", "policy", "success_rate", "success_ci95", "per_episode"),
    "policy": _has("results", "ratios", "policies"),
    "methods": _has("methods", "rti_sweep"),
    "loop": _has("runs", "policy", "seconds"),
    "video": _has("latency", "quality", "drift"),
    "compass": _has("table", "trained_embodiments"),
    "refine": _has("curves"),
    "stage": lambda path, data: path.parent.name == "stages" and "seconds" in data,
}
"""Kind -> test on (file, content) for files without a ``"bench"`` field; first match wins
(``compass`` before the generic ``refine``: both have ``curves``). ``stage`` is a record of a
finished ``robodistill demo`` stage."""

KINDS = set(SIGNATURES)
"""Every kind a ``"bench"`` field may name."""


def collect(root: Path) -> Collection:
    """Load and classify every ``*.json`` under ``root`` (recursively).

    Raises ValueError when ``root`` is not a folder or holds no JSON file at all.
    """
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder: pass the folder your benches wrote into")
    collection = Collection(root)
    files = _json_files(root, collection.skipped)
    if not files:
        raise ValueError(
            f"no JSON results under {root}: run a bench first, e.g. `robodistill bench policy "
            f"--policy runs/<teacher> --json {root}/latency.json` or `robodistill eval "
            f"--policy expert --task push --json {root}/push_expert.json`, then report again"
        )
    for path in files:
        data, problem = _load(path)
        kind = classify(path, data) if data is not None else None
        if kind is None:
            collection.unknown.append((path, problem or _keys_note(data)))
        else:
            collection.found.append(Found(path, kind, data))
    return collection


def classify(path: Path, data: dict[str, Any]) -> str | None:
    """The kind of result ``data`` (read from ``path``) is, or None if unknown."""
    bench = data.get("bench")
    if isinstance(bench, str) and bench in KINDS:
        return bench
    return next((kind for kind, test in SIGNATURES.items() if test(path, data)), None)


def _json_files(root: Path, skipped: list[Path]) -> list[Path]:
    """``*.json`` under ``root``, sorted, without hidden, dataset or checkpoint folders."""
    files: list[Path] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if _is_metadata_folder(entry):
                skipped.append(entry)
            else:
                files.extend(_json_files(entry, skipped))
        elif entry.suffix == ".json":
            files.append(entry)
    return files


def _is_metadata_folder(folder: Path) -> bool:
    """A LeRobotDataset (``meta/info.json``), a checkpoint (``model.safetensors``) or a video
    data root (``meta.json`` beside ``clips/``)."""
    return (
        (folder / "meta" / "info.json").is_file()
        or (folder / "model.safetensors").is_file()
        or ((folder / "meta.json").is_file() and (folder / "clips").is_dir())
    )


def _load(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"not readable as JSON ({err})"
    if not isinstance(data, dict):
        return None, f"a JSON {type(data).__name__}, not an object"
    return data, None


def _keys_note(data: dict[str, Any] | None) -> str:
    keys = sorted(data or {})
    shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
    return f"no producer writes these keys: {shown}" if keys else "an empty object"
