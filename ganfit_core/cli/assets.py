"""``python -m ganfit_core assets {list,build,fetch}``: inspect, build and download model assets.

Exit codes: 0 success; 1 some asset failed (missing, mismatch, build or download error);
2 bad usage (unknown asset name).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands ``list``, ``build`` and ``fetch``."""
    sub = parser.add_subparsers(dest="assets_command", required=True)
    sub.add_parser("list", help="Show every registered asset and whether its file is present and verified.")
    build = sub.add_parser("build", help="Build assets from their public upstream sources.")
    build.add_argument("names", nargs="*", help="asset names (default: every asset that has a builder)")
    build.add_argument("--source", type=Path, default=None,
                       help="source root holding e.g. ict-facekit/ "
                       "(default: $GANFIT_SOURCE_DIR or ../shared)")
    build.add_argument("--force", action="store_true", help="rebuild even if a verified file exists")
    fetch = sub.add_parser("fetch", help="Download assets from the Hugging Face Hub (into its cache).")
    fetch.add_argument("names", nargs="*", help="asset names (default: all)")
    fetch.add_argument("--force", action="store_true", help="download again even if cached")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def _check_names(names: list[str]) -> list[str] | None:
    from ganfit_core.assets import ASSETS

    unknown = [name for name in names if name not in ASSETS]
    if unknown:
        print(f"unknown asset(s): {', '.join(unknown)}; known: {', '.join(sorted(ASSETS))}", file=sys.stderr)
        return None
    return names


def _list() -> int:
    from ganfit_core.assets import ASSETS, status, weights_dir

    rows = [["name", "file", "status", "location", "licence"]]
    worst = EXIT_OK
    for name in ASSETS:
        info = status(name)
        rows.append([name, info.spec.filename, info.status, str(info.location or "-"), info.spec.licence])
        if info.status == "unpinned":
            rows[-1][2] += f" (sha256 {info.sha256})"
        if info.status in {"missing", "sha mismatch"}:
            worst = EXIT_FAILED
    print(_table(rows))
    print(f"\nlocal folder: {weights_dir()}  (build: python -m ganfit_core assets build --source DIR)")
    return worst


def _build(names: list[str], source: Path | None, force: bool) -> int:
    from ganfit_core.assets import ASSETS, AssetError, build

    targets = names or [name for name, spec in ASSETS.items() if spec.builder]
    code = EXIT_OK
    for name in targets:
        try:
            path = build(name, source_dir=source, force=force)
        except AssetError as exc:
            print(f"{name}: FAILED\n{exc}", file=sys.stderr)
            code = EXIT_FAILED
        else:
            print(f"{name}: ok  {path}")
    return code


def _fetch(names: list[str], force: bool) -> int:
    from ganfit_core.assets import ASSETS, AssetError, fetch, status

    code = EXIT_OK
    for name in names or list(ASSETS):
        local = status(name)
        if not force and local.status == "verified" and local.location is not None:
            print(f"{name}: ok  {local.location} (already present; --force downloads anyway)")
            continue
        try:
            path = fetch(name, force=force)
        except AssetError as exc:
            print(f"{name}: FAILED\n{exc}", file=sys.stderr)
            code = EXIT_FAILED
        else:
            print(f"{name}: ok  {path}")
    return code


def run(args: argparse.Namespace) -> int:
    """Run ``assets <list|build|fetch>``; returns the exit code."""
    command = args.assets_command
    if command == "list":
        return _list()
    names = _check_names(list(args.names))
    if names is None:
        return EXIT_USAGE
    if command == "build":
        return _build(names, args.source, args.force)
    return _fetch(names, args.force)
