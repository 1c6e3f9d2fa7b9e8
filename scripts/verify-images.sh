#!/usr/bin/env bash
# Check `image inspect` and `advise --base-image` on real Debian images built
# by scripts/build-debian-images.sh, and print a Markdown table of results
# and timings (for the README's base-image section).
#
# Usage: scripts/verify-images.sh IMAGES_DIR
#   IMAGES_DIR holds debian12-rootfs/, debian12-oci/, debian12-docker.tar and
#   debian12-venvs-rootfs/ (build them first; that needs root and debootstrap).
# Works offline on the bundled snapshot; needs nothing but the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=$(realpath "${1:?usage: $0 IMAGES_DIR}")
cargo build --release --quiet
BIN=$PWD/target/release/thoth-rs
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export THOTH_OFFLINE=1 THOTH_KB="$WORK/kb.sqlite" THOTH_DATA_DIR="$WORK/data"
printf 'requests\npyyaml\ngitpython\nflask\n' > "$WORK/requirements.in"

seconds() { # command... → wall seconds, output kept in $WORK/out
    local start end
    start=$(date +%s.%N)
    "$@" > "$WORK/out" 2> "$WORK/err" || { echo "failed: $*" >&2; cat "$WORK/err" >&2; return 1; }
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }'
}

echo "| image form | interpreters (kind) | Python packages | inspect |"
echo "|---|---|---|---|"
for form in debian12-rootfs debian12-oci debian12-docker.tar debian12-venvs-rootfs; do
    t=$(seconds "$BIN" image inspect --json "$IMAGES/$form")
    python3 - "$WORK/out" "$form" "$t" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
interp = "; ".join(f"{i['path']} ({i['kind']}{', externally managed' if i.get('externally_managed') else ''}{', system site' if i.get('system_site_packages') else ''})" for i in a["python_interpreters"])
pk = a["python_packages"]
sites = sorted({p["location"] for p in pk})
print(f"| {sys.argv[2]} | {interp} | {len(pk)} in {', '.join(sites)} | {sys.argv[3]} s |")
PY
done
echo
echo "| image form | mode | result | requests | charset-normalizer | GitPython unit | advise |"
echo "|---|---|---|---|---|---|---|"
for form in debian12-rootfs debian12-oci debian12-docker.tar; do
    for mode in default new-venv system-site-packages into-image; do
        args=(advise -C "$WORK" -t latest --json --format requirements -o "$WORK/lock.txt" --base-image "$IMAGES/$form")
        [ "$mode" = default ] || args+=(--base-image-mode "$mode")
        t=$(seconds "$BIN" "${args[@]}")
        python3 - "$WORK/out" "$form" "$mode" "$t" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["products"][0]["packages"]
msgs = [m["message"] for m in r["stack_info"]]
git = "fires" if any("GitPython calls the git" in m for m in msgs) else "silent"
mode = r["inputs"]["base_image"]["mode"]
v = lambda n: p.get(n, {}).get("version", "—")
print(f"| {sys.argv[2]} | {sys.argv[3]} → {mode} | ok, {len(p)} packages | {v('requests')} | {v('charset-normalizer')} | {git} | {sys.argv[4]} s |")
PY
    done
done
