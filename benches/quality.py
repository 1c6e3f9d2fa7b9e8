#!/usr/bin/env python3
"""What each recommendation type and predictor gives on real requirement
sets: known advisories left in the stack, packages changed against the
`latest` stack, score and wall time.

Sets: benches/requirements/*.in, benches/quality-sets/ (requirement files
of public projects, older commits whose ranges admit releases with known
advisories, and two sets of old caps; each with its SOURCE.md) and the
public applications of benches/real-projects/ (these need --online or a
user knowledge base that already holds them). Every run is `thoth-rs advise --json` with a fixed
seed, offline by default: the bundled snapshot plus what the user knowledge
base (THOTH_KB, or the default one) already holds from earlier live runs;
sets it cannot resolve offline are reported as such.

Advisories are counted independently of thoth-rs: each locked release is
looked up in the explicit `versions` lists of the PyPA advisory database
given with --advisories (OSV YAML), withdrawn records left out.

    benches/quality.py --advisories ../shared/data/pypa-advisory-database \\
        [--rounds 3] [--online] [--json out.json] [--markdown]

Standard library plus PyYAML.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(os.environ.get("THOTH_BIN", ROOT / "target" / "release" / "thoth-rs"))
FILES = ["Pipfile", "pyproject.toml", "requirements.in", "requirements.txt"]
TYPES = ["latest", "stable", "testing", "performance", "security"]
PREDICTORS = ["auto", "hill-climbing", "td", "asa"]


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def load_advisories(root):
    """(name, version) -> set of advisory ids."""
    found = {}
    for path in Path(root).rglob("*.yaml"):
        record = yaml.safe_load(path.read_text())
        if not record or record.get("withdrawn"):
            continue
        for affected in record.get("affected", []):
            package = affected.get("package", {})
            if package.get("ecosystem") != "PyPI":
                continue
            name = normalise(package.get("name", ""))
            for version in affected.get("versions", []):
                found.setdefault((name, str(version)), set()).add(record["id"])
    return found


def sets():
    for path in sorted((ROOT / "benches" / "requirements").glob("*.in")):
        yield path.stem, path.parent, path.name
    for path in sorted((ROOT / "benches" / "quality-sets").glob("*/requirements.in")):
        yield path.parent.name, path.parent, path.name
    for project in sorted((ROOT / "benches" / "real-projects").iterdir()):
        listed = project / "FILE"
        if listed.exists():
            yield project.name, project, listed.read_text().strip()
            continue
        for name in FILES:
            if (project / name).exists():
                yield project.name, project, name
                break


def run(directory, project, kind, predictor, seed, online):
    with tempfile.TemporaryDirectory() as out:
        command = [
            str(BINARY), "advise", "-C", str(directory), "--project", project,
            "--json", "--seed", str(seed), "-t", kind, "--predictor", predictor,
            "--format", "requirements", "-o", os.path.join(out, "requirements.txt"),
        ]
        env = dict(os.environ)
        if not online:
            env["THOTH_OFFLINE"] = "1"
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.monotonic() - started
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": first[:160], "seconds": seconds}
    report = json.loads(done.stdout)
    product = report["products"][0]
    pins = {normalise(n): p["version"] for n, p in product["packages"].items()}
    return {
        "pins": pins,
        "score": product["score"],
        "seconds": seconds,
        "episodes": report["statistics"]["episodes"],
        "polish": report["statistics"].get("polish_episodes", 0),
    }


def changed(pins, latest):
    return sum(1 for n in set(pins) | set(latest) if pins.get(n) != latest.get(n))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--advisories", required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--online", action="store_true")
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--json")
    args = parser.parse_args()
    advisories = load_advisories(args.advisories)
    rows = []
    for name, directory, project in sets():
        if args.only and name not in args.only:
            continue
        results = {}
        for kind in TYPES:
            for predictor in PREDICTORS if kind != "latest" else ["auto"]:
                runs = [run(directory, project, kind, predictor, args.seed, args.online)
                        for _ in range(args.rounds)]
                result = runs[-1]
                result["seconds"] = statistics.median(r["seconds"] for r in runs)
                results[(kind, predictor)] = result
        latest = results[("latest", "auto")].get("pins")
        for (kind, predictor), result in results.items():
            row = {"set": name, "type": kind, "predictor": predictor,
                   "seconds": round(result["seconds"], 2)}
            if "error" in result or latest is None:
                row["error"] = result.get("error", "latest failed")
            else:
                pins = result["pins"]
                row.update(
                    advisories=sum(len(advisories.get((n, v), ())) for n, v in pins.items()),
                    changed=changed(pins, latest),
                    packages=len(pins),
                    score=round(result["score"], 2),
                    episodes=result["episodes"],
                    polish=result["polish"],
                )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    summarise(rows)


def summarise(rows):
    """Per type and predictor: sets resolved, advisories, changed packages
    (sums over sets) and median time."""
    ok = [r for r in rows if "error" not in r]
    resolved_everywhere = {
        s for s in {r["set"] for r in ok}
        if all("error" not in r for r in rows if r["set"] == s)
    }
    print("| type | predictor | sets | advisories in stacks | packages changed vs latest "
          "| best score reached | median time (s) |")
    print("|---|---|---|---|---|---|---|")
    best = {}
    for r in ok:
        if r["set"] in resolved_everywhere:
            key = (r["set"], r["type"])
            best[key] = max(best.get(key, -1e9), r["score"])
    for kind in TYPES:
        for predictor in PREDICTORS if kind != "latest" else ["auto"]:
            mine = [r for r in ok if r["type"] == kind and r["predictor"] == predictor
                    and r["set"] in resolved_everywhere]
            if not mine:
                continue
            reached = sum(1 for r in mine if r["score"] >= best[(r["set"], kind)] - 1e-9)
            print(f"| {kind} | {predictor} | {len(mine)} | {sum(r['advisories'] for r in mine)} "
                  f"| {sum(r['changed'] for r in mine)} | {reached} of {len(mine)} "
                  f"| {statistics.median(r['seconds'] for r in mine):.2f} |")


if __name__ == "__main__":
    main()
