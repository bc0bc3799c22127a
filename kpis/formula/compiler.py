"""From a parsed formula to one SQL statement, built from Django ORM expressions.

``compile_formula`` parses, checks every name against the registry (with did-you-mean suggestions),
inlines ``kpi('…')`` references and finds ``snapshot('…')`` KPIs. Evaluating a period then builds:

- for each largest arithmetic subtree whose aggregates all read one range of one source (same source, anchor
  field, window and N days): ONE scalar subquery over that source,
  ``SELECT <arithmetic of aggregates with FILTER (WHERE …)> FROM source WHERE <range> AND <OR of the filters>``
  (win rate's two counts: one index range scan);
- different sources, or different ranges of one source (deals open at the period end by ``created_at`` and
  deals won in the period by ``closed_at``): separate scalar subqueries combined by numeric arithmetic
  (``x / NULLIF(y, 0)``) — each can use its own index range, where one scan under an OR of both would read
  the whole table;
- company level: ``SELECT <expression>``; per member of a dimension kind: the members' queryset annotated
  with the expression, where each source's subquery is computed ONCE for all members — its rows grouped by
  the dimension path into one JSON object ``{member id: value}`` (an uncorrelated subquery: an InitPlan) —
  and each member picks its entry; a member without rows gets the subtree's value over no rows (count 0,
  sum 0, avg no value, …). External metrics (per member: the rows of a metric kept per that kind with the
  member's id, and the rows of company-wide metrics that ``applies_to_breakdowns``) and ``snapshot()`` stay
  correlated with the member: they are small, indexed lookups.

User text only ever becomes query parameters.
"""

import copy
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import (
    Avg,
    BooleanField,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    JSONField,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, NullIf
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
)
from django.db.models.sql import Query
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from . import ast, registry
from .errors import FormulaError
from .parser import AGGREGATES, parse, suggest
from .registry import BOOL, CHOICE, DATE, ID, NUMERIC_TYPES, REF, TEXT, TIME_TYPES, Ctx, Numeric

MAX_AGGREGATES = 40
MAX_KPI_DEPTH = 5
MAX_TREE_DEPTH = 120
DIMENSION_ORDER = ("team", "owner", "pipeline", "source")
NUMERIC_AGGREGATES = ("sum", "avg", "min", "max", "latest")

