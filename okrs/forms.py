"""Browser forms that change OKRs: cycles (and their close with score overrides), objectives, key results,
check-ins (and notes on automatic ones), initiatives and loading a template.

The forms only collect and type-check values; the rules (who may edit, warnings, history reasons, locking)
live in ``okrs.services``. A ValidationError raised by a service is put back next to the field it names.
"""

from django import forms
from django.db.models import Q
from django.forms.models import ModelChoiceIterator
from django.utils.translation import gettext_lazy as _

from accounts.models import Team, User
from accounts.selectors import assignable_owners, editable_team_ids, teams_visible_to
from contacts.forms import DATE_INPUT, OwnerChoiceField, ServiceErrorsMixin
from kpis import dimensions as dims
from kpis.models import DimensionKind, Kpi
from pipeline.forms import AmountField

from . import selectors
from .models import CheckIn, Cycle, Initiative, KeyResult, Objective
from .templates_data import TEMPLATE_LIST

TEXT_MAX = 5000
# How many members of each dimension kind the KPI breakdown picker lists.
DIMENSION_OPTIONS = 500


def number_field(label, *, required=False, max_digits=20, decimal_places=4, **kwargs):
    """A number typed as ``12.5``, ``12,5`` or ``1.234,5`` (Turkish) — the service checks the range."""
    return AmountField(label=label, required=required, max_digits=max_digits, decimal_places=decimal_places,
                       widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}), **kwargs)


class ServiceForm(ServiceErrorsMixin, forms.Form):
    """Service errors on fields the form does not have go to the top of the form."""

    # service field name → form field name
    error_fields: dict[str, str] = {}

    def add_service_errors(self, exc) -> None:
        if hasattr(exc, "error_dict"):
            for key, messages in exc.message_dict.items():
                name = self.error_fields.get(key, key)
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
        else:
            for message in exc.messages:
                self.add_error(None, message)


# --- cycles --------------------------------------------------------------------------------------


class CycleForm(ServiceForm):
    name = forms.CharField(label=_("Name"), max_length=100, required=False,
                           help_text=_("Left empty: the quarter's name, such as “Q1 2026”."))
    start_date = forms.DateField(label=_("First day"), widget=DATE_INPUT, required=False,
                                 help_text=_("Left empty: the first day of this quarter."))
    end_date = forms.DateField(label=_("Last day"), widget=DATE_INPUT, required=False,
                               help_text=_("Left empty: the end of the quarter that starts on the first day."))
    on_track_threshold = number_field(_("On track from (pace)"), required=True, max_digits=4, decimal_places=2)
    at_risk_threshold = number_field(_("At risk from (pace)"), required=True, max_digits=4, decimal_places=2)
    grace_days = forms.IntegerField(label=_("Days without a status"), min_value=0, max_value=90,
                                    help_text=_("No on-track/at-risk status is computed in the first days."))

    def __init__(self, *args, instance: Cycle | None = None, **kwargs):
        self.instance = instance
        if instance is not None and not kwargs.get("initial"):
            kwargs["initial"] = {name: getattr(instance, name) for name in self.base_fields}
        elif instance is None:
            kwargs.setdefault("initial", {"on_track_threshold": "0.95", "at_risk_threshold": "0.75",
                                          "grace_days": 7})
        super().__init__(*args, **kwargs)
        if instance is not None:
            for name in ("name", "start_date", "end_date"):
                self.fields[name].required = True
                self.fields[name].help_text = ""

    def to_data(self) -> dict:
        data = dict(self.cleaned_data)
        if self.instance is None:
            data = {k: v for k, v in data.items() if v not in (None, "")}
        return data


class CycleCloseForm(ServiceForm):
    """One score and one comment per key result; a score other than the computed one needs a comment."""

    def __init__(self, *args, states, **kwargs):
        super().__init__(*args, **kwargs)
        self.states = states
        for state in states:
            pk = state.key_result.pk
            self.fields[f"score_{pk}"] = number_field(_("Score"), required=True, max_digits=3, decimal_places=1,
                                                       initial=state.score)
            self.fields[f"score_{pk}"].widget.attrs.update({"size": 4})
            self.fields[f"comment_{pk}"] = forms.CharField(label=_("Comment"), max_length=TEXT_MAX, required=False)

    def rows(self):
        for state in self.states:
            pk = state.key_result.pk
            yield state, self[f"score_{pk}"], self[f"comment_{pk}"]

    def overrides(self) -> dict:
        """The key results whose score or comment differs from the proposal (the service checks the rest)."""
        result = {}
        for state in self.states:
            pk = state.key_result.pk
            score, comment = self.cleaned_data.get(f"score_{pk}"), (self.cleaned_data.get(f"comment_{pk}") or "")
            if score != state.score or comment.strip():
                result[pk] = {"score": score, "comment": comment}
        return result

    def add_service_errors(self, exc) -> None:
        if not hasattr(exc, "error_dict"):
            return super().add_service_errors(exc)
        for key, messages in exc.message_dict.items():
            parts = key.split(".")
            name = None
            if len(parts) == 3 and parts[0] == "overrides":
                name = f"{'score' if parts[2] == 'score' else 'comment'}_{parts[1]}"
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


