"""Where a py-spy profile of the consumer spends its samples, by part of the data path.

Run: ``.venv/bin/python -m bench.profile_summary PROFILE.raw`` (a ``--format raw`` profile:
one line per stack, ``frame;frame;... count``). A stack counts for the first part, in the
order of :data:`PARTS` (:data:`FLOOR_PARTS` for a profile of :mod:`bench.floor`), whose
marker one of its frames holds; samples in the event loop's ``select`` (waiting) and in the
bench's own code are left out of the shares. Python frames only: Ray's and the kernel's
threads do not show.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

DISPATCH = (
    "consumer/dispatch.py",
    "consumer/pool/replica_pool.py",
    "consumer/pool/replica.py",
    "consumer/pool/slots.py",
    "consumer/state/jobs.py",
    "consumer/state/work_messages.py",
)
Parts = tuple[tuple[str, tuple[str, ...]], ...]
"""Named parts, each with the markers a stack's frames are matched against, in order."""
PARTS: Parts = (
    # The bench's own work (its entry point is at the root of every stack: not a marker).
    (
        "bench",
        (
            "bench/harness.py",
            "bench/pool_scale/run.py",
            "bench/pool_scale/probe.py",
            "bench/floor.py",
            "psutil/",
        ),
    ),
    ("waiting (select)", ("EpollSelector.select",)),
    ("Ray call submit (the floor has it)", ("ActorMethod.remote", "ActorMethod._remote")),
    ("Ray, other", ("ray/",)),
    ("Kafka produce", ("aiokafka/producer", "consumer/sink/outbox.py", "consumer/sink/output.py")),
    ("Kafka fetch", ("aiokafka/consumer", "AIOKafkaConsumer.getmany")),
    (
        "intake, per record",
        (
            "consumer/intake/fetch_loop.py",
            "consumer/intake/screen.py",
            "consumer/intake/batching.py",
        ),
    ),
    (
        "sink and ledger",
        ("consumer/sink/publish.py", "consumer/state/ledger.py", "consumer/state/offsets.py"),
    ),
    ("dispatch", DISPATCH),
    ("consumer, other", ("consumer/",)),
    ("event loop", ("asyncio/",)),
)
FLOOR_PARTS: Parts = (
    ("waiting (select)", ("EpollSelector.select",)),
    ("Ray call submit (the floor has it)", ("ActorMethod.remote", "ActorMethod._remote")),
    ("Ray, other", ("ray/",)),
    ("the floor's own loop", ("bench/floor.py",)),
    ("event loop", ("asyncio/",)),
)
"""The parts of a profile of :mod:`bench.floor` (its loop is the bench's code)."""
LEFT_OUT = ("bench", "waiting (select)")


def part_of(stack: str, parts: Parts = PARTS) -> str:
    """The part a collapsed stack counts for."""
    for name, markers in parts:
        if any(m in stack for m in markers):
            return name
    return "other"


def summarise(lines: Iterable[str], top: int = 8, parts_of: Parts = PARTS) -> dict[str, object]:
    """Shares of the busy samples by part (and their counts), each part's heaviest leaf
    frames."""
    parts: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = {}
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        name = part_of(stack, parts_of)
        parts[name] += int(count)
        leaves.setdefault(name, Counter())[stack.rsplit(";", 1)[-1]] += int(count)
    busy = sum(n for name, n in parts.items() if name not in LEFT_OUT)
    return {
        "busy_samples": busy,
        "left_out_samples": {name: parts[name] for name in LEFT_OUT},
        "samples": {name: n for name, n in parts.most_common() if name not in LEFT_OUT},
        "shares": {
            name: n / busy for name, n in parts.most_common() if name not in LEFT_OUT and busy
        },
        "top_frames": {
            name: [[frame, n / busy] for frame, n in leaves[name].most_common(top)]
            for name in parts
            if name not in LEFT_OUT and busy
        },
    }


def main() -> None:
    """Print the summary of one profile."""
    summary = summarise(Path(sys.argv[1]).read_text().splitlines())
    print(f"busy samples: {summary['busy_samples']}, left out: {summary['left_out_samples']}")
    shares = summary["shares"]
    assert isinstance(shares, dict)
    for name, share in shares.items():
        print(f"{share:6.1%}  {name}")


if __name__ == "__main__":
    main()
