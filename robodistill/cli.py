"""The ``robodistill`` command line: one subcommand per module in :mod:`robodistill.commands`.

Each command module defines ``add_arguments(parser)`` and ``run(args) -> int`` and may set
``HELP`` (else its docstring's first line is the help); it keeps heavy imports (torch,
lerobot) inside ``run`` so ``--help`` stays fast. Errors a user can fix (bad names, shapes,
configs, checkpoints) are printed as one line that says what to do, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from robodistill.configs import ConfigError

COMMANDS: dict[str, str] = {
    "envs": "robodistill.commands.envs",
    "collect": "robodistill.commands.collect",
    "eval": "robodistill.commands.eval",
    "train": "robodistill.commands.train",
    "distill": "robodistill.commands.distill",
    "refine": "robodistill.commands.refine",
    "bench": "robodistill.commands.bench",
    "report": "robodistill.commands.report",
    "serve": "robodistill.commands.serve",
    "video": "robodistill.commands.video",
    "demo": "robodistill.commands.demo",
}
"""Subcommand name -> module; extended as stages land."""


def add_command_modules(sub: argparse._SubParsersAction, registry: dict[str, str]) -> None:
    """One subparser per ``name -> module`` entry; the module's ``run`` becomes ``args.run``."""
    for name, module_name in registry.items():
        module = importlib.import_module(module_name)
        summary = getattr(module, "HELP", module.__doc__.strip().splitlines()[0])
        command = sub.add_parser(
            name,
            help=summary,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robodistill",
        description="Make robot diffusion policies fast enough for real-time control.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_command_modules(sub, COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Everything robodistill reads is local: never reach for the Hugging Face hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ConfigError, ValueError, FileNotFoundError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"robodistill {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robodistill {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
