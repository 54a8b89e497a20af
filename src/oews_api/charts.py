"""Chart specs a front end can draw (``charts`` in a ``POST /api/v1/query`` response): data, not pictures."""

from __future__ import annotations

from typing import Any

Chart = dict[str, Any]
PERCENTILE_LABELS = ("10th", "25th", "median", "75th", "90th")
PERCENTILE_STATS = ("pct10", "pct25", "median", "pct75", "pct90")


def unit(measure: str) -> str:
    """What a measure's numbers count."""
    if measure.startswith("a_"):
        return "USD per year"
    if measure.startswith("h_"):
        return "USD per hour"
    return "jobs" if measure == "employment" else "ratio"


def bar_chart(title: str, labels: list[str], values: list[Any], measure: str) -> Chart:
    """One bar per label (comparisons, rankings)."""
    return {"type": "bar", "title": title, "data": {"labels": labels, "values": values}, "options": {"measure": measure, "unit": unit(measure)}}


def grouped_bar_chart(title: str, labels: list[str], series: dict[str, list[Any]], measure: str) -> Chart:
    """One group of bars per label (a place), one bar per series (an occupation); null where BLS published nothing."""
    return {
        "type": "bar",
        "title": title,
        "data": {"labels": labels, "series": [{"name": name, "values": values} for name, values in series.items()]},
        "options": {"measure": measure, "unit": unit(measure), "grouped": True},
    }


def line_chart(title: str, years: list[int], values: list[Any], measure: str) -> Chart:
    """A measure across survey years (trends)."""
    return {"type": "line", "title": title, "data": {"labels": years, "values": values}, "options": {"measure": measure, "unit": unit(measure)}}


def range_chart(row: dict[str, Any], measure: str, subject: str) -> Chart | None:
    """The 10th-90th percentile spread of one occupation's wages (null where BLS did not publish)."""
    prefix = measure[:2]
    values = [row[prefix + s] for s in PERCENTILE_STATS]
    if all(v is None for v in values):
        return None
    return {
        "type": "range",
        "title": f"{subject}: {'hourly' if prefix == 'h_' else 'annual'} wage percentiles",
        "data": {"labels": list(PERCENTILE_LABELS), "values": values, "mean": row[prefix + "mean"]},
        "options": {
            "measure": measure,
            "unit": unit(measure),
            "highlight": PERCENTILE_LABELS[PERCENTILE_STATS.index(measure[2:])] if measure[2:] in PERCENTILE_STATS else None,
        },
    }
