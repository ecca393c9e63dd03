"""Chaos: one long run through ``molstream consume`` with faults injected while it works.

Run: ``.venv/bin/python -m bench.chaos [--molecules 50000] [--out bench/results]``.
Prints a table, writes ``chaos.json`` (and ``chaos.png``) and exits non-zero if a molecule was
lost (1) or another check failed (2): a fault not injected, the consumer not exiting 0 within
its shutdown timeout after SIGTERM, or the run not finishing in time.

Set-up: an embedded broker, a local Ray cluster with ``--nodes`` one-CPU Spot nodes, every
molecule published (acknowledged) before the first consumer starts, then ``molstream consume``
as a subprocess (synthetic model, ``per_molecule_ms``, ``--min-workers = --max-workers =
--nodes`` so the autoscaler does not blur the recovery, ``--max-in-flight 1000``,
``--batch-size 64``, ``--commit-interval-s 0.5``). The bench reads the output topic from the
beginning in the background.

Faults, in this order, each triggered by progress (``--at``, % of the molecules predicted):

- ``consumer_kill``: SIGKILL of the consumer process, reaped, then a new one started at once;
- ``node_loss``: a Spot node (the oldest) removed hard, ``--node-replace-delay-s`` later a new
  one added;
- ``broker_freeze``: SIGSTOP of the broker, ``--freeze-s`` (15 s) later SIGCONT.

Definitions (all times are ``time.monotonic()`` seconds from the first consumer start):

- progress, ``distinct(t)``: distinct molecule ids seen on the output topic by time ``t``;
  duplicates are not progress. The bench samples ``distinct`` and the prediction count
  (duplicates included) every ``SAMPLE_S`` = 0.2 s.
- ``rate(a, b)``: ``(distinct(s_b) - distinct(s_a)) / (s_b - s_a)`` where ``s_a``/``s_b`` are
  the last samples taken at or before ``a``/``b``.
- pre-fault rate of a fault at ``t_f``: ``r0 = rate(t_f - PRE_WINDOW_S, t_f)``, with
  ``PRE_WINDOW_S`` = 1.5 s.
- restore time ``t_r``: when the bench finished undoing the fault (new consumer started, new
  node added, SIGCONT sent).
- catch-up point ``c``: the first sample time ``c >= t_r`` such that
  ``rate(c, c + CATCH_WINDOW_S) >= 0.8 * r0`` (``CATCH_WINDOW_S`` = 2 s; if the stream ends
  inside the window, its rate is taken up to the last new id). In words: from ``c`` on, new
  ids arrived for 2 s at >= 80% of the pre-fault rate.
  ``catch_up_s = c - t_f`` (the fault itself included: the 15 s of a freeze, the replacement
  delay of a node) and ``catch_up_after_restore_s = c - t_r``.
  Why after ``t_r`` and 2 s: the effect of a fault shows late (Ray declares a node dead after
  ~3 s of missed health checks; predictions already produced are still being read) and a
  stall ends with a burst (up to ``--max-in-flight`` finished predictions flushed at once),
  either of which fools a short window that may start during the fault.
  If every id is predicted before such a window, ``c`` is the time of the last id and the
  fault is flagged ``stream_ended_first``. Resolution: the sampling interval (~0.2-0.4 s).
- a fault fires when progress passes its threshold *and* the previous fault's catch-up window
  ended ``PRE_WINDOW_S`` before (so ``r0`` is never measured during a recovery), or its
  catch-up wait (``--fault-wait-s``) ran out; the first one waits for ``2 * PRE_WINDOW_S`` of
  predictions. The thresholds are lower bounds: the progress actually reached is reported.
- duplicates: for each id predicted n > 1 times, n - 1; the histogram counts ids by n.
  ``duplicates_caused`` of a fault counts the duplicated ids whose first copy was produced
  (``produced_at``) after the previous fault and before this one: work done, not committed,
  and done again because of it. ``duplicates_seen_until_next`` is the growth of duplicates on
  the output topic from the fault to the next one (or the end): *when* they arrived, which
  can be long after the fault if the restarted consumer reaches that partition late.
  ``partition_progress`` shows, per input partition, first predictions per 5 s.
  ``duplicate_runs`` groups the duplicated ids by input partition and contiguous offsets,
  with when (seconds, from the predictions' ``produced_at``) and by which worker each copy was
  made: copies with the same worker and ``produced_at`` are one prediction delivered twice (a
  producer retry), others are the molecule predicted again.
- overall molecules/s: molecules published / time from the first consumer start to the last
  new id. Wall time: the whole bench, set-up and tear-down included.

At the end the bench waits until no prediction arrived for ``SETTLE_S`` (late duplicates),
sends SIGTERM and checks the consumer exits 0 within its ``--shutdown-timeout-s``, then reads
the dead-letter topic. Every wait is bounded (``--timeout-s`` for the stream as a whole).
"""
