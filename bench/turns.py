"""Two checkouts measured in turns (A, B, A, B ...), so that the machine's drift cancels.

Run: ``.venv/bin/python -m bench.turns --a ../base --b . --pairs 4 --out bench/results/x.json``
runs ``bench.zero_cost`` from checkout A, then from B, ``--pairs`` times, and writes every
measurement with the median, minimum and maximum of the pairwise ratios B / A of each field.
Each side runs its own code (``PYTHONPATH`` is its checkout) with this checkout's interpreter
and this checkout's copy of ``bench/zero_cost.py``, so an old commit that lacks it is measured
the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(__file__).with_name("zero_cost.py")


def _measure(checkout: Path, molecules: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    command = [sys.executable, str(_SCRIPT), "--molecules", str(molecules)]
    done = subprocess.run(
        command, cwd=checkout, env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarise(pairs: list[tuple[dict[str, float], dict[str, float]]]) -> dict[str, object]:
    """The median, minimum and maximum of B / A for each field both sides measured."""
    ratios: dict[str, object] = {}
    for field in pairs[0][0]:
        each = [b[field] / a[field] for a, b in pairs]
        ratios[field] = {"median": statistics.median(each), "min": min(each), "max": max(each)}
    return {"pairs": [{"a": a, "b": b} for a, b in pairs], "ratio_b_over_a": ratios}


def main() -> None:
    """Measure in turns, print and write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="the reference checkout")
    parser.add_argument("--b", type=Path, required=True, help="the checkout compared to it")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--molecules", type=int, default=100_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pairs = [
        (_measure(args.a.resolve(), args.molecules), _measure(args.b.resolve(), args.molecules))
        for _ in range(args.pairs)
    ]
    summary = {
        "a": _commit(args.a),
        "b": _commit(args.b),
        "molecules": args.molecules,
        **summarise(pairs),
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["ratio_b_over_a"], indent=2))


def _commit(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


if __name__ == "__main__":
    main()
