"""Who belongs where: the team ids a user may see and edit. Every visibility selector starts here."""

from django.db.models import Q

from .models import Team, User


def visible_team_ids(user: User) -> list[int] | None:
    """Teams whose records the user sees; ``None`` means every record."""
    if user.sees_everything:
        return None
    ids = set(Team.objects.filter(manager=user).values_list("id", flat=True)) if user.is_manager else set()
    if user.team_id:
        ids.add(user.team_id)
    return sorted(ids)


def editable_team_ids(user: User) -> list[int] | None:
    """Teams whose records the user edits regardless of owner; ``None`` means every record.

    Reps edit only what they own, so for them this is empty.
    """
    if user.is_admin:
        return None
    if user.is_manager:
        return sorted(Team.objects.filter(manager=user).values_list("id", flat=True))
    return []


def team_scope(user: User, *, owner_field: str = "owner") -> Q | None:
    """A filter for records owned by the user or belonging to a team they see (None: no filter)."""
    team_ids = visible_team_ids(user)
    if team_ids is None:
        return None
    return Q(team_id__in=team_ids) | Q(**{f"{owner_field}_id": user.id})


def assignable_owners(user: User):
    """Users a record may be given to by this user: reps only themselves, managers their teams."""
    qs = User.objects.filter(is_active=True).exclude(role=User.Role.INTEGRATION).select_related("team")
    if user.is_admin or user.role == User.Role.INTEGRATION:
        return qs
    if user.is_manager:
        return qs.filter(Q(team__manager=user) | Q(pk=user.pk))
    return qs.filter(pk=user.pk)


def users_visible_to(user: User):
    """Users listed to this user (read-only in the API)."""
    qs = User.objects.select_related("team").order_by("username")
    team_ids = visible_team_ids(user)
    if team_ids is None:
        return qs
    return qs.filter(Q(team_id__in=team_ids) | Q(pk=user.pk) | Q(managed_teams__id__in=team_ids)).distinct()


def teams_visible_to(user: User):
    qs = Team.objects.select_related("manager").order_by("name")
    team_ids = visible_team_ids(user)
    return qs if team_ids is None else qs.filter(id__in=team_ids)
