"""Issue 17 item 1 acceptance: a record aiokafka cannot parse stops nothing (real broker, Ray)."""

from __future__ import annotations

from collections import Counter

import pytest
from aiokafka import TopicPartition

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.processor import StreamProcessor
from schemas import MOLECULE_CODEC
from schemas.wire import Encoder
from tests.harness import (
    Counting,
    committed,
    consumer_settings,
    nci,
    publish,
    read_all,
    read_raw,
    wait_until,
)
from tests.record_batches import Rec, encode_batch, produce_batch

pytestmark = pytest.mark.integration

BAD_VALUE = b"\x00\x01 not a molecule \xff\xfe"
BAD_KEY = b"\xff\xfetraceparent"


async def test_a_header_key_that_is_not_utf8_is_a_dead_letter_and_the_rest_flows(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    ray_cluster.add_spot_node()
    molecules = nci(600)
    bootstrap = broker.bootstrap_servers
    ends = await publish(bootstrap, "molecules", molecules[:300])
    # One batch as a Go or C producer may write it: a molecule, the bad record, a molecule.
    encoder = Encoder(MOLECULE_CODEC)
    inside = [Rec(m.id.encode(), encoder.encode(m)) for m in molecules[300:302]]
    bad = Rec(b"bad-key", BAD_VALUE, [(BAD_KEY, b"00-abc-01"), (b"origin", b"go")])
    tp = TopicPartition("molecules", 1)
    base = await produce_batch(bootstrap, tp, encode_batch([inside[0], bad, inside[1]]))
    for part, end in (await publish(bootstrap, "molecules", molecules[302:])).items():
        ends[part] = max(ends.get(part, 0), end)
    ends[tp] = max(ends[tp], base + 3)

    settings = consumer_settings(
        bootstrap, ray_cluster.address, min_workers=1, max_workers=1, group_id="unreadable-test"
    )
    hooks = Counting()
    async with StreamProcessor(settings, hooks=hooks) as processor:
        await wait_until(lambda: hooks.predictions >= len(molecules), 180, "all predictions")
        await wait_until(lambda: processor.committed == ends, 30, "commits reach the end")

    predictions = Counter(p.id for p in await read_all(bootstrap, "predictions"))
    assert set(predictions) == {m.id for m in molecules}
    letters = await read_raw(bootstrap, "molecules.dlq")
    assert len(letters) == 1
    (letter,) = letters
    headers = dict(letter.headers)  # type: ignore[attr-defined]
    assert letter.value == BAD_VALUE and letter.key == b"bad-key"  # type: ignore[attr-defined]
    assert headers["molstream.error.stage"] == b"fetch"
    assert headers["molstream.error.offset"] == str(base + 1).encode()
    assert headers["\\xff\\xfetraceparent"] == b"00-abc-01" and headers["origin"] == b"go"
    assert b"not UTF-8" in headers["molstream.error.message"]
    assert await committed(bootstrap, "unreadable-test", ends) == ends
