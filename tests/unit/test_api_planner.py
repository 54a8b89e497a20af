"""The built-in planner on questions phrased the many ways people ask them (real sample database)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from oews_api.aliases import AREA_ALIASES, INDUSTRY_ALIASES, OCCUPATION_ALIASES
from oews_api.answers import Answerer
from oews_api.db import Database
from oews_api.formatting import format_value
from oews_api.names import NameIndex
from oews_api.names.suggestions import place_candidates, similar_areas
from oews_api.planner import build_plan
from tests.fixtures.oewsdata import BLS_SAMPLE


@pytest.fixture(scope="module")
def answerer(api_db: Path) -> Answerer:
    db = Database.open(api_db)
    return Answerer(db, NameIndex.build(db))


# question, occupation, areas, the measure whose published figure the answer must state
CASES = [
    ("What do registered nurses earn in the U.S.?", "291141", ["0000000"], "a_median"),
    ("average pay for electricians in new york city", "472111", ["0035620"], "a_mean"),
    ("Median hourly pay, pharmacists, Florida", "291051", ["1200000"], "h_median"),
    ("25th percentile salary of accountants in illinois", "132011", ["1700000"], "a_pct25"),
    ("75th percentile hourly wage for truck drivers in TX", "533032", ["4800000"], "h_pct75"),
    ("what is the mean wage of a lawyer in washington dc", "231011", ["1100000"], "a_mean"),
    ("lawyers in Washington state average salary", "231011", ["5300000"], "a_mean"),
    ("location quotient of software developers in the seattle area", "151252", ["0042660"], "loc_quotient"),
    ("How much do physical therapists make in Dallas?", "291123", ["0019100"], "a_median"),
    ("median annual salary for cashiers in LA", "412011", ["0031080"], "a_median"),
    ("MEDIAN SALARY FOR NURSE PRACTITIONERS IN MASSACHUSETTS", "291171", ["2500000"], "a_median"),
    ("median salary for registerd nurses in pensylvania", "291141", ["4200000"], "a_median"),
    ("how much does an HVAC tech make in Phoenix", "499021", ["0038060"], "a_median"),
    ("median pay for data scientists in San Francisco", "152051", ["0041860"], "a_median"),
    ("how many cooks are employed in Houston", "352014", ["0026420"], "employment"),
    ("entry level salary for accountants in Minnesota", "132011", ["2700000"], "a_pct10"),
    ("median salary for elementary school teachers in st. louis", "252021", ["0041180"], "a_median"),
    ("median salary for personal financial advisors in the DC metro area", "132052", ["0047900"], "a_median"),
    ("median salary for CNAs in Ohio", "311131", ["3900000"], "a_median"),
    ("How much do Software Developers make in Albuquerque NM", "151252", ["3500000"], "a_median"),
    ("PA salary in Texas", "291071", ["4800000"], "a_median"),
    ("nurses in PA", "291141", ["4200000"], "a_median"),
    ("median salary of a nurse in the state of new york", "291141", ["3600000"], "a_median"),
    ("How much do acountants make in Texs", "132011", ["4800000"], "a_median"),
    ("electricians: Denver or Phoenix, which pays more?", "472111", ["0019740", "0038060"], "a_median"),
    ("Is the average salary for nurses higher in Texas or California?", "291141", ["4800000", "0600000"], "a_mean"),
    ("what's the median wage for musicians in LA", "272042", ["0031080"], "h_median"),  # BLS: hourly only
    ("how much do airline pilots make an hour", "532011", ["0000000"], "a_median"),  # BLS: annual only
    # AP / GPO state abbreviations (SQL: h_mean of 291141 in 0600000 is 72.25; nationally 48.76)
    ("mean hourly wage for registered nurses in Calif", "291141", ["0600000"], "h_mean"),
    ("median pay for nurses in Mass.", "291141", ["2500000"], "a_median"),
    ("nurse salary in Penn", "291141", ["4200000"], "a_median"),
    ("median salary for software developers in Wash.", "151252", ["5300000"], "a_median"),
    ("median pay for nurses in Fla., Ill. and Mich.", "291141", ["1200000", "1700000", "2600000"], "a_median"),
    ("median pay for nurses in Minn, Tenn, Ariz, Colo or Conn", "291141", ["2700000", "4700000", "0400000", "0800000", "0900000"], "a_median"),
    ("median pay for nurses in W.Va.", "291141", ["5400000"], "a_median"),
    ("car wash attendants median pay", "536031", ["0000000"], "a_median"),  # "wash" is a word here, not Washington
]


@pytest.mark.parametrize(("question", "occupation", "areas", "measure"), CASES, ids=[c[0] for c in CASES])
def test_question_resolves_and_states_the_published_figure(
    answerer: Answerer, question: str, occupation: str, areas: list[str], measure: str
) -> None:
    answer = answerer.answer(build_plan(question, answerer.index), charts=False)
    assert [o["occ_code"] for o in answer.resolved["occupations"]] == [occupation], answer.text
    assert [a["area_code"] for a in answer.resolved["areas"]] == areas, answer.text
    for row in answer.rows:
        assert format_value(measure, row[measure]) in answer.text


def test_hourly_only_wage_is_never_annualized(answerer: Answerer) -> None:
    answer = answerer.answer(build_plan("median annual salary for musicians in the US", answerer.index), charts=False)
    assert "median hourly wage" in answer.text and "only as hourly" in answer.text
    assert answer.rows[0]["a_median"] is None and "annual wage $" not in answer.text


def test_occupation_comparison_in_one_area(answerer: Answerer) -> None:
    plan = build_plan("which pays more in Chicago, electricians or plumbers?", answerer.index)
    assert plan.intent == "compare" and plan.occupations == ["472111", "472152"]


def test_top_areas_for_an_occupation(answerer: Answerer) -> None:
    plan = build_plan("which state pays nurses the most", answerer.index)
    answer = answerer.answer(plan, charts=True)
    assert plan.intent == "top_areas" and answer.rows[0]["area_name"] == "California"
    assert answer.charts[0]["type"] == "bar"


def test_top_within_a_group(answerer: Answerer) -> None:
    answer = answerer.answer(build_plan("top 3 highest paying healthcare jobs in Ohio", answerer.index), charts=False)
    assert len(answer.rows) == 3 and all(r["occ_code"].startswith("29") for r in answer.rows)


def test_unknown_year_and_unknown_occupation_are_said_plainly(answerer: Answerer) -> None:
    assert "no 2019 data" in answerer.answer(build_plan("median salary for nurses in 2019", answerer.index), charts=False).text
    assert "could not match" in answerer.answer(build_plan("asdf qwerty", answerer.index), charts=False).text


def test_a_broad_group_without_a_state_row_answers_with_its_detailed_occupations(answerer: Answerer) -> None:
    answer = answerer.answer(build_plan("what do doctors make in Texas", answerer.index), charts=False)
    assert "group Physicians" in answer.text and answer.rows and all(r["occ_code"].startswith("2912") for r in answer.rows)


def test_every_detailed_occupation_title_resolves_to_itself(answerer: Answerer) -> None:
    """Official titles, "All Other" and "Except" ones included, in any case: the general problem, not a list."""
    index = answerer.index
    states = sorted((a for a in index.areas.values() if a.type == "S"), key=lambda a: a.code)
    wrong = []
    for n, occupation in enumerate(sorted((o for o in index.occupations.values() if o.level == 3), key=lambda o: o.code)):
        state = states[n % len(states)]
        title = occupation.title.lower() if n % 2 else occupation.title
        plan = build_plan(f"median salary for {title} in {state.name}", index)
        if plan.occupations != [occupation.code] or plan.areas != [state.code]:
            wrong.append(f"{occupation.title} / {state.name} -> {plan.occupations} {plan.areas}")
    assert not wrong, "\n".join(wrong)


def test_jobs_per_thousand_of_1000_or_more_get_a_thousands_separator() -> None:
    assert format_value("jobs_1000", 1000.0) == "1,000"
    assert format_value("jobs_1000", 12.34) == "12.34"


def test_an_unknown_place_is_said_and_the_closest_area_suggested(answerer: Answerer) -> None:
    assert place_candidates(answerer.index, "median pay for Nurse Practitioners in Sanfrancisco") == ["Sanfrancisco"]
    assert [a.code for a in similar_areas(answerer.index, "Sanfrancisco")] == ["0041860"]


# ----- round two: industries, tables, proximity, missing places, aliases as data --------------------------
def _bls_codes(mapping_file: str, column: str) -> set[str]:
    """One column's codes in a BLS mapping file of the real May 2025 release."""
    header, *lines = (BLS_SAMPLE / mapping_file).read_text().splitlines()
    position = header.split("\t").index(column)
    return {line.split("\t")[position].strip() for line in lines if line.strip()}


