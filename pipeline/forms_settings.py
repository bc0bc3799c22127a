"""Browser forms of the pipeline settings pages: they collect and type-check values; the rules
(unique names, a pipeline's open/won/lost stages, moving deals out of a deleted stage) live in
``pipeline.services`` and come back next to the field they name."""

from django import forms
from django.utils.translation import gettext_lazy as _

from contacts.forms import ServiceErrorsMixin

from .models import Stage


class PipelineForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)


class StageForm(ServiceErrorsMixin, forms.Form):
    """A stage's settings; ``criteria_choices`` is ``criteria.available()`` (built-in fields and deal custom fields)."""

    name = forms.CharField(label=_("Name"), max_length=100)
    kind = forms.ChoiceField(
        label=_("Kind"), choices=Stage.Kind.choices, initial=Stage.Kind.OPEN,
        help_text=_("Open stages hold deals in progress; a won or lost stage closes them."),
    )
    probability = forms.IntegerField(
        label=_("Win probability (%)"), min_value=0, max_value=100, initial=10,
        widget=forms.NumberInput(attrs={"step": 1}),
    )
    rotting_days = forms.IntegerField(
        label=_("Rotting limit (days)"), min_value=1, max_value=3650, initial=90,
        help_text=_("A deal that stays in this stage longer is stale."),
    )
    exit_criteria = forms.MultipleChoiceField(
        label=_("Exit criteria"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("Fields a deal must have filled before it may leave this stage forward."),
    )
    allow_skip = forms.BooleanField(
        label=_("Deals may skip stages"), required=False, initial=True,
        help_text=_("When off, a deal leaving this stage forward may only go to the next stage."),
    )

    def __init__(self, *args, criteria_choices: list[tuple[str, str]], instance: Stage | None = None, **kwargs):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name, "kind": instance.kind, "probability": instance.probability,
                "rotting_days": instance.rotting_days, "exit_criteria": list(instance.exit_criteria or []),
                "allow_skip": instance.allow_skip,
            }
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.fields["exit_criteria"].choices = criteria_choices

    def to_data(self) -> dict:
        return dict(self.cleaned_data)


class StageDeleteForm(ServiceErrorsMixin, forms.Form):
    """Where the deals of a stage being deleted go: another stage of the same pipeline and kind."""

    move_to = forms.ModelChoiceField(
        label=_("Move its deals to"), queryset=Stage.objects.none(), required=False, empty_label=_("Choose a stage"),
    )

    def __init__(self, *args, stage: Stage, targets, deal_count: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.stage = stage
        self.fields["move_to"].queryset = targets
        self.fields["move_to"].required = deal_count > 0
        self.fields["move_to"].error_messages["required"] = _("Choose where its deals go.")
