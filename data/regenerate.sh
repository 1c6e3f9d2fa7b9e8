#!/usr/bin/env bash
# Rebuild the bundled snapshot (data/snapshot.sqlite.zst) from data/roots.txt.
# Needs network access to the index pip is configured with (or --index-url in
# SYNC_ARGS), the PyPA advisory database at ADVISORIES, and the zstd tool.
# Project pages are always fetched again (--refresh): a snapshot's cutoff is
# only true if its pages are at least that recent. Legacy names of the index
# that Pipfiles still carry are given as data at build time:
# SYNC_ARGS="--index-alias URL" (recorded in the snapshot's meta table).
set -euo pipefail
cd "$(dirname "$0")/.."
CUTOFF=${CUTOFF:-$(date -u +%Y-%m-%d)}
ADVISORIES=${ADVISORIES:-../shared/data/pypa-advisory-database/vulns}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cargo build --release
./target/release/thoth-rs snapshot sync --roots data/roots.txt --max-versions 25 --root-extras listed \
    --exclude-newer "$CUTOFF" --jobs 8 --refresh -o "$WORK/snapshot.sqlite" ${SYNC_ARGS:-}
./target/release/thoth-rs snapshot import-advisories "$ADVISORIES" --snapshot "$WORK/snapshot.sqlite"
zstd -19 -f "$WORK/snapshot.sqlite" -o data/snapshot.sqlite.zst
./target/release/thoth-rs snapshot info --snapshot "$WORK/snapshot.sqlite"
