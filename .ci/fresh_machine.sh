#!/usr/bin/env bash
# Fresh-machine check: a new user's first start, with the upstreams replaced by a local mirror.
#
#   bash .ci/fresh_machine.sh            (from a checkout with ../shared beside it; CI calls it)
#
# 1. clones this repository's HEAD into a temporary folder with no ../shared beside it;
# 2. lays ../shared out as a mirror of the upstream hosts and serves it on 127.0.0.1
#    (GANFIT_MIRROR; Range requests supported);
# 3. runs the README's quick start in the clone (new venv, pip install, python app.py) with an
#    empty per-user cache: every model file is built from sources downloaded from the mirror;
# 4. waits for the app to serve, then fits examples/astronaut.jpg through gradio_client
#    `/reconstruct` (a few steps per stage) and checks that the result holds a GLB.
# Prints the first-start time and the download size. Needs: git, python3 (PYTHON), the CI venv's
# ganfit for the mirror (or any python with this checkout on PYTHONPATH). KEEP=1 keeps the folder.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_DIR=$PWD
SOURCE_DIR="${GANFIT_SOURCE_DIR:-$(cd .. && pwd)/shared}"
PYTHON="${PYTHON:-python3}"
START_TIMEOUT_S="${START_TIMEOUT_S:-1500}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ganfit-fresh.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "== fresh clone (no ../shared beside it) =="
git clone --quiet --no-hardlinks "$REPO_DIR" "$WORK/ganfit"
test ! -e "$WORK/shared"

echo "== mirror of the upstream sources from $SOURCE_DIR =="
PYTHONPATH="$REPO_DIR" "$PYTHON" -m ganfit_core assets mirror --source "$SOURCE_DIR" --out "$WORK/mirror"
MIRROR_PORT=$(free_port)
PYTHONPATH="$REPO_DIR" "$PYTHON" -m ganfit_core assets serve-mirror "$WORK/mirror" --port "$MIRROR_PORT" \
    > "$WORK/mirror.log" 2>&1 &
PIDS+=($!)

cd "$WORK/ganfit"
# A new user's environment: no source folder, empty caches, upstreams (and the Hub) through the mirror.
unset GANFIT_SOURCE_DIR GANFIT_WEIGHTS_DIR GANFIT_OFFLINE HF_HUB_OFFLINE PYTHONPATH VIRTUAL_ENV
export GANFIT_MIRROR="http://127.0.0.1:$MIRROR_PORT"
export GANFIT_CACHE_DIR="$WORK/cache" HF_HOME="$WORK/hf" HF_ENDPOINT="http://127.0.0.1:$MIRROR_PORT"
export GRADIO_SERVER_PORT=$(free_port) GRADIO_ANALYTICS_ENABLED=False

echo "== README quick start: venv + pip install =="
t0=$SECONDS
"$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip install -q -r requirements.txt -e . 2> >(grep -v "^WARNING: Location" >&2)
echo "pip install: $((SECONDS - t0)) s"

echo "== README quick start: python app.py (first start builds every model file) =="
t1=$SECONDS
python app.py > "$WORK/app.log" 2>&1 &
APP_PID=$!
PIDS+=("$APP_PID")
URL="http://127.0.0.1:$GRADIO_SERVER_PORT/"
until python -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$URL" 2>/dev/null; do
    if ! kill -0 "$APP_PID" 2>/dev/null; then
        echo "the app exited during its first start:" >&2; tail -n 40 "$WORK/app.log" >&2; exit 1
    fi
    if [ $((SECONDS - t1)) -gt "$START_TIMEOUT_S" ]; then
        echo "the app did not serve within $START_TIMEOUT_S s" >&2; tail -n 40 "$WORK/app.log" >&2; exit 1
    fi
    sleep 2
done
FIRST_START_S=$((SECONDS - t1))
DOWNLOAD_BYTES=$(du -sb "$WORK/cache/sources" | cut -f1)
echo "first start: $FIRST_START_S s; downloaded $((DOWNLOAD_BYTES / 1000000)) MB of upstream sources"

echo "== gradio_client /reconstruct =="
t2=$SECONDS
python - "$URL" <<'PY'
import sys
from pathlib import Path

from gradio_client import Client, handle_file

client = Client(sys.argv[1], verbose=False)
endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/reconstruct"]
settings = {}
for parameter in endpoint["parameters"]:
    name, default = parameter["parameter_name"], parameter.get("parameter_default")
    if name.endswith("_steps") and isinstance(default, int) and default > 0:
        settings[name] = 2
    elif name == "render_size":
        settings[name] = 96
    elif name == "device":
        settings[name] = "cpu"
result = client.predict(handle_file("examples/astronaut.jpg"), **settings, api_name="/reconstruct")
downloads = result[4]
paths = [Path(d["value"] if isinstance(d, dict) and "value" in d else d) for d in downloads]
glbs = [p for p in paths if p.suffix == ".glb"]
if not glbs or glbs[0].read_bytes()[:4] != b"glTF":
    raise SystemExit(f"no GLB among the downloads: {downloads}")
print(f"/reconstruct returned {glbs[0].name} ({glbs[0].stat().st_size} bytes); status: {result[2]!r}")
PY
echo "reconstruct: $((SECONDS - t2)) s"
echo "FRESH MACHINE PASSED: pip $((t1 - t0)) s, first start $FIRST_START_S s," \
     "download $((DOWNLOAD_BYTES / 1000000)) MB, total $SECONDS s"
