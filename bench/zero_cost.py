"""The zero-cost pipeline alone, so that two versions of the code can be measured in turns.

Run: ``.venv/bin/python -m bench.zero_cost --molecules 100000`` prints one JSON line: the
steady molecules/s of the pipeline (synthetic model at 0 ms, two workers, batches of 256),
the consumer process's CPU per molecule, and the raw aiokafka produce rate of the same
records on the same broker (as step 1 and 2 of ``bench.throughput``, which it reuses). To
compare two commits, run it from each commit's checkout in turns (A, B, A, B ...) and compare
the pairwise ratios: the machine's speed drifts between minutes.
"""

from __future__ import annotations

import asyncio
import json

from bench import runner
from bench.end_to_end import Env, end_to_end
from bench.harness import nci_repeated
from bench.kafka_alone import kafka_alone
from bench.throughput import ZERO_COST


async def measure(env: Env, molecules: int, topic: str = "zero-cost") -> dict[str, float]:
    """Raw produce of ``molecules`` NCI records on ``topic``, then the pipeline over them."""
    records = nci_repeated(molecules)
    kafka = await kafka_alone(env, topic, records)
    pipeline = end_to_end(
        env,
        topic,
        len(records),
        workers=2,
        model="synthetic",
        options=ZERO_COST,
        batch_size=256,
        max_in_flight=8192,
    )
    async with pipeline as (zero, _, _):
        pass
    produce = float(kafka["produce_records_per_s"])
    return {
        "pipeline_molecules_per_s": zero.steady_molecules_per_s,
        "cpu_us_per_molecule": zero.cpu_us_per_molecule,
        "kafka_produce_records_per_s": produce,
        "ratio_over_kafka_produce": zero.steady_molecules_per_s / produce,
    }


def main() -> None:
    """One measurement, one JSON line."""
    parser = runner.parser(__doc__, out=False)
    parser.add_argument("--molecules", type=int, default=100_000)
    args = parser.parse_args()
    with runner.broker_and_cluster(spot_nodes=2) as (broker, cluster):
        print(json.dumps(asyncio.run(measure(Env(broker, cluster), args.molecules))))


if __name__ == "__main__":
    main()
