#!/usr/bin/env bash
# Side-by-side benchmark: thoth-rs vs `uv pip compile` vs `pip-compile` on the
# bundled snapshot exported as a file:// index (see benches/compare.py).
# Needs python3 and, once, network access to the index pip is configured with
# (to install uv and pip-tools into a throw-away virtualenv).
#   ROUNDS=5 benches/compare.sh [--json results.json]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-target/compare}
mkdir -p "$WORK"
if [ ! -x "$WORK/venv/bin/uv" ] || [ ! -x "$WORK/venv/bin/pip-compile" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install --quiet uv pip-tools
fi
cargo build --release --quiet
"$WORK/venv/bin/uv" --version >&2
"$WORK/venv/bin/pip-compile" --version >&2
exec python3 benches/compare.py --venv "$WORK/venv" --work "$WORK" --rounds "${ROUNDS:-3}" "$@"
