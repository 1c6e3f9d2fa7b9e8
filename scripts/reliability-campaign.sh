#!/usr/bin/env bash
# A counted reliability campaign for the README's "Reliability" section.
#
#   scripts/reliability-campaign.sh [CASES]
#
# Runs, with the release binary and offline on the bundled snapshot:
#   1. every parser fuzz target with CASES cases each (default 20000);
#   2. damaged snapshots: the bundled snapshot with random pages overwritten,
#      truncated at random, or a table swapped for a view;
#   3. kills: `advise` killed with SIGKILL at random moments, then run again;
#   4. concurrent writers: 20 `advise` runs writing one lock at once.
# Every run is bounded (1 GiB address space, 90 s); a panic is exit 101 or
# "panicked" on stderr, a hang is the timeout's exit 124.
set -u
cd "$(dirname "$0")/.."
cases=${1:-20000}
cargo build --release --quiet
bin=$PWD/target/release/thoth-rs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export THOTH_OFFLINE=1 THOTH_KB=$work/kb.sqlite NO_COLOR=1
panics=0 hangs=0 runs=0
bounded() { (ulimit -v 1048576; exec timeout 90 "$bin" "$@"); }
tally() { # exit code, stderr file
  runs=$((runs + 1))
  if [ "$1" = 101 ] || grep -q panicked "$2"; then panics=$((panics + 1)); fi
  if [ "$1" = 124 ]; then hangs=$((hangs + 1)); fi
}

echo "== fuzz targets, $cases cases each"
THOTH_FUZZ_CASES=$cases cargo test --release --quiet --no-fail-fast --test inputs_fuzz --test parsers_fuzz \
  > "$work/fuzz.log" 2>&1
grep -E "^test result|^test .* FAILED|minimal failing input" "$work/fuzz.log" || true

echo "== damaged snapshots"
snapshot=$("$bin" snapshot info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
size=$(stat -c %s "$snapshot")
proj=$work/proj && mkdir -p "$proj" && printf 'flask\nrequests\nnumpy\n' > "$proj/requirements.in"
declare -A codes=()
for i in $(seq 1 30); do
  cp "$snapshot" "$work/snap.sqlite"
  case $((i % 3)) in
    0) python3 - "$work/snap.sqlite" "$i" <<'PY'
import random, sys
random.seed(int(sys.argv[2]))
with open(sys.argv[1], "r+b") as f:
    size = f.seek(0, 2)
    for _ in range(8):
        f.seek(random.randrange(0, size // 4096) * 4096)
        f.write(bytes(random.randrange(256) for _ in range(4096)))
PY
    ;;
    1) truncate -s $(( (RANDOM * 32768 + RANDOM) % size )) "$work/snap.sqlite" ;;
    2) sqlite3 "$work/snap.sqlite" "ALTER TABLE projects RENAME TO p0; CREATE VIEW projects AS SELECT * FROM p0;" ;;
  esac
  bounded -C "$proj" advise -q --snapshot "$work/snap.sqlite" -o "$work/out.lock" 2> "$work/err"
  rc=$?; tally $rc "$work/err"; codes[$rc]=$(( ${codes[$rc]:-0} + 1 ))
done
for k in "${!codes[@]}"; do echo "  exit $k: ${codes[$k]}"; done

echo "== kills"
leftovers=0
for i in $(seq 1 25); do
  "$bin" -C "$proj" advise -q -o "$proj/requirements.txt" 2>/dev/null &
  pid=$!
  sleep "0.$(( RANDOM % 40 ))"
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  bounded -C "$proj" advise -q -o "$proj/requirements.txt" 2> "$work/err"
  rc=$?; tally $rc "$work/err"
  [ "$rc" = 0 ] || echo "  run after kill $i: exit $rc"
  n=$(find "$proj" -name '*.tmp' -o -name '*.partial' | wc -l)
  leftovers=$((leftovers + n))
done
echo "  temporary files left after the next run: $leftovers"

echo "== concurrent writers"
rm -f "$proj/requirements.txt"
for i in $(seq 1 20); do
  (bounded -C "$proj" advise -q -o "$proj/requirements.txt" 2> "$work/err.$i"; echo $? > "$work/rc.$i") &
done
wait
for i in $(seq 1 20); do tally "$(cat "$work/rc.$i")" "$work/err.$i"; done
distinct=$(bounded -C "$proj" advise -q -o "$work/ref.txt" 2>/dev/null; cmp -s "$work/ref.txt" "$proj/requirements.txt" && echo identical || echo DIFFERENT)
echo "  final lock vs a fresh run: $distinct; temporary files left: $(find "$proj" -name '*.tmp' | wc -l)"

echo "== total: $runs bounded runs, $panics panics, $hangs hangs"
