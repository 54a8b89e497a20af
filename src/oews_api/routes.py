"""HTTP endpoints: thin wiring from requests to the query, name and answer functions."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from oews_api import queries
from oews_api.db import DatabaseUnavailable
from oews_api.names import NATIONAL, Area, Match, NameIndex, Occupation
from oews_api.planner import Plan
from oews_api.schema import MEASURES
from oews_api.settings import MAX_QUERY_CHARS
from oews_api.text import normalize

if TYPE_CHECKING:
    from oews_api.app import Data, Service

router = APIRouter()
BUILTIN_PLANNER = "oews-builtin-planner"
Measure = Literal[MEASURES]  # type: ignore[valid-type]
Name = Annotated[str, Query(min_length=1, max_length=200)]
Year = Annotated[int | None, Query(ge=1997, le=2100, description="survey year (default: the latest in the database)")]
Industry = Annotated[str, Query(min_length=1, max_length=120, description="NAICS-based industry code or name; 000000 = cross-industry")]


class QueryRequest(BaseModel):
    """The request existing front ends send."""

    model_config = ConfigDict(extra="ignore")
    query: str = Field(min_length=3, max_length=MAX_QUERY_CHARS, description="a question in plain English")
    enable_charts: bool = True


def _data(request: Request) -> Data:
    service: Service = request.app.state.service
    if service.data is None:
        raise DatabaseUnavailable(service.error or "not loaded")
    return service.data


@router.get("/health", tags=["operations"])
async def health(request: Request) -> JSONResponse:
    """200 with the database being served; 503 with the reason when it is missing or unreadable."""
    service: Service = request.app.state.service
    if service.data is None:
        return JSONResponse(
            {"status": "unavailable", "detail": service.error, "database": {"path": str(service.settings.sqlite_db_path)}}, status_code=503
        )
    info = service.data.db.info
    return JSONResponse(
        {"status": "ok", "database": {"path": info.path, "sha256": info.sha256, "release": info.release, "years": info.years, "rows": info.rows}}
    )


@router.get("/metrics", tags=["operations"])
async def metrics(request: Request) -> Response:
    """Prometheus metrics: request counts and latency by route and status, database info."""
    body, content_type = request.app.state.service.metrics.render()
    return Response(body, media_type=content_type)


@router.post("/api/v1/query", tags=["questions"])
async def query(request: Request, body: QueryRequest) -> JSONResponse:
    """Answer a plain-English question from the data (with chart specs when enable_charts)."""
    started = time.perf_counter()
    service: Service = request.app.state.service
    data = _data(request)
    plan: Plan | None = None
    models = [BUILTIN_PLANNER]
    if service.llm is not None and service.http is not None:
        plan = await service.llm.plan(service.http, body.query)
        if plan is not None:
            models = [service.llm.model]
    plan = plan or data.planner.plan(body.query)
    result = data.answerer.answer(plan, charts=body.enable_charts)
    answer = _unknown_place_note(body.query, plan, data.index) + result.text
    corrections = _corrections(body.query, data.index)
    answer += f" (Read {corrections} in your question.)" if corrections else ""
    return JSONResponse(
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


def _unknown_place_note(question: str, plan: Plan, index: NameIndex) -> str:
    """Say so when a place was named but is not in this database (rather than silently answering for the U.S.)."""
    if plan.areas:
        return ""
    place = index.unknown_place(question)
    if place is None:
        return ""
    count = sum(1 for a in index.areas.values() if a.type == "M")
    similar = index.similar_areas(place)
    hint = f" Did you mean {' or '.join(a.name for a in similar)}? Ask again with that name." if similar else ""
    return (
        f"This database has no area named \u201c{place}\u201d (it holds the U.S., the states and {count} metro or "
        f"nonmetro areas; see GET /api/v1/areas), so these are national figures.{hint} "
    )


def _with_substring_matches(matches: list[Match], items: Iterable[Occupation | Area], query: str) -> list[Match]:
    """The resolved matches, then every other item whose name contains the query's words (score 0.5)."""
    words = " ".join(normalize(query))
    seen = {m.item.code for m in matches}
    extra = [Match(i, 0.5, "substring") for i in items if words and i.code not in seen and words in " ".join(normalize(_name(i)))]
    return [*matches, *extra]


def _name(item: Occupation | Area) -> str:
    return item.title if isinstance(item, Occupation) else item.name


def _corrections(question: str, index: NameIndex) -> str:
    words = normalize(question)
    changed = [(a, b) for a, b in zip(words, index.correct(words), strict=True) if a != b]
    return ", ".join(f"\u201c{a}\u201d as \u201c{b}\u201d" for a, b in changed)


