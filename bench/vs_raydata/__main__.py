"""``python -m bench.vs_raydata``: publish once, run both systems, print, write JSON."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from dataclasses import asdict

from rich.console import Console

from bench import runner
from bench.harness import create_topics
from bench.vs_raydata.raydata import choose_reader, run_raydata
from bench.vs_raydata.render import table
from bench.vs_raydata.run import (
    INPUT_TOPIC,
    PARTITIONS,
    molecules,
    publish,
    run_molstream,
    watch,
)
from consumer.dev.broker import EmbeddedBroker
from consumer.ops.logs import configure_logging

JSON_NAME = "vs_raydata.json"


def main() -> None:
    """Publish once, run both systems, print the table, write JSON."""
    args = _arguments()
    if args.watch:
        result = asyncio.run(watch(args.bootstrap, args.watch, args.molecules, args.idle_s))
        print(json.dumps(result), flush=True)
        return
    try:
        importlib.import_module("ray.data")
    except ImportError as exc:
        sys.exit(
            f"Ray Data cannot be imported ({exc}): it needs ray[data] (pandas, pyarrow, "
            "fsspec), not in requirements.lock. "
            "install them with: .venv/bin/pip install -e '.[bench]'"
        )
    configure_logging("console", "warning")
    console = Console()
    started = time.monotonic()
    mols = molecules(args.molecules)
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        outputs = ["predictions-molstream", "predictions-raydata"]
        asyncio.run(create_topics(bootstrap, [INPUT_TOPIC, *outputs], PARTITIONS))
        asyncio.run(publish(bootstrap, mols))
        reader, why = choose_reader(args.reader, bootstrap, len(mols))
        console.print(f"published {len(mols)} molecules; Ray Data reads with {reader}: {why}")
        assert broker.pid is not None
        outcomes = [
            run_molstream(bootstrap, broker.pid, len(mols), args.workers, args.batch_size),
            run_raydata(
                bootstrap, broker.pid, len(mols), args.workers, args.batch_size, reader, why
            ),
        ]
    elapsed = time.monotonic() - started
    Console(width=max(console.width, 180)).print(table(outcomes))
    result = {
        "config": {
            "molecules": len(mols),
            "workers": args.workers,
            "batch_size": args.batch_size,
            "model": "reference",
            "reader": reader,
            "reader_reason": why,
        },
        "elapsed_s": elapsed,
        "outcomes": [asdict(o) for o in outcomes],
    }
    runner.write_json(args.out / JSON_NAME, result)
    console.print(f"wrote {args.out / JSON_NAME} in {elapsed:.0f} s")


def _arguments() -> argparse.Namespace:
    """The job's size and the reader; the hidden options run this module as the watcher."""
    parser = runner.parser(
        "Ray Data against molstream: one bounded job.", prog="python -m bench.vs_raydata"
    )
    parser.add_argument("--molecules", type=int, default=10_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="one-CPU Spot nodes, one worker each"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reader", choices=("auto", "read_kafka", "consumer"), default="auto")
    parser.add_argument("--watch", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--idle-s", type=float, default=20.0, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
