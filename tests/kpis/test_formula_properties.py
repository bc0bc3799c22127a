"""Property tests: random and hostile text never raises anything but FormulaError and never runs code;
random valid formulas always compile to SQL that runs."""

import builtins
import datetime as dt
import re
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpis.formula import FormulaError, compile_formula, registry
from kpis.periods import Period

JAN = Period("monthly", dt.date(2026, 1, 1))
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _forbidden(*args, **kwargs):
    raise AssertionError("code was run")


@contextmanager
def no_code_run():
    """Any eval/exec while compiling fails the test loudly (hypothesis itself may use them outside)."""
    with mock.patch.object(builtins, "eval", _forbidden), mock.patch.object(builtins, "exec", _forbidden):
        yield


@pytest.fixture
def no_code():
    return no_code_run


def compile_or_formula_error(text):
    try:
        with no_code_run():
            compile_formula(text)
    except FormulaError as exc:
        assert isinstance(exc.message, str) and exc.message
        assert exc.position is None or 0 <= exc.position <= len(text)
        # one position at most in what people see (never "… at position 5. (position 11)")
        assert len(re.findall(r"\(position \d+\)|at position \d+", exc.with_position())) <= 1, exc.with_position()
    # anything else propagates and fails the test


VOCABULARY = [
    "count", "count_distinct", "sum", "avg", "min", "max", "latest", "kpi", "snapshot", "(", ")", "(", ")", ".",
    ",", "+", "-", "*", "/", "=", "!=", "<", "<=", ">", ">=", "<>", "where", "by", "during", "at", "period",
    "previous", "last", "days", "all", "time", "start", "end", "and", "or", "not", "in", "is", "empty", "has",
    "true", "false", "deals", "contacts", "users", "metrics", "activities", "amount", "status", "'won'", "'x'",
    "\"open\"", "7", "0", "1.5", "3661", "99999999999999", "closed_at", "created_at", "complete", "archived",
    "done", "'2026-01-01'", "metric", "'sales_spend'", "lifecycle_stage", "#", "\n", "'", "stage_changes",
    "win-rate", "'win-rate'", "__import__", "os", "system", ";", "--", "DROP", "TABLE", "kişiler", "ş", "\x00",
]


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(st.text(max_size=300))
def test_random_text(no_code, text):
    compile_or_formula_error(text)


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(VOCABULARY), max_size=40))
def test_token_soup(no_code, words):
    compile_or_formula_error(" ".join(words))


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(VOCABULARY), max_size=40), st.text(max_size=20))
def test_token_soup_glued(no_code, words, glue):
    compile_or_formula_error(glue.join(words))


@pytest.mark.django_db
@pytest.mark.parametrize("text", [
    "count(deals where name = '''; DROP TABLE pipeline_deal; --')",
    "count(deals where name = \"x\"\" OR 1=1 --\")",
    "count(deals where owner = 'alice'' OR ''1''=''1')",
    "count(deals where status in ('won', 'lost') or name in ('%s', '%(x)s', '{0}'))",
    "sum(metrics.value where metric = 'sales_spend') + count(deals where name = 'x'')) --')",
    "count(deals where currency = E'\\x41')",
])
def test_hostile_literals_are_parameters(no_code, text, django_assert_max_num_queries):
    try:
        with no_code_run():
            compiled = compile_formula(text)
    except FormulaError:
        return
    with no_code_run():
        assert compiled.evaluate(JAN) in (0, None)
    from pipeline.models import Deal

    assert Deal.objects.count() == 0  # the table is still there


@pytest.mark.django_db
def test_hostile_names_are_not_paths(no_code):
    for text in ("count(deals where owner__username = 'x')", "count(deals where pk = 1)",
                 "count(deals where __class__ = 1)", "count(deals.stage__probability)",
                 "count(deals by created_at__date)", "count(__import__)", "kpi('') + 1", "snapshot('../x')"):
        with no_code_run(), pytest.raises(FormulaError):
            compile_formula(text)


# --- random valid formulas run ---------------------------------------------------------------------

WINDOWS = ["", " during period", " during previous period", " during last 7 days", " during all time",
           " at period start", " at period end"]


