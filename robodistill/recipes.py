"""Recipes: TOML files ``policies/<method>/<name>.toml`` that override config fields.

A recipe only overrides fields of the method's config dataclass; nested dataclasses are
TOML tables. For example ``policies/diffusion/push_state.toml``::

    task = "push"
    obs_mode = "state"

    [train]
    steps = 6000

Recipes are named ``<method>/<name>`` (``diffusion/push_state``) or given as a path to a
``.toml`` file; a path's folder names its method, as in ``policies/`` (``my_recipes/rpd/x.toml``
is an RPD recipe). An unknown recipe name lists the available ones; an unknown field or a value
of the wrong type is a :class:`robodistill.configs.ConfigError` naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from robodistill.configs import ConfigError, from_dict, read_toml
from robodistill.paths import policies_dir

T = TypeVar("T")


def list_recipes(method: str | None = None) -> list[str]:
    """Names ``<method>/<name>`` of the shipped recipes, optionally of one method only."""
    root = policies_dir()
    pattern = f"{method}/*.toml" if method else "*/*.toml"
    return sorted(f"{p.parent.name}/{p.stem}" for p in root.glob(pattern))


def recipe_path(name_or_path: str | Path) -> Path:
    """The TOML file of a recipe name (``diffusion/push_state``) or an existing path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        if not candidate.is_file():
            raise ConfigError(f"recipe file {candidate} does not exist")
        return candidate
    path = policies_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        raise ConfigError(
            f"unknown recipe {str(name_or_path)!r}; available recipes: {list_recipes()} "
            f"(in {policies_dir()}), or pass a path to a .toml file"
        )
    return path


def recipe_method(name_or_path: str | Path) -> str:
    """The method a recipe belongs to: the name of the folder holding its TOML file."""
    return recipe_path(name_or_path).parent.name


def require_method(name_or_path: str | Path, method: str, example: str) -> None:
    """A ConfigError unless the recipe belongs to ``method`` (its folder is ``method/``)."""
    found = recipe_method(name_or_path)
    if found != method:
        raise ConfigError(
            f"recipe {str(name_or_path)!r} is a {found!r} recipe (the folder holding a recipe "
            f"names its method); pass a {method} recipe such as {example}, or put your own "
            f".toml in a folder named {method}/ (e.g. my_recipes/{method}/mine.toml)"
        )


def load_recipe(name_or_path: str | Path, config_cls: type[T]) -> T:
    """Build ``config_cls`` with the recipe's overrides applied to its defaults."""
    path = recipe_path(name_or_path)
    return from_dict(config_cls, read_toml(path), source=str(path))