def test_alias_data_points_at_codes_bls_publishes(answerer: Answerer) -> None:
    """aliases.toml is reviewed data: every alias must name a code of the real release's mapping files."""
    assert not set(OCCUPATION_ALIASES.values()) - _bls_codes("oe.occupation", "occupation_code")
    assert not set(AREA_ALIASES.values()) - _bls_codes("oe.area", "area_code")
    assert not set(INDUSTRY_ALIASES.values()) - _bls_codes("oe.industry", "industry_code")
    assert build_plan("infosec analyst salary in Texas", answerer.index).occupations == ["151212"]
    assert build_plan("PA-C salary in Ohio", answerer.index).occupations == ["291071"]


@pytest.mark.parametrize(
    "question",
    ["median salary for construction laborers in Texas", "home health aides in Ohio", "information security analysts in the U.S.",
     "retail salespersons in California", "bank tellers in Florida", "restaurant cooks in Ohio", "construction managers in Texas",
     "school bus drivers in Ohio", "elementary school teachers in Michigan", "bus drivers, school in Ohio"],
)
def test_industry_words_inside_an_occupation_title_are_not_an_industry(answerer: Answerer, question: str) -> None:
    plan = build_plan(question, answerer.index)
    assert plan.industry is None and plan.occupations and plan.areas, plan


