#!/usr/bin/env python3
"""Side-by-side: thoth-rs, uv and pip-compile on the very same package universe.

The bundled snapshot is exported as a file:// simple index of metadata-only
wheels (with ../shared/tools/make_wheel_universe.py); every requirement set in
benches/requirements/ is then compiled by all three tools, alternating, for
several rounds. The script checks the three produced the same pins and prints
median wall time and peak memory per tool with the ratio thoth-rs / uv.

Run through benches/compare.sh, which creates the throw-away virtualenv with
uv and pip-tools. Standard library only.
"""

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "benches" / "requirements"

# Releases of the snapshot as the export tool wants them. A release with an
# sdist gets a pure-Python tag as well: thoth-rs, like pip, counts an sdist as
# installable, and a metadata-only universe has no sdists to build.
RELEASES_SQL = """
SELECT p.display_name, r.version, r.requires_python, r.upload_time,
       CASE WHEN r.yanked THEN COALESCE(NULLIF(r.yanked_reason, ''), '1') ELSE NULL END,
       (SELECT group_concat(t, ',') FROM (
            SELECT DISTINCT d.python_tag || '-' || d.abi_tag || '-' || d.platform_tag AS t
            FROM distributions d
            WHERE d.release_id = r.id AND d.packagetype = 'wheel'
              AND (d.platform_tag = 'any' OR d.platform_tag LIKE '%linux%x86_64%')
            UNION
            SELECT 'py3-none-any' FROM distributions d
            WHERE d.release_id = r.id AND d.packagetype = 'sdist'))
FROM releases r JOIN projects p ON p.id = r.project_id
WHERE p.status = 'ok' AND r.dependency_set_id IS NOT NULL
"""

REQUIRES_SQL = """
SELECT p.display_name, r.version,
       d.name || CASE WHEN d.extras != '' THEN '[' || d.extras || ']' ELSE '' END
              || d.specifier
              || CASE WHEN d.marker IS NOT NULL THEN ' ; ' || d.marker ELSE '' END
FROM releases r
JOIN projects p ON p.id = r.project_id
JOIN dependencies d ON d.set_id = r.dependency_set_id
WHERE p.status = 'ok'
ORDER BY p.name, r.id, d.position
"""

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


def timed(cmd, cwd=None, env=None):
    """Run cmd under /usr/bin/time; return (seconds, peak KiB)."""
    fmt = "%e %M"
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        full = ["/usr/bin/time", "-f", fmt, "-o", t.name] + cmd
        r = subprocess.run(full, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        wall, rss = Path(t.name).read_text().split()[-2:]
        return float(wall), int(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--thoth", default=str(ROOT / "target" / "release" / "thoth-rs"))
    ap.add_argument("--venv", required=True, help="virtualenv holding uv and pip-compile")
    ap.add_argument("--work", default=str(ROOT / "target" / "compare"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--universe-tool", default=str(ROOT.parent / "shared" / "tools" / "make_wheel_universe.py"))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    info = json.loads(subprocess.run([args.thoth, "snapshot", "info", "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    snapshot = info["path"]
    cutoff = info.get("cutoff") or "2100-01-01T00:00:00Z"
    universe = work / "universe"
    stamp = universe / "snapshot.path"
    if not stamp.is_file() or stamp.read_text() != snapshot:
        print(f"exporting {snapshot} to {universe} ...", file=sys.stderr)
        subprocess.run([sys.executable, args.universe_tool, snapshot, str(universe), "--simple", "--clean",
                        "--releases-sql", RELEASES_SQL, "--requires-sql", REQUIRES_SQL], check=True)
        stamp.write_text(snapshot)
    index = (universe / "simple").resolve().as_uri()
    venv = Path(args.venv).resolve()
    uv = str(venv / "bin" / "uv")
    pip_compile = str(venv / "bin" / "pip-compile")
    env = dict(os.environ, UV_CACHE_DIR=str(work / "uv-cache"), PIP_CACHE_DIR=str(work / "pip-cache"),
               PIP_INDEX_URL=index, UV_INDEX_URL=index, PIP_NO_INPUT="1")

    tools = {
        "thoth-rs": lambda src, out, d: [args.thoth, "-C", str(d), "advise", "-q", "-t", "latest",
                                         "--format", "requirements", "-o", str(out)],
        "uv": lambda src, out, d: [uv, "pip", "compile", str(src), "--offline", "--quiet",
                                   "--index-url", index, "--python-version", "3.11",
                                   "--python-platform", "x86_64-manylinux_2_40",
                                   "--exclude-newer", cutoff, "--no-header", "--no-annotate",
                                   "-o", str(out)],
        "pip-compile": lambda src, out, d: [pip_compile, "--quiet", "--no-header", "--no-annotate",
                                            "--index-url", index, "--output-file", str(out), str(src)],
    }
    results = {}
    for req in sorted(SETS.glob("*.in")):
        name = req.stem
        d = work / "projects" / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        src = d / "requirements.in"
        shutil.copy(req, src)
        times = {t: [] for t in tools}
        mems = {t: [] for t in tools}
        outputs = {}
        for rnd in range(args.rounds):
            order = list(tools) if rnd % 2 == 0 else list(reversed(tools))
            for tool in order:
                out = d / f"{tool}.txt"
                if out.exists():
                    out.unlink()
                wall, rss = timed(tools[tool](src, out, d), cwd=d, env=env)
                times[tool].append(wall)
                mems[tool].append(rss)
                outputs[tool] = pins(out)
        diffs = []
        base = outputs["uv"]
        for tool in ("thoth-rs", "pip-compile"):
            other = outputs[tool]
            for pkg in sorted(set(base) | set(other)):
                if base.get(pkg) != other.get(pkg):
                    diffs.append(f"{tool}: {pkg} {other.get(pkg)} vs uv {base.get(pkg)}")
        results[name] = {
            "packages": len(base),
            "median_s": {t: statistics.median(v) for t, v in times.items()},
            "peak_kib": {t: statistics.median(v) for t, v in mems.items()},
            "differences": diffs,
        }
        print(f"{name}: done", file=sys.stderr)

    print("| set | pins | thoth-rs s | uv s | pip-compile s | thoth-rs / uv | thoth-rs MiB | uv MiB | pip-compile MiB | same pins |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for name, r in results.items():
        m, k = r["median_s"], r["peak_kib"]
        ratio = m["thoth-rs"] / m["uv"] if m["uv"] else float("nan")
        ratios.append(ratio)
        same = "yes" if not r["differences"] else f"no ({len(r['differences'])})"
        print(f"| {name} | {r['packages']} | {m['thoth-rs']:.3f} | {m['uv']:.3f} | {m['pip-compile']:.3f} | "
              f"{ratio:.2f} | {k['thoth-rs'] / 1024:.0f} | {k['uv'] / 1024:.0f} | {k['pip-compile'] / 1024:.0f} | {same} |")
    print(f"\nmedian ratio thoth-rs / uv over the sets: {statistics.median(ratios):.2f}")
    for name, r in results.items():
        for d in r["differences"]:
            print(f"{name}: {d}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
