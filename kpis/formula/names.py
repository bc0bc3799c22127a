"""Names a formula compares by (``stage = 'Teklif'``, ``owner = 'bob'``, ``lead_source = 'Web'``…) must exist.

Checked when a formula is SAVED or validated (``kpis.services.kpi_validate``: the editor, its preview and the
API's validate endpoint), not by ``compile_formula``: a stage renamed later must not break a stored KPI (it then
counts nothing for the old name). Only the formula's own conditions are checked, not those of the KPIs it
inlines through kpi('…'), which were checked when they were saved.
"""

import difflib

from django.apps import apps
from django.utils.translation import gettext_lazy as _

from crm_okr.text import fold

from . import ast, registry
from .errors import FormulaError

# The related model a REF field names rows by → (the message without a suggestion, the message with one).
MESSAGES = {
    "pipeline.Stage": (_("No stage is named “%(value)s”."),
                       _("No stage is named “%(value)s” — did you mean “%(hint)s”?")),
    "pipeline.Pipeline": (_("No pipeline is named “%(value)s”."),
                          _("No pipeline is named “%(value)s” — did you mean “%(hint)s”?")),
    "pipeline.LostReason": (_("No lost reason is named “%(value)s”."),
                            _("No lost reason is named “%(value)s” — did you mean “%(hint)s”?")),
    "contacts.LeadSource": (_("No lead source is named “%(value)s”."),
                            _("No lead source is named “%(value)s” — did you mean “%(hint)s”?")),
    "contacts.Company": (_("No company is named “%(value)s”."),
                         _("No company is named “%(value)s” — did you mean “%(hint)s”?")),
    "accounts.Team": (_("No team is named “%(value)s”."),
                      _("No team is named “%(value)s” — did you mean “%(hint)s”?")),
    "accounts.User": (_("No user has the username “%(value)s”."),
                      _("No user has the username “%(value)s” — did you mean “%(hint)s”?")),
}
# Tables that may be large: suggestions come from the names sharing the first letters, not from every row.
LARGE = {"contacts.Company"}
MAX_CANDIDATES = 2000


def _lookups(tree):
    """``(ref, literal)`` of every name comparison in the formula's own aggregates (``has`` included)."""
    found = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp):
            stack += [node.right, node.left]
        elif isinstance(node, ast.Neg):
            stack.append(node.operand)
        elif isinstance(node, ast.Agg) and node.where is not None:
            found += _conditions(node.where, registry.get(node.source.key))
    return found


def _conditions(where, source) -> list:
    found = []
    stack = [(where, source)]
    while stack:
        node, src = stack.pop()
        if isinstance(node, ast.Or | ast.And):
            stack += [(item, src) for item in reversed(node.items)]
        elif isinstance(node, ast.Not):
            stack.append((node.item, src))
        elif isinstance(node, ast.Has):
            if node.where is not None:
                stack.append((node.where, registry.get(src.relations[node.relation.key].target)))
        elif isinstance(node, ast.Compare | ast.InList):
            fld = src.fields.get(node.field.key)
            if fld is None or fld.type != registry.REF or fld.ref is None or fld.ref[0] not in MESSAGES:
                continue  # metric keys are checked by the compiler itself
            literals = [node.literal] if isinstance(node, ast.Compare) else node.literals
            found += [(fld.ref, lit) for lit in literals if lit.kind == "string"]
    return found


def _suggest(value: str, names: list[str]) -> str | None:
    folded = {}
    for name in names:
        folded.setdefault(fold(name), name)
    if fold(value) in folded:  # "teklif", "TEKLİF", "Teklıf" → "Teklif"
        return folded[fold(value)]
    matches = difflib.get_close_matches(fold(value), list(folded), n=1, cutoff=0.6)
    return folded[matches[0]] if matches else None


def check_names(compiled) -> None:
    """Raise FormulaError at the first (leftmost) name that no row has, with a did-you-mean from the existing
    names (case- and accent-insensitive, Turkish-aware). One query per related table the formula names rows of."""
    wanted: dict[tuple, list] = {}
    for ref, literal in _lookups(compiled.tree):
        wanted.setdefault(ref, []).append(literal)
    unknown = []
    for (label, name_field), literals in wanted.items():
        manager = apps.get_model(label)._default_manager
        values = {literal.value for literal in literals}
        existing = set(manager.filter(**{f"{name_field}__in": values}).values_list(name_field, flat=True))
        unknown += [(label, name_field, literal) for literal in literals if literal.value not in existing]
    if not unknown:
        return
    label, name_field, literal = min(unknown, key=lambda item: item[2].pos)
    manager = apps.get_model(label)._default_manager
    names = manager.order_by().values_list(name_field, flat=True)
    if label in LARGE:
        names = names.filter(**{f"{name_field}__istartswith": literal.value[:2]})
    hint = _suggest(literal.value, list(names[:MAX_CANDIDATES]))
    plain, with_hint = MESSAGES[label]
    shown = literal.value[:60]
    message = (with_hint % {"value": shown, "hint": hint}) if hint else (plain % {"value": shown})
    raise FormulaError(message, literal.pos, literal.end)