def literal_for(field):
    if field.type in (registry.NUMBER, registry.CURRENCY, registry.ID):
        return st.sampled_from(["0", "1", "2.5", "-3"])
    if field.type == registry.CHOICE:
        return st.sampled_from([f"'{c}'" for c in field.choices] or ["''"])
    if field.type in (registry.DATE, registry.DATETIME):
        return st.sampled_from(["'2026-01-01'", "'2025-12-31'"])
    if field.type == registry.BOOL:
        return st.sampled_from(["true", "false"])
    return st.sampled_from(["'x'", "''", "'O''Brien'"])


@st.composite
def condition(draw, source_name, depth=0):
    source = registry.get(source_name)
    fields = sorted(source.fields)
    name = draw(st.sampled_from(fields))
    field = source.fields[name]
    if field.type == registry.BOOL:
        options = ["flag", "compare"]
    else:
        options = ["empty", "compare", "in"]
    if source.relations and depth < 1:
        options.append("has")
    if depth < 2:
        options += ["and", "or", "not"]
    kind = draw(st.sampled_from(options))
    if kind == "flag":
        return name
    if kind == "empty":
        return f"{name} is {draw(st.sampled_from(['', 'not ']))}empty"
    if kind == "compare":
        ops = ["=", "!="] if field.type in (registry.CHOICE, registry.REF, registry.BOOL, registry.ID) else \
            ["=", "!=", "<", "<=", ">", ">="]
        return f"{name} {draw(st.sampled_from(ops))} {draw(literal_for(field))}"
    if kind == "in":
        items = draw(st.lists(literal_for(field), min_size=1, max_size=3))
        return f"{name} {draw(st.sampled_from(['', 'not ']))}in ({', '.join(items)})"
    if kind == "has":
        relation = source.relations[draw(st.sampled_from(sorted(source.relations)))]
        where = ""
        if draw(st.booleans()):
            where = " where " + draw(condition(relation.target, depth + 1))
        window = draw(st.sampled_from(["", " during last 30 days", " during period"]))
        return f"has {relation.name}{where}{window}"
    if kind == "not":
        return f"not ({draw(condition(source_name, depth + 1))})"
    left, right = draw(condition(source_name, depth + 1)), draw(condition(source_name, depth + 1))
    return f"({left} {kind} {right})"


@st.composite
def aggregate(draw):
    source_name = draw(st.sampled_from([s for s in registry.public_sources() if s != "metrics"]))
    source = registry.get(source_name)
    func = draw(st.sampled_from(["count", "count_distinct", "sum", "avg", "min", "max", "latest"]))
    numeric = sorted(n for n, f in source.fields.items() if f.type in registry.NUMERIC_TYPES)
    if func in ("sum", "avg", "min", "max", "latest"):
        if not numeric:
            func = "count"
            field = ""
        else:
            field = "." + draw(st.sampled_from(numeric))
    elif func == "count_distinct":
        field = "." + draw(st.sampled_from(sorted(n for n, f in source.fields.items() if f.type != registry.BOOL)))
    else:
        countable = sorted(n for n, f in source.fields.items() if f.type != registry.BOOL)
        field = draw(st.sampled_from(["", "." + countable[0], "." + countable[-1]]))
    where = (" where " + draw(condition(source_name))) if draw(st.booleans()) else ""
    times = sorted(n for n, f in source.fields.items() if f.type in registry.TIME_TYPES)
    by = (" by " + draw(st.sampled_from(times))) if draw(st.booleans()) else ""
    return f"{func}({source_name}{field}{where}{by}{draw(st.sampled_from(WINDOWS))})"


@st.composite
def formula(draw, depth=0):
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        return draw(st.one_of(aggregate(), st.sampled_from(["1", "0", "100", "2.5"])))
    op = draw(st.sampled_from(["+", "-", "*", "/"]))
    return f"({draw(formula(depth + 1))} {op} {draw(formula(depth + 1))})"


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(formula())
def test_valid_formulas_run(text):
    compiled = compile_formula(text)
    compiled.evaluate(JAN)
    for kind in compiled.dimensions[:1]:
        compiled.evaluate_members(JAN, kind)
