"""The syntax tree of a formula. Every node knows where it stands in the text (``pos``/``end``, 0-based,
end exclusive); positions do not take part in equality, so two identical filters compare equal."""

from dataclasses import dataclass
from dataclasses import field as _field
from decimal import Decimal


@dataclass(kw_only=True)
class Node:
    pos: int = _field(default=0, compare=False, repr=False)
    end: int = _field(default=0, compare=False, repr=False)


@dataclass
class Name(Node):
    """A name written in the formula (source, field, relation); ``key`` is its lower-case form."""

    value: str

    @property
    def key(self) -> str:
        return self.value.lower()


# --- numbers -------------------------------------------------------------------------------------


@dataclass
class Num(Node):
    value: Decimal


@dataclass
class Neg(Node):
    operand: Node


@dataclass
class BinOp(Node):
    op: str  # + - * /
    left: Node
    right: Node


@dataclass
class Window(Node):
    kind: str  # period | previous | last | all | start | end
    days: int | None = None


@dataclass
class Agg(Node):
    func: str  # count | count_distinct | sum | avg | min | max | latest
    source: Name
    field: Name | None = None
    where: Node | None = None
    by: Name | None = None
    window: Window | None = None
    # The formula snippet (kept from the KPI it was written in when inlined through kpi()).
    text: str = _field(default="", compare=False, repr=False)


@dataclass
class KpiRef(Node):
    slug: str


@dataclass
class SnapshotRef(Node):
    slug: str
    kpi_id: int | None = _field(default=None, compare=False)


@dataclass
class Inlined(Node):
    """kpi('slug') after its formula was read: the other KPI's tree, evaluated for the same period."""

    slug: str
    expr: Node


# --- conditions ----------------------------------------------------------------------------------


@dataclass
class Lit(Node):
    kind: str  # string | number | bool
    value: object


@dataclass
class Or(Node):
    items: list


@dataclass
class And(Node):
    items: list


@dataclass
class Not(Node):
    item: Node


@dataclass
class Compare(Node):
    field: Name
    op: str  # = != < <= > >=
    literal: Lit


@dataclass
class InList(Node):
    field: Name
    literals: list
    negate: bool = False


@dataclass
class Empty(Node):
    field: Name
    negate: bool = False


@dataclass
class Flag(Node):
    """A yes/no field used as a condition: ``complete``, ``archived``, ``done``."""

    field: Name


@dataclass
class Has(Node):
    relation: Name
    where: Node | None = None
    window: Window | None = None


def walk(node):
    """Every node of the tree, depth first (iterative: deep trees do not hit the recursion limit)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        yield current
        if isinstance(current, BinOp):
            stack += [current.right, current.left]
        elif isinstance(current, Neg):
            stack.append(current.operand)
        elif isinstance(current, Inlined):
            stack.append(current.expr)
        elif isinstance(current, Agg):
            stack.append(current.where)
        elif isinstance(current, Or | And):
            stack += list(reversed(current.items))
        elif isinstance(current, Not):
            stack.append(current.item)
        elif isinstance(current, Has):
            stack.append(current.where)
