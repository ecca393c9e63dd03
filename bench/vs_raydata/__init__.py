"""Ray Data against molstream: one bounded job, the same model, the same workers.

Run: ``.venv/bin/python -m bench.vs_raydata [--molecules 10000] [--workers 2]``. Ray Data needs
``ray[data]`` (pandas, pyarrow, fsspec), which ``requirements.lock`` does not carry: install them
with ``.venv/bin/pip install -e '.[bench]'``. Prints a table and writes ``vs_raydata.json``
(``--out``, default bench/results).

The job: ``--molecules`` NCI molecules (RDKit's ``first_5K.smi``, repeated with distinct ids)
are published to a topic first; then each system, on its own fresh local Ray cluster with
``--workers`` one-CPU Spot nodes, turns them into predictions of the reference model on an
output topic of its own:

- molstream: a :class:`~consumer.processor.StreamProcessor` with ``--workers`` workers
  (``min_workers = max_workers``, ``worker_resources={"spot": 1}``), micro-batches of
  ``--batch-size``; t = 0 is its start, so the consumer-group join is in its time (reported
  apart as ``group_join_s``).
- Ray Data: read the topic → ``map_batches`` with a callable class holding a ``ReferenceModel``
  (``compute=ActorPoolStrategy(size=workers)``, ``num_cpus=1``, ``resources={"spot": 1}``,
  ``batch_size``) that returns Avro ``Prediction`` records → a second ``map_batches`` stage,
  one zero-CPU actor holding an aiokafka producer (``acks=all``), that sends each batch and
  returns the count: the sink. ``write_kafka`` is not used: it needs confluent-kafka, which
  the lock does not carry. The read: Ray 2.60 has ``ray.data.read_kafka`` (bounded, on
  confluent-kafka), but it stops each partition at the broker's high watermark, and the
  embedded broker (Tansu) can report high watermarks far below what a partition holds (1 for a
  partition of 250 records, seen here), so it would read part of the topic. ``--reader auto``
  therefore checks the watermarks and, when they do not cover what was published (or
  confluent-kafka is missing), reads the topic with a plain aiokafka consumer (no group, every
  partition from the beginning, until all published records are read) into
  ``ray.data.from_items``. ``--reader read_kafka`` forces Ray's reader.

Measured for both, t = 0 being the start of the job (the driver is already connected to Ray):

- total time: until the last prediction arrives at a watcher, a separate process that reads
  the output topic from the beginning and timestamps the first and the last record; molecules/s
  is molecules / total time;
- time to first prediction: until the watcher sees the first record; ``molecules/s after
  first`` is molecules / (last - first arrival), the rate once predictions flow;
- peak memory: every 0.5 s (psutil, the copy bundled with Ray) the memory of this driver
  process and of every process under it (the Ray head and node processes it started, and the
  Ray worker processes under those), the broker and the watcher excepted. ``driver +
  workers`` is the driver plus the Ray worker processes (command line ``ray::...`` or
  ``default_worker.py``, idle ones included); ``all Ray`` adds the Ray system processes (GCS,
  raylets, agents). Both as RSS, which counts a shared page (the object store's shared memory,
  shared libraries) once in every process that touched it, and as PSS, which splits it among
  them; the JSON has every process at the peak.
"""