@pytest.mark.parametrize(
    ("question", "occupation"),
    [("restaurant cooks pay", "352014"), ("construction manager salary", "119021"), ("high school teacher salary", "252031"),
     ("school bus driver salary", "533051"), ("restaurant manager salary", "119051"), ("bank manager salary", "113031")],
)
def test_an_industry_word_before_an_occupation_that_owns_it_is_part_of_the_title(answerer: Answerer, question: str, occupation: str) -> None:
    """ "restaurant cooks" is the BLS occupation Cooks, Restaurant: no industry qualifier, so nothing to name as not honoured."""
    plan = build_plan(question, answerer.index)
    assert plan.occupations == [occupation] and plan.industry is None and not plan.not_honoured, plan
    assert "industr" not in answerer.answer(plan, charts=False).text


@pytest.mark.parametrize(
    ("question", "occupation", "areas", "industry"),
    [("director of finance salary in Texas", "113031", ["4800000"], None), ("head of finance pay in Ohio", "113031", ["3900000"], None),
     ("meter readers, utilities in Ohio", "435041", ["3900000"], None), ("director of finance in hospitals", "113031", [], "hospitals")],
)
def test_an_alias_or_title_said_in_full_owns_the_industry_word_inside_it(
    answerer: Answerer, question: str, occupation: str, areas: list[str], industry: str | None
) -> None:
    """ "director of finance" is Financial Managers, not Producers and Directors working in Finance and Insurance."""
    plan = build_plan(question, answerer.index)
    assert plan.occupations == [occupation] and plan.areas == areas and plan.industry == industry and not plan.not_honoured, plan


@pytest.mark.parametrize(
    ("question", "industry", "areas"),
    [("how much do utility workers make", "utility", []), ("utility worker salary", "utility", []), ("hospital staff pay", "hospital", []),
     ("how much do hospital workers make in Texas", "hospital", ["4800000"]), ("federal government employees salary", "federal government", []),
     ("federal government workers", "federal government", []), ("restaurant personnel pay", "restaurant", [])],
)
def test_an_industrys_workers_with_no_occupation_named_are_all_its_occupations(
    answerer: Answerer, question: str, industry: str, areas: list[str]
) -> None:
    """ "utility workers" is everyone Utilities employs, never Childcare Workers (the best title for "workers")."""
    plan = build_plan(question, answerer.index)
    assert plan.occupations == [] and plan.industry == industry and plan.areas == areas, plan
    answer = answerer.answer(plan, charts=False)
    assert {row["occ_code"] for row in answer.rows} == {"000000"} and "All Occupations" in answer.text, answer.text


