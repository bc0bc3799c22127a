"""The KPI formula language: ``compile_formula(text)`` → a compiled formula that evaluates in one SQL statement.

    formula   := expr                                  # '#' starts a comment to end of line
    expr      := expr (+|-) expr | expr (*|/) expr | - expr | ( expr ) | NUMBER | aggregate
               | kpi('slug') | snapshot('slug')
    aggregate := AGG ( SOURCE [. FIELD] [where COND] [by FIELD] [WINDOW] )
    AGG       := count | count_distinct | sum | avg | min | max | latest
    WINDOW    := during period | during previous period | during last N days | during all time
               | at period start | at period end
    COND      := COND or COND | COND and COND | not COND | ( COND ) | FIELD OP LITERAL
               | FIELD [not] in ( LITERAL, … ) | FIELD is [not] empty | FIELD | has RELATION [where COND] [WINDOW]

See ``/work/notes/kpi_spec.md`` §1 and ``registry.py`` for the sources and fields.
"""

from .compiler import Compiled, FormulaTimeout, Leaf, compile_formula
from .errors import FormulaError

__all__ = ["Compiled", "FormulaError", "FormulaTimeout", "Leaf", "compile_formula"]
