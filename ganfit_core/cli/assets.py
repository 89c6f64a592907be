"""``python -m ganfit_core assets {list,build,fetch,sources,mirror,serve-mirror,pin,publish}``.

Exit codes: 0 success; 1 some asset failed (missing, mismatch, build or download error);
2 bad usage (unknown asset name).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``assets`` subcommands."""
    sub = parser.add_subparsers(dest="assets_command", required=True)
    sub.add_parser("list", help="Show every registered asset and whether its file is present and verified.")
    build = sub.add_parser("build", help="Build assets from their upstream sources (local, else downloaded).")
    build.add_argument("names", nargs="*",
                       help="asset names (default: every asset that has a builder, except on-demand ones "
                       "such as texture_gan, which trains for about 45 minutes)")
    build.add_argument("--source", type=Path, default=None,
                       help="source root holding e.g. ict-facekit/ (default: $GANFIT_SOURCE_DIR or "
                       "../shared; inputs missing there are downloaded from upstream)")
    build.add_argument("--force", action="store_true", help="rebuild even if a verified file exists")
    fetch = sub.add_parser("fetch", help="Download assets from the Hugging Face Hub (into its cache).")
    fetch.add_argument("names", nargs="*", help="asset names (default: all)")
    fetch.add_argument("--force", action="store_true", help="download again even if cached")
    sub.add_parser("sources", help="Print the upstream source files as JSON (url, sha256, size, assets).")
    mirror = sub.add_parser("mirror", help="Lay a local source root out as a mirror (DIR/HOST/PATH) for "
                            "GANFIT_MIRROR.")
    mirror.add_argument("--source", type=Path, required=True, help="local source root, e.g. ../shared")
    mirror.add_argument("--out", type=Path, required=True, help="mirror folder to write")
    mirror.add_argument("prefixes", nargs="*", help="only sources whose path starts with one of these")
    serve = sub.add_parser("serve-mirror", help="Serve a mirror folder over HTTP (Range requests supported).")
    serve.add_argument("folder", type=Path)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    pin = sub.add_parser("pin", help="Write built assets' content fingerprints (fingerprints/NAME.json).")
    pin.add_argument("names", nargs="+", help="asset names")
    publish = sub.add_parser("publish", help="Upload the built files and a manifest to a Hub repository.")
    publish.add_argument("--repo", default=None, help="Hub repository id (default: $GANFIT_HUB_REPO)")
    publish.add_argument("names", nargs="*", help="asset names (default: every asset present locally)")
    publish.add_argument("--private", action="store_true", help="create the repository as private")


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
        if info.status in {"missing", "sha mismatch", "content mismatch"}:
            worst = EXIT_FAILED
    print(_table(rows))
    print(f"\nlocal folder: {weights_dir()}  (build: python -m ganfit_core assets build --source DIR)")
    return worst


def _build(names: list[str], source: Path | None, force: bool) -> int:
    from ganfit_core.assets import ASSETS, AssetError, build

    targets = names or [name for name, spec in ASSETS.items() if spec.builder and not spec.on_demand]
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


def _sources() -> int:
    from ganfit_core.assets import ASSETS, all_sources
    from ganfit_core.assets.sources import assets_using

    rows = []
    for f in all_sources():
        row = {"path": f.path, "url": f.url, "sha256": f.sha256, "size": f.size,
               "assets": assets_using(f, ASSETS)}
        if f.member:
            row["member"] = f.member
        rows.append(row)
    print(json.dumps(rows, indent=1))
    return EXIT_OK


def _mirror(source: Path, out: Path, prefixes: list[str]) -> int:
    from ganfit_core.assets import AssetError
    from ganfit_core.assets.mirror import make_mirror

    try:
        count, size = make_mirror(source, out, prefixes)
    except AssetError as exc:
        print(f"mirror FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"mirror: {count} source files ({size / 1e6:.0f} MB) under {out}; use "
          f"GANFIT_MIRROR=http://HOST:PORT with `python -m ganfit_core assets serve-mirror {out}`")
    return EXIT_OK


def _serve(folder: Path, host: str, port: int) -> int:
    from ganfit_core.assets.mirror import make_server

    server = make_server(folder, host, port)
    print(f"serving {folder} at http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def _pin(names: list[str]) -> int:
    from ganfit_core.assets import AssetError, get_spec, read_provenance, sources_digest, weights_dir
    from ganfit_core.assets.verify import write_reference_fingerprint

    code = EXIT_OK
    for name in names:
        spec = get_spec(name)
        path = weights_dir() / spec.filename
        try:
            if spec.builder is None or spec.sha256 is not None:
                raise AssetError("only built assets without a byte pin get a fingerprint")
            provenance = read_provenance(path) if path.is_file() else None
            digest = sources_digest(spec)
            if provenance is None:
                raise AssetError(f"{path} is missing or has no provenance: build it first "
                                 f"(`python -m ganfit_core assets build {name} --force`)")
            stale = (provenance.get("sources_sha256") != digest
                     or provenance.get("builder_version") != spec.builder_version)
            if stale:
                raise AssetError(f"{path} was built from other sources or by another builder version: "
                                 "rebuild it")
            out = write_reference_fingerprint(spec, path, digest)
        except (AssetError, ValueError) as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            code = EXIT_FAILED
        else:
            print(f"{name}: pinned {out}")
    return code


def _publish(repo: str | None, names: list[str], private: bool) -> int:
    import os

    from ganfit_core.assets import ASSETS, AssetError, publish, status

    repo = repo or os.environ.get("GANFIT_HUB_REPO")
    if not repo:
        print("publish: give --repo ID (or set GANFIT_HUB_REPO)", file=sys.stderr)
        return EXIT_USAGE
    files = []
    for name in names or list(ASSETS):
        info = status(name)
        if info.status == "verified" and info.location is not None:
            files.append((info.spec, info.location))
        elif names:
            print(f"{name}: not published: {info.status}", file=sys.stderr)
            return EXIT_FAILED
    if not files:
        print("publish: no verified asset file to upload (build them first)", file=sys.stderr)
        return EXIT_FAILED
    try:
        url = publish(repo, files, private=private)
    except (AssetError, OSError, Exception) as exc:  # noqa: BLE001 - the Hub client raises many types
        print(f"publish FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for spec, path in files:
        print(f"{spec.name}: uploaded {path.name}")
    print(f"published {len(files)} file(s) + manifest.json to {repo}: {url}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run one ``assets`` subcommand; returns the exit code."""
    command = args.assets_command
    if command == "list":
        return _list()
    if command == "sources":
        return _sources()
    if command == "mirror":
        return _mirror(args.source, args.out, list(args.prefixes))
    if command == "serve-mirror":
        return _serve(args.folder, args.host, args.port)
    names = _check_names(list(args.names))
    if names is None:
        return EXIT_USAGE
    if command == "build":
        return _build(names, args.source, args.force)
    if command == "pin":
        return _pin(names)
    if command == "publish":
        return _publish(args.repo, names, args.private)
    return _fetch(names, args.force)