def test_workers_with_no_occupation_or_industry_named_are_all_occupations(answerer: Answerer) -> None:
    assert build_plan("how much do workers make in Texas", answerer.index).occupations == []
    assert build_plan("social workers in Texas", answerer.index).occupations == ["211021"]
    assert build_plan("staff nurse salary", answerer.index).occupations == ["291141"]


@pytest.mark.parametrize(
    ("question", "occupations", "industry"),
    [("hospital nurse salary", ["291141"], "hospital"), ("what do hospital nurses make in Texas", ["291141"], "hospital"),
     ("federal government lawyers salary", ["231011"], "federal government"), ("restaurant servers pay", ["353031"], "restaurant"),
     ("Texas hospitals vs California hospitals", [], "hospitals"), ("highest paying government jobs", [], "government")],
)
def test_an_industry_used_as_an_adjective_or_on_its_own_is_read_and_named(
    answerer: Answerer, question: str, occupations: list[str], industry: str
) -> None:
    """Never dropped silently: the sample database is cross-industry, so the answer says the industry was not honoured."""
    plan = build_plan(question, answerer.index)
    assert plan.occupations == occupations and plan.industry == industry, plan
    answer = answerer.answer(plan, charts=False).text
    assert answer.startswith(f"This database has cross-industry figures only, so these figures are for all industries, not only \u201c{industry}\u201d."), answer


def test_the_same_industry_said_twice_is_one_industry_and_a_second_one_is_named(answerer: Answerer) -> None:
    plan = build_plan("Texas hospitals vs California hospitals", answerer.index)
    assert plan.areas == ["4800000", "0600000"] and plan.intent == "compare" and not plan.not_honoured, plan
    other = build_plan("hospital nurses vs nursing home nurses", answerer.index)
    assert other.industry == "hospital" and other.not_honoured == ["nursing home (one industry per question)"], other


def test_an_industry_the_database_lacks_is_named_and_the_figure_said_to_cover_all_industries(answerer: Answerer) -> None:
    answer = answerer.answer(build_plan("median pay for nurses in nursing homes in Ohio", answerer.index), charts=False)
    assert answer.text.startswith("This database has cross-industry figures only") and "\u201cnursing homes\u201d" in answer.text
    assert answer.rows[0]["industry_code"] == "000000" and answer.rows[0]["area_code"] == "3900000"


def test_near_around_and_the_x_area_mean_the_place_not_newark(answerer: Answerer) -> None:
    for question, area in [("nurse salary near Houston", "0026420"), ("nurse pay near Utah", "4900000"), ("cooks around the Denver area", "0019740")]:
        assert build_plan(question, answerer.index).areas == [area], question


def test_a_place_the_database_lacks_is_named_never_replaced(answerer: Answerer) -> None:
    for question, missing in [("nurse pay in Portland, ME", "Portland, ME"), ("nurse pay in Columbus, Ohio", "Columbus, Ohio")]:
        plan = build_plan(question, answerer.index)
        answer = answerer.answer(plan, charts=False)
        assert plan.areas == [] and plan.missing_areas == [missing], plan
        assert f"no area named \u201c{missing}\u201d" in answer.text and answer.rows[0]["area_code"] == "0000000"
    assert build_plan("nurse pay in Portland, OR", answerer.index).areas == ["0038900"]


@pytest.mark.parametrize(
    ("question", "areas", "missing"),
    [
        ("nurses salary in Mars", [], ["Mars"]),  # typo correction made it "marcos": still the place asked about
        ("median salary for nurses in Paris", [], ["Paris"]),
        ("nurse pay in Kansas City", [], ["Kansas City"]),  # not Kansas: the sample has no Kansas City metro
        ("nurse salary in Texas and in Paris", ["4800000"], ["Paris"]),  # a second place after a known one
        ("software developer salary in California vs Mars", ["0600000"], ["Mars"]),
        ("nurse salary in May 2025", [], []),  # a month, not a place
        ("median pay for RNs and NPs in Ohio", ["3900000"], []),  # abbreviations of occupations, not places
    ],
)
def test_every_place_the_database_lacks_is_named_even_after_a_typo_correction(
    answerer: Answerer, question: str, areas: list[str], missing: list[str]
) -> None:
    plan = build_plan(question, answerer.index)
    assert (plan.areas, plan.missing_areas) == (areas, missing)
    answer = answerer.answer(plan, charts=False).text
    assert all(f"no area named \u201c{place}\u201d" in answer for place in missing), answer