# --- objectives ----------------------------------------------------------------------------------


class ObjectiveChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.title} · {obj.get_level_display()}" + (f" · {obj.team}" if obj.team_id else "")


class ObjectiveForm(ServiceForm):
    title = forms.CharField(label=_("Title"), max_length=200,
                            help_text=_("Say in words what you want to achieve; numbers go in key results."))
    description = forms.CharField(label=_("Description"), max_length=TEXT_MAX, required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    level = forms.ChoiceField(label=_("Level"), choices=Objective.Level.choices)
    team = forms.ModelChoiceField(label=_("Team"), queryset=Team.objects.none(), required=False,
                                  empty_label=_("No team"),
                                  error_messages={"invalid_choice": _("Unknown team.")},
                                  help_text=_("The team of a team objective; an individual objective takes its "
                                              "owner's team."))
    owner = OwnerChoiceField(label=_("Owner"), queryset=User.objects.none(),
                             error_messages={"invalid_choice": _("Unknown owner, or one you cannot give objectives "
                                                                 "to.")})
    parent = ObjectiveChoiceField(label=_("Aligned to"), queryset=Objective.objects.none(), required=False,
                                  empty_label=_("Nothing (a top objective)"),
                                  error_messages={"invalid_choice": _("Unknown objective, or one of another "
                                                                      "cycle.")})

    def __init__(self, *args, user: User, cycle: Cycle, instance: Objective | None = None, **kwargs):
        self.user, self.cycle, self.instance = user, cycle, instance
        if instance is not None:
            kwargs["initial"] = {"title": instance.title, "description": instance.description,
                                 "level": instance.level, "team": instance.team_id, "owner": instance.owner_id,
                                 "parent": instance.parent_id}
        super().__init__(*args, **kwargs)
        owners = assignable_owners(user)
        if instance is not None:
            owners = owners | User.objects.filter(pk=instance.owner_id)
        self.fields["owner"].queryset = owners.distinct().order_by("first_name", "last_name", "username")
        parents = selectors.objectives_visible_to(user).filter(cycle=cycle, archived_at__isnull=True)
        if instance is not None:
            parents = parents.exclude(pk=instance.pk)
        self.fields["parent"].queryset = parents.select_related("team").order_by("level", "order", "id")
        levels = self.levels_for(user, instance)
        self.fields["level"].choices = [c for c in Objective.Level.choices if c[0] in levels]
        if Objective.Level.TEAM in levels:
            self.fields["team"].queryset = self.teams_for(user, instance)
        else:
            del self.fields["team"]

    @staticmethod
    def levels_for(user: User, instance: Objective | None = None) -> set[str]:
        """The levels the user may set (the services' rule, so the form never offers what the save refuses):
        company objectives admins, team objectives the team's manager and admins, individual ones everyone.
        An objective being edited keeps its own level on offer."""
        levels = {Objective.Level.INDIVIDUAL}
        editable = editable_team_ids(user)
        if editable is None:
            levels |= {Objective.Level.COMPANY, Objective.Level.TEAM}
        elif editable:
            levels.add(Objective.Level.TEAM)
        if instance is not None:
            levels.add(instance.level)
        return levels

    @staticmethod
    def teams_for(user: User, instance: Objective | None = None):
        """The teams a team objective may be set for: every team for admins, a manager's own teams (and the
        objective's current team when editing)."""
        editable = editable_team_ids(user)
        if editable is None:
            return teams_visible_to(user)
        ids = list(editable) + ([instance.team_id] if instance is not None and instance.team_id else [])
        return Team.objects.filter(id__in=ids).order_by("name")

    def to_data(self) -> dict:
        data = dict(self.cleaned_data)
        if data["level"] != Objective.Level.TEAM:
            data.pop("team", None)
        return data


# --- key results ---------------------------------------------------------------------------------


def dimension_groups():
    """The breakdown picker's options: per kind, its members as ``kind:id`` (the whole company first)."""
    groups = []
    for kind in DimensionKind:
        options = [(f"{kind.value}:{row.pk}", str(row)) for row in dims.members(kind.value)[:DIMENSION_OPTIONS]]
        if options:
            groups.append((str(kind.label), options))
    return groups


class _ByShownName(ModelChoiceIterator):
    """The KPIs in the order of the names the reader sees (a built-in's translated name)."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in sorted(self.queryset, key=lambda row: self.field.label_from_instance(row).casefold()):
            yield self.choice(obj)


class KpiChoiceField(forms.ModelChoiceField):
    iterator = _ByShownName

    def label_from_instance(self, obj):
        return obj.shown_name


class KeyResultForm(ServiceForm):
    error_fields = {"dimension_kind": "dimension", "dimension_id": "dimension", "cycle": "__all__"}

    title = forms.CharField(label=_("Title"), max_length=300)
    kind = forms.ChoiceField(label=_("Kind"), choices=KeyResult.Kind.choices)
    start_value = number_field(_("Start value"), help_text=_("Where you start from (increase or decrease)."))
    target_value = number_field(_("Target value"), help_text=_("The target, or the threshold to keep."))
    unit = forms.ChoiceField(label=_("Unit"), choices=KeyResult.Unit.choices)
    due_date = forms.DateField(label=_("Due date"), widget=DATE_INPUT, required=False,
                               help_text=_("Left empty: the cycle's last day."))
    weight = number_field(_("Weight"), required=True, max_digits=6, decimal_places=2)
    owner = OwnerChoiceField(label=_("Owner"), queryset=User.objects.none(),
                             error_messages={"invalid_choice": _("Unknown owner, or one you cannot give key results "
                                                                 "to.")})
    kpi = KpiChoiceField(label=_("Measured by KPI"), queryset=Kpi.objects.none(), required=False,
                         empty_label=_("No KPI: checked in by hand"),
                         error_messages={"invalid_choice": _("Unknown or inactive KPI.")})
    dimension = forms.ChoiceField(label=_("KPI breakdown"), required=False,
                                  help_text=_("Whose value of the KPI measures this key result."))
    reason = forms.CharField(label=_("Why"), max_length=TEXT_MAX, required=False,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("Kept in the history. Needed once the cycle is active when the start, "
                                         "target, weight or due date changes."))

    def __init__(self, *args, user: User, objective: Objective, instance: KeyResult | None = None, **kwargs):
        self.user, self.objective, self.instance = user, objective, instance
        cycle = objective.cycle
        if instance is not None:
            kwargs["initial"] = {
                "title": instance.title, "kind": instance.kind, "start_value": instance.start_value,
                "target_value": instance.target_value, "unit": instance.unit, "due_date": instance.due_date,
                "weight": instance.weight, "owner": instance.owner_id, "kpi": instance.kpi_id,
                "dimension": f"{instance.dimension_kind}:{instance.dimension_id}" if instance.dimension_kind else "",
            }
        else:
            kwargs.setdefault("initial", {"due_date": cycle.end_date, "weight": 1, "owner": objective.owner_id})
        super().__init__(*args, **kwargs)
        owners = assignable_owners(user) | User.objects.filter(pk=objective.owner_id)
        if instance is not None:
            owners = owners | User.objects.filter(pk=instance.owner_id)
        self.fields["owner"].queryset = owners.distinct().order_by("first_name", "last_name", "username")
        kpis = Kpi.objects.filter(is_active=True)
        if instance is not None and instance.kpi_id:
            kpis = Kpi.objects.filter(Q(is_active=True) | Q(pk=instance.kpi_id))
        self.fields["kpi"].queryset = kpis.order_by("name")
        self.fields["dimension"].choices = [("", _("Whole company"))] + dimension_groups()
        if instance is None:
            del self.fields["reason"]

    def clean_dimension(self):
        value = self.cleaned_data.get("dimension") or ""
        if not value:
            return ("", 0)
        kind, _sep, raw = value.partition(":")
        return (kind, int(raw))

    def to_data(self) -> dict:
        data = {name: self.cleaned_data.get(name) for name in
                ("title", "kind", "start_value", "target_value", "unit", "due_date", "weight", "owner", "kpi")}
        data["dimension_kind"], data["dimension_id"] = self.cleaned_data.get("dimension") or ("", 0)
        if data["kpi"] is not None:
            # A key result measured by a KPI is in the KPI's unit: the service sets it (the unit picker always
            # sends a value, its first choice by default, which the service would refuse as a conflict).
            data.pop("unit")
        if self.instance is None and data["due_date"] is None:
            data.pop("due_date")
        return data


# --- check-ins -----------------------------------------------------------------------------------


class CheckInForm(ServiceForm):
    error_fields = {"key_result": "__all__"}

    value = number_field(_("Current value"))
    done = forms.TypedChoiceField(label=_("Done?"), required=False, coerce=lambda v: v == "yes", empty_value=None,
                                  choices=[("", "—"), ("yes", _("Done")), ("no", _("Not yet"))])
    confidence = forms.IntegerField(label=_("Confidence (0–10)"), min_value=0, max_value=10, required=False,
                                    widget=forms.NumberInput(attrs={"min": 0, "max": 10, "step": 1}))
    note = forms.CharField(label=_("Note"), max_length=TEXT_MAX, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))
    blockers = forms.CharField(label=_("Blockers"), max_length=TEXT_MAX, required=False,
                               widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, key_result: KeyResult, **kwargs):
        super().__init__(*args, auto_id="id_checkin_%s", **kwargs)
        self.key_result = key_result
        if key_result.kind == KeyResult.Kind.MILESTONE:
            # The quick form of "my key results" posts a milestone as value 1 (done) or 0 (not yet).
            self.fields["value"].widget = forms.HiddenInput()
        else:
            del self.fields["done"]
            if key_result.kpi_id is not None:
                del self.fields["value"]

    def to_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        if "done" in data and data["done"] is None:
            data.pop("done")
        return data


class AnnotateForm(ServiceForm):
    confidence = forms.IntegerField(label=_("Confidence (0–10)"), min_value=0, max_value=10, required=False,
                                    widget=forms.NumberInput(attrs={"min": 0, "max": 10, "step": 1}))
    note = forms.CharField(label=_("Note"), max_length=TEXT_MAX, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))
    blockers = forms.CharField(label=_("Blockers"), max_length=TEXT_MAX, required=False,
                               widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, check_in: CheckIn | None = None, **kwargs):
        if check_in is not None and not args:
            kwargs.setdefault("initial", {"confidence": check_in.confidence, "note": check_in.note,
                                          "blockers": check_in.blockers})
        prefix = f"a{check_in.pk}" if check_in is not None else None
        super().__init__(*args, prefix=prefix, **kwargs)


# --- initiatives ---------------------------------------------------------------------------------


class InitiativeForm(ServiceForm):
    error_fields = {"cycle": "__all__"}

    title = forms.CharField(label=_("Title"), max_length=300)
    owner = OwnerChoiceField(label=_("Owner"), queryset=User.objects.none(),
                             error_messages={"invalid_choice": _("Unknown owner, or one you cannot give initiatives "
                                                                 "to.")})
    status = forms.ChoiceField(label=_("Status"), choices=Initiative.Status.choices)
    due_date = forms.DateField(label=_("Due date"), widget=DATE_INPUT, required=False)

    def __init__(self, *args, user: User, instance: Initiative | None = None, **kwargs):
        self.instance = instance
        if instance is not None:
            kwargs["initial"] = {"title": instance.title, "owner": instance.owner_id, "status": instance.status,
                                 "due_date": instance.due_date}
        else:
            kwargs.setdefault("initial", {"owner": user.pk})
        super().__init__(*args, **kwargs)
        owners = assignable_owners(user) | User.objects.filter(pk=user.pk)
        if instance is not None:
            owners = owners | User.objects.filter(pk=instance.owner_id)
        self.fields["owner"].queryset = owners.distinct().order_by("first_name", "last_name", "username")

    def to_data(self) -> dict:
        return dict(self.cleaned_data)


# --- templates -----------------------------------------------------------------------------------


class CycleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name} · {obj.get_status_display()}"


class TemplateLoadForm(ServiceForm):
    template = forms.ChoiceField(label=_("Template"), widget=forms.RadioSelect)
    cycle = CycleChoiceField(label=_("Cycle"), queryset=Cycle.objects.none(),
                             error_messages={"invalid_choice": _("Unknown cycle, or one that is closed.")})
    team = forms.ModelChoiceField(label=_("Team"), queryset=Team.objects.none(),
                                  error_messages={"invalid_choice": _("Unknown team, or one you do not manage.")})

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [(t.key, t.name) for t in TEMPLATE_LIST]
        self.templates = TEMPLATE_LIST
        self.fields["cycle"].queryset = Cycle.objects.exclude(status=Cycle.Status.CLOSED).order_by("-start_date",
                                                                                                   "-id")
        teams = Team.objects.select_related("manager").order_by("name")
        editable = editable_team_ids(user)
        self.fields["team"].queryset = teams if editable is None else teams.filter(pk__in=editable)
