"""A Prometheus histogram observed a batch at a time: one call per batch, not per value."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class BatchHistogram(Collector):
    """``name`` with ``buckets`` (upper bounds, increasing; +Inf is added), observed with
    :meth:`observe_many`. prometheus-client's ``Histogram`` takes a lock per value; the event
    loop is one thread, so plain counts do."""

    def __init__(
        self,
        name: str,
        documentation: str,
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._doc = documentation
        self._bounds = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        registry.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        """Count each value in its bucket."""
        bounds, counts = self._bounds, self._counts
        for value in values:
            counts[bisect.bisect_left(bounds, value)] += 1
            self._sum += value

    def collect(self) -> Iterator[Metric]:
        """The cumulative buckets, count and sum, as a scrape reads them."""
        cumulative, total = [], 0
        for bound, count in zip(
            (*map(floatToGoString, self._bounds), "+Inf"), self._counts, strict=True
        ):
            total += count
            cumulative.append((bound, float(total)))
        yield HistogramMetricFamily(self._name, self._doc, buckets=cumulative, sum_value=self._sum)
