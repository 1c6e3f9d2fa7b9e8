#!/usr/bin/env python3
"""Side by side on real projects, against the live package index:
`thoth-rs advise -t latest` and `uv pip compile`, cold and warm.

Each project of benches/real-projects/ (a public application's dependency
file, with its repository and commit in SOURCE.md) is resolved for CPython
3.11 on manylinux_2_28 x86_64 by both tools:

- cold: thoth-rs with an empty user knowledge base (THOTH_KB points to a
  new file; the bundled snapshot is already unpacked, as after any first
  run), uv with an empty cache directory;
- warm: the same command again right away, with what the cold run stored.

The order of the tools alternates between rounds. The script checks that
both produced the same pins and prints median wall time and peak memory
(from /usr/bin/time) and the ratios thoth-rs / uv. Standard library only.
Run through benches/live.sh, which builds thoth-rs and installs uv into a
throw-away virtualenv. The index is the one pip is configured with (as both
tools find it); nothing here names one.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ROOT / "benches" / "real-projects"
FILES = ["Pipfile", "pyproject.toml", "requirements.in", "requirements.txt"]
PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            out[normalise(m.group(1))] = m.group(2)
    return out


def project_file(d):
    explicit = d / "FILE"
    if explicit.is_file():
        return d / explicit.read_text().strip()
    for name in FILES:
        if (d / name).is_file():
            return d / name
    raise SystemExit(f"{d}: no project file")


def timed(cmd, cwd=None, env=None):
    """Run cmd under /usr/bin/time; return (seconds, peak KiB, stderr)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        full = ["/usr/bin/time", "-f", "%e %M", "-o", t.name] + cmd
        r = subprocess.run(full, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
        wall, rss = Path(t.name).read_text().split()[-2:]
        return float(wall), int(rss), r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--thoth", default=str(ROOT / "target" / "release" / "thoth-rs"))
    ap.add_argument("--uv", required=True)
    ap.add_argument("--work", default=str(ROOT / "target" / "live"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--json")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for k in ["THOTH_OFFLINE", "THOTH_SNAPSHOT", "THOTH_LOG", "THOTH_RECOMMENDATION_TYPE"]:
        env.pop(k, None)
    env["NO_COLOR"] = "1"
    names = sorted(p.name for p in PROJECTS.iterdir() if p.is_dir())
    if args.only:
        names = [n for n in names if n in args.only]
    results = []
    for name in names:
        d = PROJECTS / name
        file = project_file(d)
        runs = {k: [] for k in ["thoth_cold", "thoth_warm", "uv_cold", "uv_warm"]}
        same = True
        detail = ""
        for rnd in range(args.rounds):
            kb = work / f"{name}-kb-{rnd}.sqlite"
            uv_cache = work / f"{name}-uv-{rnd}"
            for p in [kb, Path(str(kb) + "-wal"), Path(str(kb) + "-shm")]:
                p.unlink(missing_ok=True)
            shutil.rmtree(uv_cache, ignore_errors=True)
            t_out = work / f"{name}-thoth.txt"
            u_out = work / f"{name}-uv.txt"
            thoth = [args.thoth, "-C", str(d), "advise", "--project", str(file), "-t", "latest",
                     "--format", "requirements", "-o", str(t_out)]
            uv = [args.uv, "pip", "compile", str(file), "--python-version", "3.11",
                  "--python-platform", "x86_64-manylinux_2_28", "--no-header", "--quiet",
                  "--cache-dir", str(uv_cache), "-o", str(u_out)]
            tenv = dict(env, THOTH_KB=str(kb))
            order = [("thoth", thoth, tenv), ("uv", uv, env)]
            if rnd % 2:
                order.reverse()
            for tool, cmd, e in order:
                for phase in ["cold", "warm"]:
                    try:
                        wall, rss, err = timed(cmd, cwd=d, env=e)
                    except RuntimeError as exc:
                        print(f"{name}: {tool} {phase} failed: {exc}", file=sys.stderr)
                        wall, rss, err = None, None, ""
                    runs[f"{tool}_{phase}"].append((wall, rss))
            if t_out.is_file() and u_out.is_file():
                a, b = pins(t_out), pins(u_out)
                if a != b:
                    same = False
                    diff = sorted(set(a.items()) ^ set(b.items()))
                    detail = ", ".join(f"{n}=={v}" + (" (thoth-rs)" if a.get(n) == v else " (uv)")
                                       for n, v in diff)
            else:
                same = False
                detail = "a tool failed"
        def med(k, i):
            vals = [r[i] for r in runs[k] if r[i] is not None]
            return statistics.median(vals) if vals else None
        row = {
            "project": name,
            "file": str(file.relative_to(d)),
            "pins": len(pins(work / f"{name}-uv.txt")) if (work / f"{name}-uv.txt").is_file() else None,
            "same_pins": same,
            "difference": detail,
        }
        for k in runs:
            row[k + "_s"] = med(k, 0)
            row[k + "_mib"] = None if med(k, 1) is None else round(med(k, 1) / 1024, 1)
        for phase in ["cold", "warm"]:
            t, u = row[f"thoth_{phase}_s"], row[f"uv_{phase}_s"]
            row[f"ratio_{phase}"] = round(t / u, 2) if t and u else None
        results.append(row)
        print(json.dumps(row), flush=True)

    print()
    print("| project | file | pins | thoth-rs cold s | uv cold s | cold ratio | thoth-rs warm s | uv warm s | warm ratio | thoth-rs cold MiB | uv cold MiB | same pins |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        f = lambda v: "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
        print(f"| {r['project']} | {r['file']} | {f(r['pins'])} | {f(r['thoth_cold_s'])} | {f(r['uv_cold_s'])} | "
              f"{f(r['ratio_cold'])} | {f(r['thoth_warm_s'])} | {f(r['uv_warm_s'])} | {f(r['ratio_warm'])} | "
              f"{f(r['thoth_cold_mib'])} | {f(r['uv_cold_mib'])} | "
              f"{'yes' if r['same_pins'] else 'no: ' + r['difference']} |")
    cold = [r["ratio_cold"] for r in results if r["ratio_cold"]]
    warm = [r["ratio_warm"] for r in results if r["ratio_warm"]]
    if cold:
        print(f"\nmedian ratio thoth-rs / uv: cold {statistics.median(cold):.2f}, warm {statistics.median(warm):.2f}; "
              f"same pins on {sum(r['same_pins'] for r in results)} of {len(results)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
