#!/usr/bin/env bash
# Side by side on real projects against the live index (see benches/live.py):
# thoth-rs advise -t latest and uv pip compile, cold and warm.
# Needs python3 and the network (the index pip is configured with).
#   ROUNDS=3 benches/live.sh [--only ctfd netbox] [--json results.json]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(realpath -m "${WORK:-target/live}")
mkdir -p "$WORK"
if [ ! -x "$WORK/venv/bin/uv" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install --quiet uv
fi
cargo build --release --quiet
"$WORK/venv/bin/uv" --version >&2
exec python3 benches/live.py --uv "$WORK/venv/bin/uv" --work "$WORK" --rounds "${ROUNDS:-1}" "$@"
