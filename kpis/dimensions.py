"""The values a KPI can be broken down by: teams, owners, pipelines and lead sources.

A ``Dimension`` is one value (``team:3``); ``None`` stands for the whole company.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from .models import DimensionKind


@dataclass(frozen=True)
class Dimension:
    kind: str
    id: int

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def __str__(self):
        return self.key


def members(kind: str) -> QuerySet:
    """The rows a dimension kind ranges over, in display order."""
    from accounts.models import Team
    from contacts.models import LeadSource
    from pipeline.models import Pipeline

    if kind == DimensionKind.TEAM:
        return Team.objects.order_by("name", "id")
    if kind == DimensionKind.OWNER:
        user = get_user_model()
        return user.objects.filter(is_active=True, role__in=[user.Role.REP, user.Role.MANAGER]).order_by(
            "first_name", "last_name", "username", "id"
        )
    if kind == DimensionKind.PIPELINE:
        return Pipeline.objects.order_by("order", "id")
    if kind == DimensionKind.SOURCE:
        return LeadSource.objects.filter(is_active=True).order_by("order", "name", "id")
    raise ValueError(f"unknown dimension kind {kind!r}")


def label(kind: str, obj) -> str:
    return str(obj)


def parse(text: str | None) -> Dimension | None:
    """``"team:3"`` → Dimension; empty → the company (None). ValueError with a clear message otherwise."""
    text = (text or "").strip()
    if not text or text == "company":
        return None
    kind, sep, raw_id = text.partition(":")
    if not sep or kind not in DimensionKind.values or not raw_id.isdigit() or len(raw_id) > 18:
        raise ValueError(
            _("“%(value)s” is not a dimension; expected company, or one of %(kinds)s followed by “:” and an id "
              "(e.g. team:3).") % {"value": text[:40], "kinds": ", ".join(DimensionKind.values)}
        )
    dimension = Dimension(kind, int(raw_id))
    if not members(kind).filter(pk=dimension.id).exists():
        raise ValueError(_("There is no %(kind)s with id %(id)s.") % {"kind": DimensionKind(kind).label.lower(),
                                                                       "id": dimension.id})
    return dimension