_LOOKUPS = {"=": Exact, "<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual}
_DECIMAL = DecimalField()


class FormulaTimeout(FormulaError):
    """The statement ran longer than ``KPI_STATEMENT_TIMEOUT_MS``."""


def _q(text: str) -> str:
    return text[:60]


def _tree_depth(node) -> int:
    """The depth of a tree, iteratively (a long chain 1+1+1… is deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        children = []
        if isinstance(current, ast.BinOp):
            children = [current.left, current.right]
        elif isinstance(current, ast.Neg):
            children = [current.operand]
        elif isinstance(current, ast.Inlined):
            children = [current.expr]
        stack += [(child, depth + 1) for child in children]
    return deepest


# --- resolving: names, types, references ---------------------------------------------------------


class Resolver:
    def __init__(self, text: str, slug: str | None):
        self.text = text
        self.slug = slug
        self.references: list[str] = []
        self.snapshot_references: list[str] = []
        self.inlined_references: list[str] = []
        self.aggregates: list[ast.Agg] = []
        self.metric_kinds: dict | None = None  # key -> dimension kind ("" = company-wide)
        self.contact_rules = None
        self.dimension_sets: list[set] = []

    # The errors of an inlined KPI point at the kpi('…') call in the formula being compiled.
    def fail(self, message: str, node, context: ast.Node | None = None):
        if context is not None:
            raise FormulaError(message, context.pos, context.end)
        raise FormulaError(message, node.pos, max(node.end, node.pos + 1))

    def resolve(self, tree, stack: tuple, context=None):
        if isinstance(tree, ast.Num):
            return tree
        if isinstance(tree, ast.Neg):
            tree.operand = self.resolve(tree.operand, stack, context)
            return tree
        if isinstance(tree, ast.BinOp):
            tree.left = self.resolve(tree.left, stack, context)
            tree.right = self.resolve(tree.right, stack, context)
            return tree
        if isinstance(tree, ast.Agg):
            self.aggregate(tree, context)
            return tree
        if isinstance(tree, ast.KpiRef):
            return self.inline(tree, stack, context)
        if isinstance(tree, ast.SnapshotRef):
            tree.kpi_id = self.kpi_row(tree, context)["id"]
            if tree.slug not in self.snapshot_references:
                self.snapshot_references.append(tree.slug)
            if tree.slug not in self.references:
                self.references.append(tree.slug)
            return tree
        raise FormulaError(_("Unexpected part of the formula."), tree.pos, tree.end)  # pragma: no cover

    def kpi_row(self, node, context) -> dict:
        from kpis.models import Kpi

        row = Kpi.objects.filter(slug=node.slug).values("id", "slug", "formula").first()
        if row is None:
            where = context or _Span(getattr(node, "slug_pos", node.pos), getattr(node, "slug_end", node.end))
            hint = suggest(node.slug, list(Kpi.objects.values_list("slug", flat=True)))
            if hint:
                self.fail(_("Unknown KPI “%(slug)s” — did you mean “%(hint)s”?") % {"slug": _q(node.slug),
                                                                                  "hint": hint}, where)
            self.fail(_("Unknown KPI “%(slug)s”.") % {"slug": _q(node.slug)}, where)
        return row

    def inline(self, node: ast.KpiRef, stack: tuple, context):
        if node.slug in stack:
            chain = " → ".join(list(stack[stack.index(node.slug):]) + [node.slug])
            self.fail(_("KPI references form a cycle: %(chain)s.") % {"chain": chain}, node, context)
        if len([s for s in stack if s]) >= MAX_KPI_DEPTH:
            self.fail(_("KPI references are nested too deeply (at most %(max)s levels).") % {"max": MAX_KPI_DEPTH},
                      node, context)
        row = self.kpi_row(node, context)
        if node.slug not in self.references:
            self.references.append(node.slug)
        if node.slug not in self.inlined_references:
            self.inlined_references.append(node.slug)
        try:
            inner = parse(row["formula"])
        except FormulaError as exc:
            # At the kpi('…') call; a message that says where in that KPI's formula keeps its one position.
            where = context or node
            raise FormulaError(_("KPI “%(slug)s” has an invalid formula: %(message)s")
                               % {"slug": node.slug, "message": exc.message}, where.pos, max(where.end, where.pos + 1),
                               says_position=exc.says_position) from None
        try:
            inner = self.resolve(inner, stack + (node.slug,), context or node)
        except FormulaError as exc:
            if context is None and not exc.message.startswith(_("KPI references")):
                raise FormulaError(_("In KPI “%(slug)s”: %(message)s") % {"slug": node.slug, "message": exc.message},
                                   node.pos, node.end) from None
            raise
        return ast.Inlined(node.slug, inner, pos=node.pos, end=node.end)

    # --- aggregates ------------------------------------------------------------------------------

    def source(self, name: ast.Name, context) -> registry.Source:
        source = registry.get(name.value)
        if source is None or not source.public:
            names = registry.public_sources()
            hint = suggest(name.value, names)
            if hint:
                self.fail(_("Unknown source “%(name)s” — did you mean “%(hint)s”?") % {"name": _q(name.value),
                                                                                     "hint": hint}, name, context)
            self.fail(_("Unknown source “%(name)s”; the sources are: %(known)s.")
                      % {"name": _q(name.value), "known": ", ".join(names)}, name, context)
        return source

    def field(self, source: registry.Source, name: ast.Name, context) -> registry.Field:
        found = source.fields.get(name.key)
        if found is None:
            hint = suggest(name.value, list(source.fields))
            if hint:
                self.fail(_("Unknown field “%(name)s” on %(source)s — did you mean “%(hint)s”?")
                          % {"name": _q(name.value), "source": source.name, "hint": hint}, name, context)
            self.fail(_("Unknown field “%(name)s” on %(source)s; its fields are: %(known)s.")
                      % {"name": _q(name.value), "source": source.name, "known": ", ".join(source.fields)},
                      name, context)
        return found

    def aggregate(self, node: ast.Agg, context):
        self.aggregates.append(node)
        if len(self.aggregates) > MAX_AGGREGATES:
            self.fail(_("The formula has too many aggregates (at most %(max)s, counting those of kpi() "
                        "references).") % {"max": MAX_AGGREGATES}, node, context)
        source = self.source(node.source, context)
        if node.field is not None:
            fld = self.field(source, node.field, context)
            if node.func in NUMERIC_AGGREGATES and fld.type not in NUMERIC_TYPES:
                self.fail(_("“%(func)s” needs a number field; “%(name)s” is %(type)s.")
                          % {"func": node.func, "name": fld.name, "type": fld.type_label}, node.field, context)
            if node.func in ("count", "count_distinct") and fld.type == BOOL:
                self.fail(_("“%(func)s” cannot count a yes/no field; use count(%(source)s where %(name)s).")
                          % {"func": node.func, "source": source.name, "name": fld.name}, node.field, context)
        elif node.func != "count":
            example = {"sum": "amount", "avg": "amount", "min": "amount", "max": "amount", "latest": "value",
                       "count_distinct": "customer"}.get(node.func, "amount")
            self.fail(_("“%(func)s” needs a field, e.g. %(func)s(%(source)s.%(example)s).")
                      % {"func": node.func, "source": source.name, "example": example}, node, context)
        if node.by is not None:
            by = self.field(source, node.by, context)
            if by.type not in TIME_TYPES:
                self.fail(_("“by” needs a date field; “%(name)s” is %(type)s.") % {"name": by.name,
                                                                                 "type": by.type_label},
                          node.by, context)
        if node.where is not None:
            self.condition(node.where, source, context)
        if source.metric_dims:
            # A metric kept per kind K allows K only; a company-wide metric allows every kind — also one that does
            # not apply to breakdowns (sales spend): per member it then reads no rows (sum 0, latest no value),
            # so CAC per lead source is that source's marketing spend over its new customers. The allowed kinds do
            # not depend on applies_to_breakdowns, so changing it never takes a breakdown away from stored KPIs.
            kinds = self.metric_kinds_of(node.where)
            self.dimension_sets.append({kind for kind in DIMENSION_ORDER if all(k in ("", kind) for k in kinds)})
        else:
            self.dimension_sets.append(set(source.dims))

    def metric_kinds_of(self, where) -> list[str]:
        kinds = []
        for node in ast.walk(where):
            if isinstance(node, ast.Compare | ast.InList) and node.field.key == "metric":
                literals = [node.literal] if isinstance(node, ast.Compare) else node.literals
                kinds += [self.metric_kinds.get(lit.value, "") for lit in literals]
            if isinstance(node, ast.Has):
                break
        return kinds

    def load_metrics(self):
        if self.metric_kinds is None:
            from kpis.models import ExternalMetric

            self.metric_kinds = dict(ExternalMetric.objects.values_list("key", "dimension_kind"))
        return self.metric_kinds

    def condition(self, node, source: registry.Source, context):
        if isinstance(node, ast.Or | ast.And):
            for item in node.items:
                self.condition(item, source, context)
            return
        if isinstance(node, ast.Not):
            self.condition(node.item, source, context)
            return
        if isinstance(node, ast.Has):
            relation = source.relations.get(node.relation.key)
            if relation is None:
                known = list(source.relations)
                hint = suggest(node.relation.value, known)
                if hint:
                    self.fail(_("Unknown relation “%(name)s” on %(source)s — did you mean “%(hint)s”?")
                              % {"name": _q(node.relation.value), "source": source.name, "hint": hint},
                              node.relation, context)
                if not known:
                    self.fail(_("Unknown relation “%(name)s”: %(source)s have no related records for “has”.")
                              % {"source": source.name, "name": _q(node.relation.value)}, node.relation, context)
                self.fail(_("Unknown relation “%(name)s” on %(source)s; “has” can follow: %(known)s.")
                          % {"source": source.name, "name": _q(node.relation.value), "known": ", ".join(known)},
                          node.relation, context)
            if node.where is not None:
                self.condition(node.where, registry.get(relation.target), context)
            return
        fld = self.field(source, node.field, context)
        if fld.name == "complete" and source.name == "contacts" and self.contact_rules is None:
            from contacts.models import Entity
            from contacts.rules import EntityRules

            self.contact_rules = EntityRules.load(Entity.CONTACT)
        if isinstance(node, ast.Flag):
            if fld.type != BOOL:
                self.fail(_("“%(name)s” is %(type)s, not a yes/no field: compare it, e.g. %(name)s = …")
                          % {"name": fld.name, "type": fld.type_label}, node.field, context)
            return
        if isinstance(node, ast.Empty):
            if fld.type == BOOL:
                self.fail(_("“%(name)s” is yes/no and is never empty.") % {"name": fld.name}, node, context)
            return
        if isinstance(node, ast.Compare):
            if fld.type in (CHOICE, REF, BOOL, ID) and node.op not in ("=", "!="):
                self.fail(_("“%(name)s” is %(type)s: compare it with = or != (or in), not %(op)s.")
                          % {"name": fld.name, "type": fld.type_label, "op": node.op}, node, context)
            self.literal(fld, node.literal, source, context)
            return
        if isinstance(node, ast.InList):
            if fld.type == BOOL:
                self.fail(_("“%(name)s” is yes/no: use “%(name)s” or “not %(name)s”.") % {"name": fld.name},
                          node, context)
            for literal in node.literals:
                self.literal(fld, literal, source, context)

    def literal(self, fld: registry.Field, lit: ast.Lit, source, context):
        kind = fld.type
        if kind == BOOL:
            if lit.kind != "bool":
                self.fail(_("“%(name)s” is yes/no: compare it with true or false.") % {"name": fld.name}, lit,
                          context)
            return
        if kind in NUMERIC_TYPES or kind == ID:
            if lit.kind != "number":
                self.fail(_("“%(name)s” is %(type)s: compare it with a number, not %(value)s.")
                          % {"name": fld.name, "type": fld.type_label, "value": _shown(lit)}, lit, context)
            lit.parsed = lit.value
            return
        if lit.kind != "string":
            self.fail(_("“%(name)s” is %(type)s: compare it with a text in quotes, not %(value)s.")
                      % {"name": fld.name, "type": fld.type_label, "value": _shown(lit)}, lit, context)
        if kind in TIME_TYPES:
            try:
                day = parse_date(lit.value.strip())
            except ValueError:
                day = None
            if day is None:
                self.fail(_("“%(value)s” is not a date; write dates as 'YYYY-MM-DD'.") % {"value": _q(lit.value)},
                          lit, context)
            lit.parsed = day if kind == DATE else dt.datetime.combine(day, dt.time(), tzinfo=_tz())
            return
        if kind == CHOICE:
            if lit.value not in fld.choices:
                hint = suggest(lit.value, list(fld.choices))
                message = _("“%(value)s” is not one of: %(choices)s.") % {"value": _q(lit.value),
                                                                          "choices": ", ".join(fld.choices)}
                if hint:
                    message += " " + _("Did you mean “%(hint)s”?") % {"hint": hint}
                self.fail(message, lit, context)
        if kind == REF and source.metric_dims and fld.name == "metric":
            metrics = self.load_metrics()
            if lit.value not in metrics:
                hint = suggest(lit.value, list(metrics))
                if hint:
                    self.fail(_("Unknown metric “%(value)s” — did you mean “%(hint)s”?") % {"value": _q(lit.value),
                                                                                         "hint": hint}, lit, context)
                self.fail(_("Unknown metric “%(value)s”; the metrics are: %(known)s.")
                          % {"value": _q(lit.value), "known": ", ".join(sorted(metrics)) or "—"}, lit, context)
        lit.parsed = lit.value


@dataclass
class _Span:
    pos: int
    end: int


def _shown(lit: ast.Lit) -> str:
    if lit.kind == "string":
        return f"'{_q(lit.value)}'"
    if lit.kind == "bool":
        return "true" if lit.value else "false"
    return str(lit.value)


def _tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.TIME_ZONE)


# --- building SQL for a period ---------------------------------------------------------------------


def _ceil_day(instant: dt.datetime) -> dt.date:
    """The first local day that starts at or after ``instant`` (days before it are wholly before it)."""
    local = instant.astimezone(_tz())
    day = local.date()
    return day if local.time() == dt.time() else day + dt.timedelta(days=1)


@dataclass
class Scope:
    """What an evaluation is for: the period, the instant "now", and the dimension (None: the company;
    ``value`` is an id or an OuterRef to the member row)."""

    period: object
    now: dt.datetime
    kind: str | None = None
    value: object = None
    members: bool = False  # every member of ``kind`` at once (``value`` is then OuterRef("pk") of the member)

    @property
    def as_of(self) -> dt.datetime:
        return min(self.period.end, self.now)


def window_bounds(window: str, days: int | None, scope: Scope):
    """``(lower, upper, state_instant)`` of a window as instants (either bound may be None)."""
    period = scope.period
    if window == "period":
        return period.start, period.end, None
    if window == "previous":
        return period.previous().start, period.start, None
    if window == "last":
        return scope.as_of - dt.timedelta(days=days), scope.as_of, None
    if window == "all":
        return None, period.end, None
    if window == "start":
        return None, period.start, period.start
    if window == "end":
        return None, scope.as_of, scope.as_of
    raise ValueError(window)  # pragma: no cover


def window_q(source: registry.Source, anchor: registry.Field, window: str, days, scope: Scope) -> tuple[Q, object]:
    lower, upper, at = window_bounds(window, days, scope)
    path = anchor.path or anchor.name
    if anchor.type == DATE:
        lower = _ceil_day(lower) if lower is not None else None
        upper = _ceil_day(upper) if upper is not None else None
    q = Q()
    if lower is not None:
        q &= Q(**{f"{path}__gte": lower})
    if upper is not None:
        q &= Q(**{f"{path}__lt": upper})
    return q, at


class Builder:
    def __init__(self, compiled: "Compiled", scope: Scope):
        self.compiled = compiled
        self.scope = scope
        self._sources: dict[int, frozenset] = {}

    def ctx(self, at) -> Ctx:
        return Ctx(at=at, rate_day=self.scope.period.last_day, contact_rules=self.compiled.contact_rules)

    # Which scans a subtree needs (numbers need none; each snapshot() is its own): aggregates of one source
    # share a scan only when they read the same range of its anchor (same anchor field, window and N days),
    # so that the shared WHERE stays one index range rather than an OR of unrelated ones.
    def sources_of(self, node) -> frozenset:
        key = id(node)
        if key not in self._sources:
            if isinstance(node, ast.Agg):
                result = frozenset([self.scan_key(node)])
            elif isinstance(node, ast.SnapshotRef):
                result = frozenset([("snapshot", id(node))])
            elif isinstance(node, ast.BinOp):
                result = self.sources_of(node.left) | self.sources_of(node.right)
            elif isinstance(node, ast.Neg):
                result = self.sources_of(node.operand)
            elif isinstance(node, ast.Inlined):
                result = self.sources_of(node.expr)
            else:
                result = frozenset()
            self._sources[key] = result
        return self._sources[key]

    @staticmethod
    def scan_key(node: ast.Agg) -> tuple:
        """``("scan", source, anchor, window, days, piece)``: aggregates with one key read one range of one source."""
        source = registry.get(node.source.key)
        anchor = source.fields[node.by.key] if node.by is not None else source.fields[source.anchor]
        window, days = Builder.window_of(node)
        return ("scan", source.name, anchor.name, window, days, getattr(node, "piece", None))

    def build(self, tree):
        """The expression of a tree (``expression`` of it with its aggregates split into pieces)."""
        return self.expression(self.split(tree))

    def split(self, node):
        """``count`` / ``sum`` whose condition tests a piecewise state field at an instant (the lifecycle stage at
        the period start) → the sum of the same aggregate over each piece's rows: ``count(W) = count(W AND C1) +
        count(W AND C2)`` as C1, C2 split every row in two. Each piece is its own scan, so the piece that is a
        column (contacts unchanged since T: their current stage) is an index-only count, and the correlated
        subquery runs for the other piece's rows only — an OR of both would read every page of the table."""
        if isinstance(node, ast.BinOp):
            return ast.BinOp(node.op, self.split(node.left), self.split(node.right), pos=node.pos, end=node.end)
        if isinstance(node, ast.Neg):
            return ast.Neg(self.split(node.operand), pos=node.pos, end=node.end)
        if isinstance(node, ast.Inlined):
            return ast.Inlined(node.slug, self.split(node.expr), pos=node.pos, end=node.end)
        if not isinstance(node, ast.Agg) or node.func not in ("count", "sum"):
            return node
        name = self.piecewise_field(node)
        if name is None:
            return node
        source = registry.get(node.source.key)
        _q_unused, at = window_q(source, source.fields[source.anchor], *self.window_of(node)[:2], self.scope)
        count = len(source.fields[name].pieces(self.ctx(at)) or ())
        result = None
        for index in range(count):
            piece = copy.copy(node)
            piece.piece = (name, index)
            result = piece if result is None else ast.BinOp("+", result, piece, pos=node.pos, end=node.end)
        return result or node

    def piecewise_field(self, node: ast.Agg) -> str | None:
        """The first piecewise state field the aggregate's own condition tests at an instant (not inside ``has``)."""
        window, _days = self.window_of(node)
        if node.where is None or window not in ("start", "end"):
            return None
        source = registry.get(node.source.key)
        stack = [node.where]
        while stack:
            current = stack.pop()
            if isinstance(current, ast.Or | ast.And):
                stack += current.items
            elif isinstance(current, ast.Not):
                stack.append(current.item)
            elif isinstance(current, ast.Compare | ast.InList | ast.Empty):
                fld = source.fields.get(current.field.key)
                if fld is not None and fld.pieces is not None and fld.type != BOOL:
                    return fld.name
        return None

    @staticmethod
    def window_of(node: ast.Agg) -> tuple:
        source = registry.get(node.source.key)
        if node.window is not None:
            return node.window.kind, node.window.days
        return source.default_window, None

    def expression(self, node):
        sources = self.sources_of(node)
        if len(sources) == 1:
            (only,) = sources
            if only[0] == "scan":
                return self.subquery(node, registry.get(only[1]))
        if isinstance(node, ast.Num):
            return _number(node.value)
        if isinstance(node, ast.Neg):
            return _arith(_number(Decimal(-1)), "*", self.expression(node.operand))
        if isinstance(node, ast.BinOp):
            return _arith(self.expression(node.left), node.op, self.expression(node.right))
        if isinstance(node, ast.Inlined):
            return self.expression(node.expr)
        if isinstance(node, ast.SnapshotRef):
            return self.snapshot(node)
        raise TypeError(node)  # pragma: no cover

    def snapshot(self, node: ast.SnapshotRef):
        from kpis.models import KpiSnapshot

        rows = KpiSnapshot.objects.filter(kpi_id=node.kpi_id, period_start=self.scope.period.start)
        if self.scope.kind is None:
            rows = rows.filter(dimension_kind="", dimension_id=0)
        else:
            rows = rows.filter(dimension_kind=self.scope.kind, dimension_id=self.scope.value)
        return Numeric(Subquery(rows.order_by().values("value")[:1], output_field=_DECIMAL))

    # --- one source ------------------------------------------------------------------------------

    def conjuncts(self, node: ast.Agg):
        """The conditions an aggregate's rows meet, as ``[(key, Q)]`` (ANDed), with its value expression and
        anchor. Equal keys mean equal conditions, so aggregates over one source can share them."""
        source = registry.get(node.source.key)
        anchor = source.fields[node.by.key] if node.by is not None else source.fields[source.anchor]
        window = node.window.kind if node.window is not None else source.default_window
        days = node.window.days if node.window is not None else None
        q, at = window_q(source, anchor, window, days, self.scope)
        state = window if window in ("start", "end") else None
        parts = [(("window", anchor.name, window, days), q, None)]
        ctx = self.ctx(at)
        piece = getattr(node, "piece", None)
        if piece is not None:
            ctx.piece = piece
            piece_q = source.fields[piece[0]].pieces(ctx)[piece[1]][0]
            parts.append((("piece", state, piece), piece_q, None))
        if node.where is not None:
            items = node.where.items if isinstance(node.where, ast.And) else [node.where]
            for item in items:
                parts.append((("where", state, repr(item)), self.condition(item, source, ctx), item))
        value = None
        if node.field is not None:
            fld = source.fields[node.field.key]
            value = fld.value(ctx)
            if node.func in ("count", "count_distinct", "latest"):
                parts.append((("value", state, fld.name), _non_empty(fld, value), None))
        return parts, value, anchor

    def aggregate_parts(self, node: ast.Agg):
        """(condition Q, value expression or None, anchor Field) of one aggregate."""
        parts, value, anchor = self.conjuncts(node)
        return _and(q for _key, q, _node in parts), value, anchor

    def source_rows(self, source: registry.Source, where: Q):
        rows = source.model._default_manager.filter(where)
        if self.scope.kind is not None:
            rows = rows.filter(source.dimension_q(self.scope.kind, self.scope.value))
        return rows

    def subquery(self, node, source: registry.Source):
        """ONE scalar subquery over ``source`` for a subtree whose aggregates all read it: the conditions all
        aggregates share go to WHERE, with the OR of the rest; each aggregate FILTERs on what is left of its own."""
        aggregates = [n for n in ast.walk(node) if isinstance(n, ast.Agg)]
        parts = {id(agg): self.conjuncts(agg)[0] for agg in aggregates}
        first = parts[id(aggregates[0])]
        common = [key for key, _q, _n in first if all(key in {p[0] for p in parts[id(a)]} for a in aggregates)]
        where = _and(q for key, q, _node in first if key in common)
        filters, arms = {}, {}
        for agg in aggregates:
            rest = [part for part in parts[id(agg)] if part[0] not in common]
            filters[id(agg)] = _and(q for _key, q, _node in rest) if rest else None
            arms[tuple(part[0] for part in rest)] = rest
        if all(arms.values()):
            # An arm that implies another adds nothing to the OR (status = 'won' OR status in ('won', 'lost')).
            kept = [arm for arm in arms.values()
                    if not any(other is not arm and _implies(arm, other) for other in arms.values())]
            either = Q()
            for arm in kept:
                either |= _and(q for _key, q, _node in arm)
            where &= either
        value = self.inner(node, filters)
        if self.scope.members and not source.metric_dims:
            return self.per_member(source, where, value)
        rows = self.source_rows(source, where).annotate(kpi_value=value).values("kpi_value").order_by()
        rows.query.group_by = None  # one row of aggregates over the whole (filtered) source
        return Subquery(rows, output_field=_DECIMAL)

    def per_member(self, source: registry.Source, where: Q, value):
        """Every member's value of a one-source subtree from ONE pass over the source: the rows grouped by the
        dimension path into ``{member id: value}`` (uncorrelated, so computed once per statement), the member's
        entry picked by its id; a member without rows gets the value over no rows."""
        path = source.dims[self.scope.kind]
        grouped = (
            source.model._default_manager.filter(where).filter(**{f"{path}__isnull": False})
            .values(member_key=F(path)).annotate(kpi_value=value).order_by()
        )
        empty = source.model._default_manager.filter(Value(False, output_field=BooleanField()))
        empty = empty.annotate(kpi_value=value).values("kpi_value").order_by()
        empty.query.group_by = None
        return MemberValue(Keyed(grouped), F("pk"), Subquery(empty, output_field=_DECIMAL))

    def inner(self, node, filters: dict):
        if isinstance(node, ast.Num):
            return _number(node.value)
        if isinstance(node, ast.Neg):
            return _arith(_number(Decimal(-1)), "*", self.inner(node.operand, filters))
        if isinstance(node, ast.BinOp):
            return _arith(self.inner(node.left, filters), node.op, self.inner(node.right, filters))
        if isinstance(node, ast.Inlined):
            return self.inner(node.expr, filters)
        return self.aggregate_expression(node, filters[id(node)])

    def aggregate_expression(self, node: ast.Agg, condition: Q | None):
        _q_unused, value, anchor = self.aggregate_parts(node)
        extra = {} if condition is None else {"filter": condition}
        func = node.func
        if func == "count":
            # COUNT(*) / COUNT(1): no column to read, so a covering index is enough.
            return Numeric(Count(Value(1), **extra) if extra else Count("*"))
        if func == "count_distinct":
            return Numeric(Count(value, distinct=True, **extra))
        if func == "sum":
            return Coalesce(Sum(value, output_field=_DECIMAL, **extra), Value(Decimal(0)), output_field=_DECIMAL)
        if func == "avg":
            return Avg(value, output_field=_DECIMAL, **extra)
        if func == "min":
            return Min(value, output_field=_DECIMAL, **extra)
        if func == "max":
            return Max(value, output_field=_DECIMAL, **extra)
        if func == "latest":
            path = anchor.path or anchor.name
            return First(ArrayAgg(value, order_by=(F(path).desc(), F("pk").desc()), **extra))
        raise ValueError(func)  # pragma: no cover

    # --- conditions ------------------------------------------------------------------------------

    def condition(self, node, source: registry.Source, ctx: Ctx, negated: bool = False) -> Q:
        if isinstance(node, ast.Or):
            q = Q()
            for item in node.items:
                q |= self.condition(item, source, ctx, negated)
            return q
        if isinstance(node, ast.And):
            q = Q()
            for item in node.items:
                q &= self.condition(item, source, ctx, negated)
            return q
        if isinstance(node, ast.Not):
            return ~self.condition(node.item, source, ctx, not negated)
        if isinstance(node, ast.Has):
            return Q(self.has(node, source, ctx))
        fld = source.fields[node.field.key]
        if isinstance(node, ast.Flag):
            return fld.is_true(ctx)
        pieces = fld.pieces(ctx) if fld.pieces is not None else None
        if pieces and ctx.piece is not None and ctx.piece[0] == fld.name:
            # the aggregate reads only the rows of one piece (its own conjunct): the value is that piece's
            return self.compare(node, fld, pieces[ctx.piece[1]][1], ctx, negated)
        if pieces:
            # (C1 AND test(v1)) OR (C2 AND test(v2)) …: the same rows as test(CASE WHEN C1 THEN v1 … END) —
            # each Ci is two-valued and exactly one holds, also under a negation — but a piece that is a column
            # can use an index, and the others are computed only for their own rows.
            q = Q()
            for piece_q, piece_value in pieces:
                q |= piece_q & self.compare(node, fld, piece_value, ctx, negated)
            return q
        return self.compare(node, fld, fld.compared(ctx), ctx, negated)

    def compare(self, node, fld: registry.Field, value, ctx: Ctx, negated: bool) -> Q:
        """An Empty / Compare / InList test of one field's ``value``."""
        if isinstance(node, ast.Empty):
            q = Q(IsNull(value, True))
            if fld.type in (TEXT, CHOICE):
                q |= Q(Exact(value, ""))
            return ~q if node.negate else q
        if fld.type == BOOL:  # field = true / false
            wanted = node.literal.value if node.op == "=" else not node.literal.value
            return fld.is_true(ctx) if wanted else ~fld.is_true(ctx)
        if isinstance(node, ast.Compare):
            if node.op == "!=":
                return ~self.matches(fld, value, [node.literal], "=", negated=True)
            return self.matches(fld, value, [node.literal], node.op, negated)
        if node.negate:
            return ~self.matches(fld, value, node.literals, "in", negated=True)
        return self.matches(fld, value, node.literals, "in", negated)

    def matches(self, fld: registry.Field, value, literals, op: str, negated: bool) -> Q:
        """The rows whose field compares true; under a negation the test also requires a value, so that
        ``not (…)`` keeps the rows without one."""
        values = [lit.parsed for lit in literals]
        if fld.type == REF:
            model_label, name_field = fld.ref
            from django.apps import apps

            names = apps.get_model(model_label)._default_manager.filter(**{f"{name_field}__in": values})
            q = Q(In(value, names.values("pk")))
        elif op == "in":
            q = Q(In(value, values))
        else:
            q = Q(_LOOKUPS[op](value, values[0]))
        if negated:
            q &= Q(IsNull(value, False))
        return q

    def has(self, node: ast.Has, source: registry.Source, ctx: Ctx):
        relation = source.relations[node.relation.key]
        target = registry.get(relation.target)
        rows = target.model._default_manager.filter(**{relation.link: OuterRef("pk")})
        at = ctx.at
        if node.window is not None:
            q, window_at = window_q(target, target.fields[target.anchor], node.window.kind, node.window.days,
                                    self.scope)
            rows = rows.filter(q)
            at = window_at or at
        else:
            rows = rows.filter(window_q(target, target.fields[target.anchor], "all", None, self.scope)[0])
        if node.where is not None:
            rows = rows.filter(self.condition(node.where, target, Ctx(at=at, rate_day=ctx.rate_day,
                                                                      contact_rules=ctx.contact_rules)))
        return Exists(rows.order_by())


class Keyed(Subquery):
    """``{key: value}`` of a query selecting (key, value) rows, as one jsonb object."""

    template = "(SELECT jsonb_object_agg(keyed.k, keyed.v) FROM (%(subquery)s) keyed(k, v))"
    output_field = JSONField()


class MemberValue(Func):
    """The entry of ``keyed`` for ``member`` (JSON null: no value); ``empty`` when there is no entry."""

    output_field = DecimalField()

    def __init__(self, keyed, member, empty):
        super().__init__(keyed, member, empty, output_field=_DECIMAL)

    def as_sql(self, compiler, connection, **extra_context):
        (keyed, keyed_params), (member, member_params), (empty, empty_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        sql = f"(COALESCE({keyed} -> ({member})::text, to_jsonb(({empty})::numeric)) #>> '{{}}')::numeric"
        return sql, (*keyed_params, *member_params, *empty_params)


class First(Func):
    """The first element of an array aggregate: ``latest``."""

    template = "(%(expressions)s)[1]"
    output_field = DecimalField()


def _values(node):
    """The values a positive equality / in-list condition allows, with its field; None for anything else."""
    if isinstance(node, ast.Compare) and node.op == "=":
        return node.field.key, {repr(node.literal.value)}
    if isinstance(node, ast.InList) and not node.negate:
        return node.field.key, {repr(literal.value) for literal in node.literals}
    return None


def _implies(arm, other) -> bool:
    """Whether every row meeting the conjuncts ``arm`` meets ``other`` (a simple, safe check)."""
    for key, _q, node in other:
        if any(key == mine for mine, _q2, _n in arm):
            continue
        wanted = _values(node) if node is not None else None
        if wanted is None:
            return False
        if not any(
            mine_node is not None and _values(mine_node) is not None and mine_key[1] == key[1]
            and _values(mine_node)[0] == wanted[0] and _values(mine_node)[1] <= wanted[1]
            for mine_key, _q2, mine_node in arm
        ):
            return False
    return True


def _and(conditions) -> Q:
    result = Q()
    for condition in conditions:
        result &= condition
    return result


def _number(number: Decimal):
    return Numeric(Value(number, output_field=_DECIMAL))


def _non_empty(fld: registry.Field, value) -> Q:
    q = Q(IsNull(value, False))
    if fld.type in (TEXT, CHOICE):
        q &= ~Q(Exact(value, ""))
    return q


def _arith(left, op: str, right):
    if op == "/":
        right = NullIf(right, Value(Decimal(0), output_field=_DECIMAL))
    if op == "+":
        combined = left + right
    elif op == "-":
        combined = left - right
    elif op == "*":
        combined = left * right
    else:
        combined = left / right
    return ExpressionWrapper(combined, output_field=_DECIMAL)


# --- running ---------------------------------------------------------------------------------------


class _Guard:
    """Run one statement with ``SET LOCAL statement_timeout`` and, outside a transaction, read-only.

    The settings are made on the raw connection, so the statement itself is the only query Django logs.
    """

    def __init__(self, using: str = DEFAULT_DB_ALIAS):
        self.connection = connections[using]
        self.timeout = int(getattr(settings, "KPI_STATEMENT_TIMEOUT_MS", 30000))
        self.atomic = None
        self.previous = None

    def __enter__(self):
        conn = self.connection
        if not conn.in_atomic_block:
            self.atomic = transaction.atomic(using=conn.alias)
            self.atomic.__enter__()
        conn.ensure_connection()
        with conn.connection.cursor() as raw:
            if self.atomic is not None:
                raw.execute("SET TRANSACTION READ ONLY")
            else:
                raw.execute("SHOW statement_timeout")
                self.previous = raw.fetchone()[0]
            raw.execute(f"SET LOCAL statement_timeout = {self.timeout:d}")
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.atomic is not None:
            return self.atomic.__exit__(exc_type, exc, tb)
        if exc_type is None and self.previous is not None:
            try:
                with self.connection.connection.cursor() as raw:
                    raw.execute("SELECT set_config('statement_timeout', %s, true)", [self.previous])
            except DatabaseError:  # pragma: no cover
                pass
        return False


def _run(fetch):
    try:
        with _Guard():
            return fetch()
    except DatabaseError as exc:
        if "statement timeout" in str(exc) or "canceling statement" in str(exc):
            raise FormulaTimeout(
                _("The KPI took too long to compute (more than %(s)s s).")
                % {"s": int(getattr(settings, "KPI_STATEMENT_TIMEOUT_MS", 30000)) // 1000}
            ) from exc
        raise


def _as_decimal(value) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(value)


def scalar(expression) -> Decimal | None:
    """``SELECT <expression>`` — one statement, no FROM."""
    from kpis.models import Kpi

    def fetch():
        connection = connections[DEFAULT_DB_ALIAS]
        query = Query(Kpi)
        compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
        sql, params = compiler.compile(expression.resolve_expression(query))
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + sql, params)
            return _as_decimal(cursor.fetchone()[0])

    return _run(fetch)


# --- the public objects ----------------------------------------------------------------------------


@dataclass
class Leaf:
    """One aggregate of a compiled formula, for drill-down: the rows it counts and its own value."""

    node: ast.Agg
    compiled: "Compiled" = field(repr=False)

    @property
    def text(self) -> str:
        return self.node.text

    @property
    def source(self) -> str:
        return self.node.source.key

    @property
    def model(self):
        return registry.get(self.source).model

    @property
    def label(self) -> str:
        return " ".join(self.node.text.split())

    def records(self, period, dimension=None, *, now=None):
        """The rows this aggregate reads for the period (a queryset of ``self.model``), for drill-down."""
        builder = Builder(self.compiled, self.compiled.scope(period, dimension, now))
        condition, _value, _anchor = builder.aggregate_parts(self.node)
        return builder.source_rows(registry.get(self.source), condition)

    def value(self, period, dimension=None, *, now=None) -> Decimal | None:
        builder = Builder(self.compiled, self.compiled.scope(period, dimension, now))
        return scalar(builder.build(self.node))


class Compiled:
    def __init__(self, text: str, tree, resolver: Resolver):
        self.text = text
        self.tree = tree
        self.references = resolver.references
        self.snapshot_references = resolver.snapshot_references  # through snapshot('…')
        self.inlined_references = resolver.inlined_references  # through kpi('…'), at any depth
        self.contact_rules = resolver.contact_rules
        allowed = set(DIMENSION_ORDER)
        for kinds in resolver.dimension_sets:
            allowed &= kinds
        self.dimensions = [kind for kind in DIMENSION_ORDER if kind in allowed]
        self.leaves = [Leaf(node, self) for node in resolver.aggregates]
        self.uses_money = any(
            node.field is not None and node.source.key == "deals" and node.field.key in ("amount", "weighted_amount")
            for node in resolver.aggregates
        )

    def __repr__(self):
        return f"<Compiled {self.text[:60]!r}>"

    def check_kind(self, kind: str):
        if kind not in self.dimensions:
            from kpis.models import DimensionKind

            label = DimensionKind(kind).label.lower() if kind in DimensionKind.values else str(kind)[:20]
            raise FormulaError(_("This KPI cannot be broken down by %(kind)s.") % {"kind": label})

    def scope(self, period, dimension=None, now=None) -> Scope:
        now = now or timezone.now()
        if dimension is None:
            return Scope(period, now)
        self.check_kind(dimension.kind)
        return Scope(period, now, dimension.kind, dimension.id)

    def expression(self, period, dimension=None, now=None):
        """The ORM expression of the formula for a period (and dimension), e.g. to annotate a queryset."""
        return Builder(self, self.scope(period, dimension, now)).build(self.tree)

    def evaluate(self, period, dimension=None, *, now=None) -> Decimal | None:
        """The value for a period (company-wide, or one dimension value): ONE SQL statement.

        ``now`` (default: the current time) decides "as of" while the period is running."""
        return scalar(self.expression(period, dimension, now))

    def evaluate_members(self, period, kind: str, *, now=None) -> dict:
        """``{member id: value}`` for every member of a dimension kind (``kpis.dimensions.members``): ONE
        statement, the members' rows annotated with the formula; each source is read once for all members
        (grouped by the source's dimension path), not once per member."""
        from kpis import dimensions

        self.check_kind(kind)
        scope = Scope(period, now or timezone.now(), kind, OuterRef("pk"), members=True)
        expression = Builder(self, scope).build(self.tree)
        rows = dimensions.members(kind).annotate(kpi_value=expression).values_list("pk", "kpi_value")
        return _run(lambda: {pk: _as_decimal(value) for pk, value in rows})

    def unconverted_currencies(self, period) -> list[str]:
        """Currencies of deals that have no exchange rate for the period (their amounts are left out)."""
        if not self.uses_money:
            return []
        from kpis.models import ExchangeRate
        from pipeline.models import Deal

        rated = ExchangeRate.objects.filter(valid_from__lte=period.last_day).values("currency")
        return sorted(
            Deal.objects.exclude(currency=settings.CRM_CURRENCY).exclude(currency__in=rated)
            .filter(amount__isnull=False)
            .order_by().values_list("currency", flat=True).distinct()
        )


def compile_formula(text: str, slug: str | None = None) -> Compiled:
    """Parse and check ``text``; raise FormulaError (with a position) when it is not a valid formula."""
    tree = parse(text)
    if _tree_depth(tree) > MAX_TREE_DEPTH:
        raise FormulaError(_("The formula is too long: split it into KPIs and use kpi('…')."), 0, len(text))
    resolver = Resolver(text, slug)
    tree = resolver.resolve(tree, (slug,) if slug else ())
    if _tree_depth(tree) > MAX_TREE_DEPTH:
        raise FormulaError(_("The formula is too long: split it into KPIs and use kpi('…')."), 0, len(text))
    return Compiled(text, tree, resolver)


__all__ = ["AGGREGATES", "Compiled", "FormulaError", "FormulaTimeout", "Leaf", "compile_formula"]
