"""Asset registry: every model file ganfit needs, where it comes from, and how to check it.

Each asset is one :class:`AssetSpec` in :data:`ASSETS` (``table.py``). :func:`resolve` finds its
file, in order:

1. **Local folder** — ``$GANFIT_WEIGHTS_DIR`` or ``<repo>/weights/``, checked (a failed check raises
   :class:`AssetHashError`: the file is yours, we don't overwrite it).
2. **Hugging Face** — the local HF cache, then (unless ``GANFIT_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``)
   one quick probe of the Hub repository (``$GANFIT_HUB_REPO``; no public one exists yet) and a
   download checked against the repository's manifest (``hub.py``; ``assets publish`` writes it).
3. **Builder** — ``builder(source_dir, out_path)`` converts the public upstream files. They come
   from a local source root (``source_dir`` / ``$GANFIT_SOURCE_DIR`` / ``<repo>/../shared``) when it
   holds them all, else they are downloaded from their upstreams into ``~/.cache/ganfit/sources``
   (``sources.py``: pinned sha256 per file; ``download.py``: resume, progress, ``GANFIT_MIRROR``).
   The output gets a provenance record and is checked (``verify.py``), then atomically renamed into
   the local folder under a per-asset lock.

**Checks** (``verify.py``): a file used as downloaded has a byte pin (``sha256``). A built file's
bytes depend on library versions and the CPU, so it is accepted by its provenance (asset, builder
version, digest of the pinned inputs) and a content fingerprint within ``tolerance``
(``fingerprints/<name>.json``).

**Adding a built asset** (one entry + one generated file):

1. pin its upstream input files in ``source_pins.tsv`` (path, size, sha256; a new upstream also
   gets one line in ``sources.py``), and read them in the builder as ``<source_dir>/...``;
2. append one ``AssetSpec(name=..., filename=..., sha256=None, builder="pkg.module:fn",
   source_subdir="folder", sources=("folder/prefix",), licence=...)`` to ``table.py``;
3. build it (``python -m ganfit_core assets build NAME --source ../shared``) and pin its content:
   ``python -m ganfit_core assets pin NAME`` writes ``fingerprints/NAME.json`` (commit it).

A downloaded-as-is asset is one entry with ``sha256`` set and no builder.

If every step fails, :class:`AssetError` lists each step with its outcome and the fix commands.
"""

from __future__ import annotations

from ganfit_core.assets.hub import HUB_PROBE_TIMEOUT_S, hub_cached, probe_hub, publish
from ganfit_core.assets.locations import builder_source, cache_dir, source_root, weights_dir
from ganfit_core.assets.resolver import AssetStatus, build, builder_input, fetch, get_spec, resolve, status
from ganfit_core.assets.sources import SourceFile, all_sources, sources_digest, sources_for
from ganfit_core.assets.spec import (
    FIX_BUILD,
    FIX_FETCH,
    HUB_REPO,
    HUB_REVISION,
    REPO_ROOT,
    AssetError,
    AssetHashError,
    AssetSpec,
    Attempt,
    SourceUnavailable,
)
from ganfit_core.assets.table import ASSETS
from ganfit_core.assets.verify import fingerprint, read_provenance, sha256_file, verify

__all__ = [
    "ASSETS",
    "AssetError",
    "AssetHashError",
    "AssetSpec",
    "AssetStatus",
    "Attempt",
    "FIX_BUILD",
    "FIX_FETCH",
    "HUB_PROBE_TIMEOUT_S",
    "HUB_REPO",
    "HUB_REVISION",
    "REPO_ROOT",
    "SourceFile",
    "SourceUnavailable",
    "all_sources",
    "build",
    "builder_input",
    "builder_source",
    "cache_dir",
    "fetch",
    "fingerprint",
    "get_spec",
    "hub_cached",
    "probe_hub",
    "publish",
    "read_provenance",
    "resolve",
    "sha256_file",
    "source_root",
    "sources_digest",
    "sources_for",
    "status",
    "verify",
    "weights_dir",
]
