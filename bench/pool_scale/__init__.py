"""Pool scale: a fixed pool of many workers on one Ray node, against its ideal rate.

Run: ``.venv/bin/python -m bench.pool_scale [--points 8,32,64,128,32x4,128@40]
[--steady-s 20] [--out bench/results]``. Prints a table, writes ``pool_scale.json`` (one
object per point) and ``pool_scale.png``.

A point ``W[xK][@MS]`` is W workers (``--min-workers = --max-workers = W``: no autoscaling)
with K slots each (``--worker-concurrency K``, default 1: one Ray actor computes K batches at
once in threads), running the synthetic model at ``per_molecule_ms`` MS (default 20) in
batches of ``--batch-size`` 16. Its ideal rate is W × K × 1000 / MS molecules/s (every slot
computing all the time). Targets: ``32x4`` at ≥ 0.95 of ideal; ``128@40`` (200 batches/s) at
≥ 0.9 of ideal with the consumer below 0.3 of a core.

Each point gets a fresh embedded broker and a fresh local Ray cluster: the head (no CPUs) and
one node with ``--node-cpus`` CPUs (the machine's cores) that every worker shares, each
reserving ``node_cpus / W`` of a CPU (the synthetic model sleeps: it needs no core). With
``--startup-concurrency N`` the head is given Ray's ``worker_maximum_startup_concurrency`` N
(node processes read the head's system config) so the raylet starts N worker processes at a
time instead of ``min(cores, node CPUs)``. The consumer is a
:class:`~consumer.processor.StreamProcessor` in this process (as in ``bench.throughput``) with
``--max-in-flight`` W × K × batch × 2.

Steps and what is measured:

1. start the processor on an empty input topic; ``ready_s`` is the time from its start to
   the W-th worker ready (the pool deploys all W at once; Ray starts their processes a few
   at a time), with the first and median worker too;
2. idle, ``--idle-s``: CPU of the W actors' processes (pids from ``pool.workers()``) and of
   the consumer, with every worker ready and no record to read;
3. publish the backlog: enough for ``--steady-s`` at the ideal rate after the publishing
   itself (which runs in this process and is not measured);
4. steady window, from ``SETTLE_S`` after the last record is acknowledged by the broker, for
   ``--steady-s`` (shorter if the backlog runs low: ``window_s`` says how long it was):
   acknowledged predictions/s and their ratio to ideal; the consumer's CPU (this process,
   every thread: the event loop, aiokafka, Ray's driver) per batch and per second; the
   actors' CPU; the busy CPU of the whole machine and of this process tree (broker, Ray,
   actors) — the rest is other work on the machine; the consumer's RSS (peak of samples);
   the mean batch round trip (slot taken to slot given back); sampled every 0.1 s, the slot
   occupancy (slots holding a batch / slots), the molecules in flight (fetched, not done) and
   those computed but not yet acknowledged by the broker (waiting in the sink).

Which bound a point hit, by these rules in this order (:func:`bench.pool_scale.run.bound`):
consumer above 0.9 core → "consumer CPU"; machine busy above 90% → "machine CPU"; ratio at
least 0.9 → "ideal"; slots occupied at least 95% of the time → "round trip" (batches take
longer than the model: the per-batch cost of Ray and the worker); at least half the in-flight
bound computed and waiting for produce acks → "produce" (the output producer is the
bottleneck); otherwise "feed" (slots wait for batches: fetch and dispatch do not hand them
out fast enough).
"""