@pytest.mark.asyncio
async def test_a_missing_place_is_not_reported_as_a_typo_read_as_another_word(api_client: httpx.AsyncClient) -> None:
    response = await api_client.post("/api/v1/query", json={"query": "nurses salary in Mars"})
    answer = response.json()["answer"]
    assert "no area named \u201cMars\u201d" in answer and "marcos" not in answer.lower(), answer
    typo = (await api_client.post("/api/v1/query", json={"query": "nurse salary in califronia"})).json()["answer"]
    assert "\u201ccalifronia\u201d as \u201ccalifornia\u201d" in typo, typo


def test_occupations_joined_by_and_are_each_answered(answerer: Answerer) -> None:
    """ "and" lists occupations without a comparison word; a title with "and" stays one occupation."""
    assert build_plan("nurses and cooks and lawyers in Texas", answerer.index).occupations == ["291141", "352014", "231011"]
    assert build_plan("nurses in Texas and Dental Hygienists", answerer.index).occupations == ["291141", "291292"]
    assert build_plan("paralegals and legal assistants in Ohio", answerer.index).occupations == ["232011"]


def test_more_than_four_by_four_asks_to_narrow_it_down(answerer: Answerer) -> None:
    question = "compare nurses, cooks, lawyers, welders and cashiers in Texas, Ohio, Utah, Iowa and Maine"
    plan = build_plan(question, answerer.index)
    answer = answerer.answer(plan, charts=True)
    assert len(plan.occupations) == 5 and len(plan.areas) == 5
    assert "narrow it down" in answer.text and not answer.rows and not answer.charts


def test_how_much_more_states_the_gap_with_both_figures(answerer: Answerer) -> None:
    plan = build_plan("how much more do lawyers earn than paralegals", answerer.index)
    answer = answerer.answer(plan, charts=True)
    assert plan.intent == "difference"
    assert answer.text.startswith("Lawyers earn $96,780 more than Paralegals and Legal Assistants in the U.S.")
    assert "$159,670 vs Paralegals and Legal Assistants $62,890" in answer.text
    flipped = answerer.answer(build_plan("how much more do paralegals earn than lawyers", answerer.index), charts=False)
    assert flipped.text.startswith("Paralegals and Legal Assistants earn $96,780 less than Lawyers")


def test_which_metro_pays_most_says_how_many_metros_it_ranked(answerer: Answerer) -> None:
    answer = answerer.answer(build_plan("which metro pays electricians the most", answerer.index), charts=False)
    metros = sum(1 for a in answerer.index.areas.values() if a.type == "M" and "nonmetropolitan" not in a.name)
    assert f"among the {metros} metro areas in this database" in answer.text
    cheapest = answerer.answer(build_plan("which metro pays cashiers the least", answerer.index), charts=False)
    assert all(r["area_code"].startswith("00") for r in cheapest.rows), "a nonmetropolitan area is no metro"


def test_a_second_industry_or_a_sixth_place_is_named_as_not_answered(answerer: Answerer) -> None:
    plan = build_plan("electricians in manufacturing or in construction", answerer.index)
    assert plan.not_honoured == ["construction (one industry per question)"]
    assert "Not answered here: construction (one industry per question)." in answerer.answer(plan, charts=False).text


def test_a_qualifier_oews_has_no_breakdown_for_is_named(answerer: Answerer) -> None:
    answer = answerer.answer(build_plan("median salary for female nurses in Texas", answerer.index), charts=False)
    assert answer.text.startswith("Not answered here: \u201cfemale\u201d (OEWS publishes no figures by sex).")
    assert "Registered Nurses in Texas" in answer.text
