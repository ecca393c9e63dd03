"""Ray Data against molstream, rendered: the table."""

from __future__ import annotations

from rich.table import Table

from bench.vs_raydata.analyse import Outcome


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(outcomes: list[Outcome]) -> Table:
    """The outcomes side by side."""
    table = Table(title="same bounded job: molstream vs Ray Data")
    for header in (
        "system",
        "predictions",
        "total s",
        "molecules/s",
        "first prediction s",
        "molecules/s after first",
        "group join s",
        "read s",
        "peak RSS MB driver+workers",
        "all Ray",
        "peak PSS MB driver+workers",
        "all Ray",
    ):
        table.add_column(header, justify="right")
    for o in outcomes:
        table.add_row(
            o.system,
            f"{o.predictions_seen}/{o.molecules}",
            f"{o.total_s:.1f}",
            f"{o.molecules_per_s:.0f}",
            f"{o.first_prediction_s:.2f}",
            f"{o.molecules_per_s_after_first:.0f}",
            _seconds(o.detail.get("group_join_s")),
            _seconds(o.detail.get("read_s")),
            f"{o.peak_driver_workers_mb:.0f}",
            f"{o.peak_all_ray_mb:.0f}",
            f"{o.peak_driver_workers_pss_mb:.0f}",
            f"{o.peak_all_ray_pss_mb:.0f}",
        )
    return table
