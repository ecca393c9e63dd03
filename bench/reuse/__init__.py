"""Worker reuse on a real Ray cluster: the seed's Approach #1 against molstream's pool.

Run: ``.venv/bin/python -m bench.reuse [--inputs 6] [--max-start 0,4,8] [--draws 2]``.
Prints a table and writes ``reuse.json`` and ``reuse.png`` (``--out``, default bench/results).

The job is the simulation's (:mod:`consumer.dev.simulation`) played in real time with one time unit
(TU) = ``--tu-s`` seconds (0.5): a synthetic model that loads in 1 TU and predicts one molecule
in 1 TU, N inputs, N one-CPU Spot nodes requested at t = 0. Node i is provisioned at
p_i ~ Uniform(0, S) TU and needs the 3 TU set-up after it, so it joins at p_i + 3 TU.

- Approach 1 (the seed's fairer baseline): N stateless Ray tasks submitted at t = 0,
  ``@ray.remote(num_cpus=1, resources={"spot": 1})``, each loads the model and predicts one
  input; a node runs the next pending task as soon as it is free.
- molstream: a :class:`~consumer.processor.StreamProcessor` with N workers (``min_workers =
  max_workers = N``, ``worker_resources={"spot": 1}``, ``batch_size=1``) is running before
  t = 0, as a service would be: it has joined its consumer group (Tansu takes about 5 s for
  that; reported apart as ``group_join_s``) and its N workers are requested, but no node can
  take them yet. At t = 0 the N inputs are published to Kafka. Each worker loads the model
  once, as its node arrives, and takes inputs for as long as there are any.

How nodes arrive. All N nodes are started before t = 0 and each is held whole by a placement
group (one ``{"CPU": 1, "spot": 1}`` bundle); at the node's arrival time the group is removed
and the node's capacity appears. ``add_node`` itself is no good as the clock: on this machine it
blocks its caller for 1-2.5 s per node (the raylet registering), and Ray refuses to start nodes
from more than one thread at a time, so six nodes due together would arrive over 10 s or more.

What is measured (wall clock, seconds from t = 0, converted to TU for the table):

- time: t = 0 is the first submission (Approach 1: the first ``.remote``; molstream: the
  first input published); the end is the last result (Approach 1: the driver sees the last
  task finish; molstream: the broker acknowledges the last prediction).
- cost, the simulation's billing rule on measured work intervals: a node that ran inputs is
  billed from its provisioning time p_i to the end of its last input (Approach 1: the end of
  the task; molstream: the return of the worker's last batch); a node that ran none is billed
  from p_i to the moment the last input started (0 if it was provisioned later). An input starts
  when its task function starts (Approach 1, model load included) or when its batch is sent to
  a worker (molstream). ``cost from add`` bills from the node's arrival (p_i + 3 TU) instead.

Beside each measurement is :func:`consumer.dev.simulation.simulate_run` for the same provisioning
times: improvement = (approach 1 - molstream) / approach 1, for time and for cost. ``sim+start``
runs the simulation once more with the set-up lengthened by the worker start-up measured in
that run (median time from a node's arrival to Approach 1's first task starting there: the Ray
worker process starting, which both approaches pay once per node and the model does not have).
"""