@router.get("/api/v1/occupations", tags=["data"])
async def occupations(
    request: Request,
    q: Annotated[str, Query(max_length=200, description="SOC code, official title, or common name (RN, PA, IT manager)")] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> JSONResponse:
    """Search occupations by code, title or common name (best match first)."""
    index = _data(request).index
    if not q.strip():
        found = [o.public() for o in sorted(index.occupations.values(), key=lambda o: o.code)[:limit]]
        return JSONResponse({"query": q, "results": found})
    matches = _with_substring_matches(index.resolve_occupation(q), index.occupations.values(), q)
    results = [{**m.item.public(), "score": round(m.score, 3), "matched_by": m.via} for m in matches if m.score >= 0.3]
    return JSONResponse({"query": q, "results": results[:limit]})


@router.get("/api/v1/areas", tags=["data"])
async def areas(
    request: Request,
    q: Annotated[str, Query(max_length=200, description="area code, state name or abbreviation, metro or city name")] = "",
    type: Annotated[Literal["N", "S", "M"] | None, Query(description="N national, S state/territory, M metro or nonmetro")] = None,
    limit: Annotated[int, Query(ge=1, le=600)] = 20,
) -> JSONResponse:
    """Search areas by code, state, abbreviation, metro or city name (best match first)."""
    index = _data(request).index
    candidates: list[Match]
    if q.strip():
        candidates = _with_substring_matches(index.resolve_area(q), index.areas.values(), q)
    else:
        candidates = [Match(a, 1.0, "list") for a in sorted(index.areas.values(), key=lambda a: a.code)]
    results = [{**m.item.public(), "score": round(m.score, 3), "matched_by": m.via} for m in candidates if type is None or m.item.type == type]  # type: ignore[union-attr]
    return JSONResponse({"query": q, "results": results[:limit]})


@router.get("/api/v1/wages", tags=["data"])
async def wages(
    request: Request,
    occupation: Name,
    area: Annotated[str, Query(min_length=1, max_length=200)] = NATIONAL,
    year: Year = None,
    industry: Industry = queries.CROSS_INDUSTRY,
) -> JSONResponse:
    """Every published measure for one occupation × area × year × industry (unpublished = null + reason)."""
    data = _data(request)
    occ, place, when, ind = _occupation(data.index, occupation), _area(data.index, area), _year(data, year), _industry(data, industry)
    row = queries.estimate(data.db, occ.code, place.code, when, ind)
    if row is None:
        raise HTTPException(404, f"BLS published no estimate for {occ.title} in {place.name} for {when} (industry {ind})")
    return JSONResponse(_cell(row))


@router.get("/api/v1/compare", tags=["data"])
async def compare(
    request: Request,
    occupation: Annotated[list[str], Query(min_length=1, max_length=5, description="repeat to compare occupations")],
    area: Annotated[list[str], Query(max_length=5, description="repeat to compare areas")] = [NATIONAL],  # noqa: B006
    measure: Measure = "a_median",
    year: Year = None,
    industry: Industry = queries.CROSS_INDUSTRY,
) -> JSONResponse:
    """One measure across several occupations and/or areas, highest first (unpublished last, with reasons)."""
    data = _data(request)
    occs = [_occupation(data.index, o) for o in occupation]
    places = [_area(data.index, a) for a in area or [NATIONAL]]
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
    return JSONResponse({"measure": measure, "year": when, "industry_code": ind, "release": data.db.info.release, "results": cells})


@router.get("/api/v1/top", tags=["data"])
async def top(
    request: Request,
    area: Annotated[str, Query(min_length=1, max_length=200)] = NATIONAL,
    measure: Measure = "a_median",
    order: Literal["desc", "asc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    group: Annotated[str | None, Query(max_length=200, description="limit to a SOC group, e.g. 29-0000 or 'healthcare'")] = None,
    year: Year = None,
    industry: Industry = queries.CROSS_INDUSTRY,
) -> JSONResponse:
    """Detailed occupations in an area ranked by a measure (only published values are ranked)."""
    data = _data(request)
    place, when, ind = _area(data.index, area), _year(data, year), _industry(data, industry)
    prefix = ""
    if group:
        occ = _occupation(data.index, group)
        prefix = occ.code.rstrip("0") if occ.level < 3 else occ.code
    rows = queries.ranked(data.db, place.code, measure, when, industry_code=ind, limit=limit, ascending=order == "asc", occ_prefix=prefix)
    return JSONResponse(
        {"area": place.public(), "measure": measure, "order": order, "year": when, "industry_code": ind, "results": [_cell(r) for r in rows]}
    )


@router.get("/api/v1/trend", tags=["data"])
async def trend(
    request: Request,
    occupation: Name,
    area: Annotated[str, Query(min_length=1, max_length=200)] = NATIONAL,
    industry: Industry = queries.CROSS_INDUSTRY,
) -> JSONResponse:
    """Every year the database holds for one occupation × area × industry, oldest first."""
    data = _data(request)
    occ, place, ind = _occupation(data.index, occupation), _area(data.index, area), _industry(data, industry)
    rows = queries.trend(data.db, occ.code, place.code, ind)
    return JSONResponse({"occupation": occ.public(), "area": place.public(), "industry_code": ind, "years": [_cell(r) for r in rows]})


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
    close = "; ".join(index.suggestions(text, 5))
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
    close = "; ".join(index.area_suggestions(text, 5))
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
    code = data.index.industry_code(text)
    if code is None:
        raise HTTPException(404, f"no industry matches {text!r} (use a code like 000000 for cross-industry, or an exact industry name)")
    return code
