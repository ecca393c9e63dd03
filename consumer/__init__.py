"""molstream's consumer service: Kafka intake, offsets, dispatch, the Ray worker pool, output."""

import os

# Ray reads this when it is first imported. With clusters "enabled" (Ray's default on Linux),
# Ray swaps 127.0.0.1 for the host's external address and a second driver on the same
# machine hangs; every process of ours that starts or joins a cluster must carry it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
