"""HTTP endpoints: thin wiring from requests to the query, name and answer functions.

Nothing here blocks the event loop: handlers that read SQLite or match names are plain
``def`` functions (FastAPI runs them on its threadpool, where each thread has its own
read-only connection) or hand that work to the threadpool; ``/health`` and ``/metrics``
only read what was computed at start. Bodies are encoded with orjson. Repeated GET
requests never reach these functions (``response_cache``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from oews_api import queries
from oews_api.industries import IndustryIndex
from oews_api.names import NATIONAL, Area, Match, NameIndex, Occupation
from oews_api.names.suggestions import area_suggestions, corrections, occupation_suggestions, with_substring_matches
from oews_api.planner import Plan
from oews_api.schema import MEASURES
from oews_api.service import Data, Service
from oews_api.settings import MAX_LIST_ITEMS, MAX_NAME_CHARS, MAX_QUERY_CHARS

router = APIRouter()
BUILTIN_PLANNER = "oews-builtin-planner"
Measure = Literal[MEASURES]  # type: ignore[valid-type]
NameText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]
Name = Annotated[str, Query(min_length=1, max_length=MAX_NAME_CHARS)]
Year = Annotated[int | None, Query(ge=1997, le=2100, description="survey year (default: the latest in the database)")]
Industry = Annotated[
    str, Query(min_length=1, max_length=MAX_NAME_CHARS, description="NAICS-based industry code or name; 000000 = cross-industry")
]


class QueryRequest(BaseModel):
    """The request existing front ends send."""

    model_config = ConfigDict(extra="ignore")
    query: str = Field(min_length=3, max_length=MAX_QUERY_CHARS, description="a question in plain English")
    enable_charts: bool = True


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _data(request: Request) -> Data:
    return _service(request).require_data()


@router.get("/health", tags=["operations"])
async def health(request: Request) -> Response:
    """200 with the database being served (the file by name); 503 with the reason when it is missing or unreadable."""
    service = _service(request)
    if service.data is None:
        body = {"status": "unavailable", "detail": service.error, "database": {"path": service.database_file}}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    info = service.data.db.info
    return _json(
        {
            "status": "ok",
            "database": {"path": service.database_file, "sha256": info.sha256, "release": info.release, "years": info.years, "rows": info.rows},
        }
    )


@router.get("/metrics", tags=["operations"])
async def metrics(request: Request) -> Response:
    """Prometheus metrics: request counts and latency by route and status, database info."""
    body, content_type = _service(request).metrics.render()
    return Response(body, media_type=content_type)


@router.post("/api/v1/query", tags=["questions"])
async def query(request: Request, body: QueryRequest) -> Response:
    """Answer a plain-English question from the data (with chart specs when enable_charts)."""
    started = time.perf_counter()
    service = _service(request)
    data = service.require_data()
    plan: Plan | None = None
    models = [BUILTIN_PLANNER]
    if service.llm is not None and service.http is not None:
        plan = await service.llm.plan(service.http, body.query)
        if plan is not None:
            models = [service.llm.model]
    content = await run_in_threadpool(_answer, data, body, plan, models, started)
    return Response(content, media_type="application/json")


def _answer(data: Data, body: QueryRequest, plan: Plan | None, models: list[str], started: float) -> bytes:
    """Plan (unless the LLM did), answer and encode a question: the CPU and SQLite part, run on the threadpool."""
    plan = plan or data.planner.plan(body.query)
    result = data.answerer.answer(plan, charts=body.enable_charts)
    answer = result.text  # places, industries and qualifiers it could not honour are named by the answer itself
    corrected = corrections(data.index, body.query, plan.missing_areas)
    answer += f" (Read {corrected} in your question.)" if corrected else ""
    return orjson.dumps(
        {
            "answer": answer,
            "charts": result.charts,
            "data_sources": [f"U.S. Bureau of Labor Statistics, Occupational Employment and Wage Statistics (OEWS), {data.db.info.release}"],
            "data": result.rows,
            "metadata": {
                "execution_time_ms": round((time.perf_counter() - started) * 1000, 2),
                "plan": plan.model_dump(),
                "resolved": result.resolved,
                "models_used": models,
            },
        }
    )


@router.get("/api/v1/occupations", tags=["data"])
def occupations(
    request: Request,
    q: Annotated[str, Query(max_length=MAX_NAME_CHARS, description="SOC code, official title, or common name (RN, PA, IT manager)")] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Response:
    """Search occupations by code, title or common name (best match first)."""
    index = _data(request).index
    if not q.strip():
        found = [o.public() for o in sorted(index.occupations.values(), key=lambda o: o.code)[:limit]]
        return _json({"query": q, "results": found})
    matches = with_substring_matches(index.resolve_occupation(q), index.occupations.values(), index.tables.occupation_names, q)
    results = [{**m.item.public(), "score": round(m.score, 3), "matched_by": m.via} for m in matches if m.score >= 0.3]
    return _json({"query": q, "results": results[:limit]})


@router.get("/api/v1/areas", tags=["data"])
def areas(
    request: Request,
    q: Annotated[str, Query(max_length=MAX_NAME_CHARS, description="area code, state name or abbreviation, metro or city name")] = "",
    type: Annotated[Literal["N", "S", "M"] | None, Query(description="N national, S state/territory, M metro or nonmetro")] = None,
    limit: Annotated[int, Query(ge=1, le=600)] = 20,
) -> Response:
    """Search areas by code, state, abbreviation, metro or city name (best match first)."""
    index = _data(request).index
    candidates: list[Match]
    if q.strip():
        candidates = with_substring_matches(index.resolve_area(q), index.areas.values(), index.tables.area_names, q)
    else:
        candidates = [Match(a, 1.0, "list") for a in sorted(index.areas.values(), key=lambda a: a.code)]
    results = [{**m.item.public(), "score": round(m.score, 3), "matched_by": m.via} for m in candidates if type is None or m.item.type == type]  # type: ignore[union-attr]
    return _json({"query": q, "results": results[:limit]})


@router.get("/api/v1/wages", tags=["data"])
def wages(
    request: Request,
    occupation: Name,
    area: Name = NATIONAL,
    year: Year = None,
    industry: Industry = queries.CROSS_INDUSTRY,
) -> Response:
    """Every published measure for one occupation × area × year × industry (unpublished = null + reason)."""
    data = _data(request)
    occ, place, when, ind = _occupation(data.index, occupation), _area(data.index, area), _year(data, year), _industry(data, industry)
    row = queries.estimate(data.db, occ.code, place.code, when, ind)
    if row is None:
        raise HTTPException(404, f"BLS published no estimate for {occ.title} in {place.name} for {when} (industry {ind})")
    return _json(_cell(row))


@router.get("/api/v1/compare", tags=["data"])
def compare(
    request: Request,
    occupation: Annotated[list[NameText], Query(min_length=1, max_length=MAX_LIST_ITEMS, description="repeat to compare occupations")],
    area: Annotated[list[NameText], Query(max_length=MAX_LIST_ITEMS, description="repeat to compare areas")] = [NATIONAL],  # noqa: B006
    measure: Measure = "a_median",
    year: Year = None,
    industry: Industry = queries.CROSS_INDUSTRY,
) -> Response:
    """One measure across several occupations and/or areas, highest first (unpublished last, with reasons)."""
    data = _data(request)
    occs = list(dict.fromkeys(_occupation(data.index, o) for o in occupation))  # "RN" and "29-1141" are one row, not two
    places = list(dict.fromkeys(_area(data.index, a) for a in area or [NATIONAL]))
    when, ind = _year(data, year), _industry(data, industry)
    cells = []
    for occ in occs:
        for place in places:
            row = queries.estimate(data.db, occ.code, place.code, when, ind)
            cells.append(
                {
                    "occupation": occ.public(),
                    "area": place.public(),
                    "value": row[measure] if row else None,
                    "unpublished": (
                        row["unpublished"].get(measure) if row else {"reason": "no_estimate", "detail": "BLS published no estimate for this cell"}
                    ),
                }
            )
    cells.sort(key=lambda c: (c["value"] is None, -(c["value"] or 0)))
    return _json({"measure": measure, "year": when, "industry_code": ind, "release": data.db.info.release, "results": cells})


@router.get("/api/v1/top", tags=["data"])
def top(
    request: Request,
    area: Name = NATIONAL,
    measure: Measure = "a_median",
    order: Literal["desc", "asc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    group: Annotated[str | None, Query(max_length=MAX_NAME_CHARS, description="limit to a SOC group, e.g. 29-0000 or 'healthcare'")] = None,
    year: Year = None,
    industry: Industry = queries.CROSS_INDUSTRY,
) -> Response:
    """Detailed occupations in an area ranked by a measure (only published values are ranked)."""
    data = _data(request)
    place, when, ind = _area(data.index, area), _year(data, year), _industry(data, industry)
    prefix = ""
    if group:
        occ = _occupation(data.index, group)
        prefix = occ.code.rstrip("0") if occ.level < 3 else occ.code
    rows = queries.ranked(data.db, place.code, measure, when, industry_code=ind, limit=limit, ascending=order == "asc", occ_prefix=prefix)
    return _json({"area": place.public(), "measure": measure, "order": order, "year": when, "industry_code": ind, "results": [_cell(r) for r in rows]})


@router.get("/api/v1/trend", tags=["data"])
def trend(
    request: Request,
    occupation: Name,
    area: Name = NATIONAL,
    industry: Industry = queries.CROSS_INDUSTRY,
) -> Response:
    """Every year the database holds for one occupation × area × industry, oldest first."""
    data = _data(request)
    occ, place, ind = _occupation(data.index, occupation), _area(data.index, area), _industry(data, industry)
    rows = queries.trend(data.db, occ.code, place.code, ind)
    return _json({"occupation": occ.public(), "area": place.public(), "industry_code": ind, "years": [_cell(r) for r in rows]})


def _cell(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "occupation": {
            "occ_code": row["occ_code"],
            "soc_code": f"{row['occ_code'][:2]}-{row['occ_code'][2:]}",
            "title": row["occ_title"],
            "display_level": row["display_level"],
        },
        "area": {"area_code": row["area_code"], "area_name": row["area_name"], "area_type": row["area_type"]},
        "industry": {"industry_code": row["industry_code"], "industry_name": row["industry_name"]},
        "year": row["year"],
        "measures": {m: row[m] for m in MEASURES},
        "unpublished": row["unpublished"],
    }


def _occupation(index: NameIndex, text: str) -> Occupation:
    occupation = index.occupation(text)
    if occupation is not None:
        return occupation
    close = "; ".join(occupation_suggestions(index, text, 5))
    raise HTTPException(
        404,
        f"no occupation matches {text!r}"
        + (f"; close matches: {close}" if close else "")
        + " (use a SOC code like 15-1252 or GET /api/v1/occupations?q=)",
    )


def _area(index: NameIndex, text: str) -> Area:
    area = index.area(text)
    if area is not None:
        return area
    close = "; ".join(area_suggestions(index, text, 5))
    raise HTTPException(
        404,
        f"no area matches {text!r}" + (f"; close matches: {close}" if close else "") + " (use a BLS area code like 4800000 or GET /api/v1/areas?q=)",
    )


def _year(data: Data, year: int | None) -> int:
    years = data.db.info.years
    if year is None:
        return years[-1]
    if year not in years:
        raise HTTPException(404, f"no data for {year}; this database holds {', '.join(map(str, years))}")
    return year


def _industry(data: Data, text: str) -> str:
    industry = IndustryIndex.of(data.index).resolve(text)
    if industry is None:
        raise HTTPException(
            404, f"no industry matches {text!r} (use a code like 000000 for cross-industry, an industry name, or words like hospitals)"
        )
    return industry.code
