"""How figures are written in answers: exactly as BLS publishes them."""

from __future__ import annotations

from oews_api.schema import ANNUAL_MEASURES, HOURLY_MEASURES

MEASURE_LABELS: dict[str, str] = {
    "employment": "employment",
    "emp_prse": "employment relative standard error",
    "h_mean": "mean hourly wage",
    "a_mean": "mean annual wage",
    "mean_prse": "mean wage relative standard error",
    "h_pct10": "10th percentile hourly wage",
    "h_pct25": "25th percentile hourly wage",
    "h_median": "median hourly wage",
    "h_pct75": "75th percentile hourly wage",
    "h_pct90": "90th percentile hourly wage",
    "a_pct10": "10th percentile annual wage",
    "a_pct25": "25th percentile annual wage",
    "a_median": "median annual wage",
    "a_pct75": "75th percentile annual wage",
    "a_pct90": "90th percentile annual wage",
    "jobs_1000": "employment per 1,000 jobs",
    "loc_quotient": "location quotient",
}


def format_value(measure: str, value: float | int) -> str:
    """``$173,780`` annual, ``$83.55`` hourly, ``1,654,440`` counts, ``2.87`` ratios."""
    if measure in ANNUAL_MEASURES:
        return f"${value:,.0f}"
    if measure in HOURLY_MEASURES:
        return f"${value:,.2f}"
    if measure == "employment":
        return f"{int(value):,}"
    if measure in ("emp_prse", "mean_prse"):
        return f"{value:g}%"
    return f"{value:,.2f}" if measure == "loc_quotient" else f"{value:,g}"
