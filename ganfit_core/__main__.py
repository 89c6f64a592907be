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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; only ``command``'s module is imported (keeps ``--help`` and each command fast)."""
    parser = argparse.ArgumentParser(
        prog="python -m ganfit_core", description="GANFIT 3D face reconstruction"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(f"ganfit_core.cli.{name}").add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    module = importlib.import_module(f"ganfit_core.cli.{args.command}")
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
