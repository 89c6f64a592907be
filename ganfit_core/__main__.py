"""Command-line entry: ``python -m ganfit_core <command> ...``.

Commands live in ``ganfit_core/cli/<command>.py``; each module exposes
``add_arguments(parser)`` and ``run(args) -> int`` (the process exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, str] = {
    "assets": "List, fetch and build model assets (weights, morphable model).",
    "detect": "Detect faces and 68 landmarks in a photo; print JSON.",
    "fit": "Reconstruct a textured 3D face from a photo.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ganfit_core", description="GANFIT 3D face reconstruction")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"ganfit_core.cli.{name}")
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"ganfit_core.cli.{args.command}")
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
