"""The report endpoints of the API: forecast, win/loss and the weekly pipeline review (read-only).

The same parameter forms and computations as the pages (``pipeline.reports``), so an endpoint answers
exactly the numbers its page shows. Bad or unknown query parameters are a 400 naming each one.
Amounts are decimal strings in the company currency; deals in other currencies are counted in the
``*other_currency`` fields and left out of the amounts.
"""

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ApiSchema, ErrorSerializer

from . import reports

# --- serializers (answers only) ------------------------------------------------------------------


def _money(help_text: str | Promise = "", **kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=2, help_text=help_text, **kwargs)


def _with_fields(name: str, base: type, fields: dict) -> type:
    """A serializer class with fields whose names are Python keywords (``from``)."""
    return type(name, (base,), {**fields, "__module__": __name__, "__doc__": base.__doc__})


class ForecastCellSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text=_("Open deals (in any currency)."))
    amount = _money(_("Unweighted amount of the open deals in the company currency."))
    weighted = _money(_("Σ amount × stage probability ÷ 100 of the open deals, rounded to cents."))
    other_currency = serializers.IntegerField(help_text=_("Open deals in another currency, left out of the amounts."))
    won_count = serializers.IntegerField(help_text=_("Deals won (closed in a won stage) in the month."))
    won_amount = _money(_("Amount won in the company currency."))
    won_other_currency = serializers.IntegerField(help_text=_("Won deals in another currency, left out."))

    class Meta:
        ref_name = "ForecastCell"


class ForecastMonthSerializer(ForecastCellSerializer):
    month = serializers.CharField(help_text=_("YYYY-MM"))

    class Meta:
        ref_name = "ForecastMonth"


class ForecastBucketsSerializer(serializers.Serializer):
    months = ForecastMonthSerializer(many=True, help_text=_("Open deals expected to close in the month (and not "
                                                            "overdue) next to deals won in the month."))
    overdue = ForecastCellSerializer(help_text=_("Open deals whose expected close date is before today."))
    no_date = ForecastCellSerializer(help_text=_("Open deals with no expected close date."))
    outside = ForecastCellSerializer(help_text=_("Open deals due after today but outside the months asked for."))
    total = ForecastCellSerializer(help_text=_("All open deals, and everything won in the months asked for."))


class ForecastGroupSerializer(ForecastBucketsSerializer):
    id = serializers.IntegerField(allow_null=True, help_text=_("null: deals with no owner (or no team)."))
    name = serializers.CharField()

    class Meta:
        ref_name = "ForecastGroup"


class ForecastOtherCurrencySerializer(serializers.Serializer):
    open = serializers.IntegerField()
    won = serializers.IntegerField()


class ForecastBodySerializer(ForecastBucketsSerializer):
    """The forecast: weighted open pipeline by expected close month next to what was won."""

    currency = serializers.CharField(help_text=_("The company currency of every amount."))
    today = serializers.DateField(help_text=_("Today in the company time zone (decides what is overdue)."))
    owners = ForecastGroupSerializer(many=True)
    teams = ForecastGroupSerializer(many=True)
    other_currency = ForecastOtherCurrencySerializer(help_text=_("Deals left out of the amounts."))


ForecastSerializer = _with_fields("ForecastSerializer", ForecastBodySerializer, {
    "from": serializers.CharField(help_text=_("First month, YYYY-MM.")),
    "to": serializers.CharField(help_text=_("Last month, YYYY-MM.")),
    "Meta": type("Meta", (), {"ref_name": "Forecast"}),
})


class WinLossFiguresSerializer(serializers.Serializer):
    won_count = serializers.IntegerField()
    won_amount = _money()
    won_other_currency = serializers.IntegerField()
    lost_count = serializers.IntegerField()
    lost_amount = _money()
    lost_other_currency = serializers.IntegerField()
    win_rate = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True,
                                        help_text=_("won ÷ (won + lost) × 100 by count, one decimal; null when none."))

    class Meta:
        ref_name = "WinLossFigures"


class WinLossRowSerializer(WinLossFiguresSerializer):
    id = serializers.IntegerField(allow_null=True, help_text=_("null: no lead source / no owner."))
    name = serializers.CharField()

    class Meta:
        ref_name = "WinLossRow"


class LostRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    lost_count = serializers.IntegerField()
    lost_amount = _money()
    lost_other_currency = serializers.IntegerField()

    class Meta:
        ref_name = "LostRow"


class LostStageRowSerializer(LostRowSerializer):
    id = serializers.IntegerField(allow_null=True, help_text=_("null: no stage history, or the stage was deleted."))
    pipeline = serializers.CharField()

    class Meta:
        ref_name = "LostStageRow"


class FunnelStageSerializer(serializers.Serializer):
    stage_id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField(help_text=_("open or won"))
    entered = serializers.IntegerField(help_text=_("Deals that entered the stage in the range."))
    advanced = serializers.IntegerField(allow_null=True, help_text=_(
        "Of those, deals that afterwards reached a later open stage or a won stage; null for won stages."))
    rate = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True,
                                    help_text=_("advanced ÷ entered × 100, one decimal."))
    stays = serializers.IntegerField(help_text=_("Departures from the stage in the range."))
    average_days = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True,
                                            help_text=_("Mean days in the stage over those departures."))

    class Meta:
        ref_name = "FunnelStage"


class PipelineRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()

    class Meta:
        ref_name = "PipelineRef"


class WinLossBodySerializer(serializers.Serializer):
    """Won and lost deals closed in the range, broken down; conversion and time in stage for one pipeline."""

    currency = serializers.CharField()
    total = WinLossFiguresSerializer()
    by_reason = LostRowSerializer(many=True)
    by_source = WinLossRowSerializer(many=True)
    by_owner = WinLossRowSerializer(many=True)
    by_lost_stage = LostStageRowSerializer(many=True, help_text=_("The from-stage of each lost deal's last move "
                                                                  "into a lost stage."))
    funnel_pipeline = PipelineRefSerializer(allow_null=True, help_text=_("The pipeline of `funnel`: the `pipeline` "
                                                                         "asked for, else the default one."))
    funnel = FunnelStageSerializer(many=True, help_text=_("Open stages then won stages, in order."))
    other_currency = serializers.IntegerField(help_text=_("Closed deals in another currency, left out of amounts."))


WinLossSerializer = _with_fields("WinLossSerializer", WinLossBodySerializer, {
    "from": serializers.DateField(help_text=_("First closing day (company time zone).")),
    "to": serializers.DateField(help_text=_("Last closing day, included.")),
    "Meta": type("Meta", (), {"ref_name": "WinLoss"}),
})


class ReviewMoveSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text=_("The stage change."))
    deal_id = serializers.IntegerField()
    deal_name = serializers.CharField(source="deal.name")
    amount = _money(source="deal.amount", allow_null=True)
    currency = serializers.CharField(source="deal.currency")
    owner_id = serializers.IntegerField(source="deal.owner_id", allow_null=True)
    from_stage = serializers.CharField(source="from_stage_name")
    to_stage = serializers.CharField(source="to_stage_name")
    changed_at = serializers.DateTimeField()
    actor_id = serializers.IntegerField(allow_null=True)
    actor_name = serializers.CharField(source="actor", allow_null=True)
    lost_reason = serializers.CharField(source="deal.lost_reason.name", allow_null=True,
                                        help_text=_("The deal's lost reason (lost section)."))

    class Meta:
        ref_name = "ReviewMove"


class ReviewDealSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    stage = serializers.CharField(source="stage.name")
    amount = _money(allow_null=True)
    currency = serializers.CharField()
    owner_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    stage_entered_at = serializers.DateTimeField()

    class Meta:
        ref_name = "ReviewDeal"


class ReviewStaleDealSerializer(ReviewDealSerializer):
    rots_at = serializers.DateTimeField(help_text=_("Stale since."))
    days_in_stage = serializers.IntegerField(source="in_stage.days")

    class Meta:
        ref_name = "ReviewStaleDeal"


class ReviewSectionSerializer(serializers.Serializer):
    deals = serializers.IntegerField(help_text=_("Deals in the section (a deal moved twice counts once)."))
    moves = serializers.IntegerField(allow_null=True, help_text=_("Stage changes (null for new and stale deals)."))
    amount = _money(_("Sum of the deals' amounts in the company currency."))
    other_currency = serializers.IntegerField()
    more = serializers.IntegerField(help_text=_("Rows not listed in `items` (at most 100 are)."))

    class Meta:
        ref_name = "ReviewSection"


class ReviewMoveSectionSerializer(ReviewSectionSerializer):
    items = ReviewMoveSerializer(many=True, help_text=_("Newest first."))

    class Meta:
        ref_name = "ReviewMoveSection"


class ReviewNewSectionSerializer(ReviewSectionSerializer):
    items = ReviewDealSerializer(many=True, help_text=_("Newest first."))

    class Meta:
        ref_name = "ReviewNewSection"


class ReviewStaleSectionSerializer(ReviewSectionSerializer):
    items = ReviewStaleDealSerializer(many=True, help_text=_("Longest in their stage first."))

    class Meta:
        ref_name = "ReviewStaleSection"


class ReviewSectionsSerializer(serializers.Serializer):
    forward = ReviewMoveSectionSerializer()
    backward = ReviewMoveSectionSerializer()
    won = ReviewMoveSectionSerializer()
    lost = ReviewMoveSectionSerializer()
    reopened = ReviewMoveSectionSerializer()
    new = ReviewNewSectionSerializer()
    stale = ReviewStaleSectionSerializer()

    class Meta:
        ref_name = "ReviewSections"


class PipelineReviewSerializer(serializers.Serializer):
    """What moved since a day and what is stuck now."""

    currency = serializers.CharField()
    since = serializers.DateField()
    start = serializers.DateTimeField(help_text=_("Midnight of `since` in the company time zone."))
    sections = ReviewSectionsSerializer()
    other_currency = serializers.BooleanField(help_text=_(
        "Whether some section left deals out of its sum for their currency (its `other_currency` says how many)."))

    class Meta:
        ref_name = "PipelineReview"


# --- views ---------------------------------------------------------------------------------------

FILTER_PARAMETERS = [
    OpenApiParameter("pipeline", OpenApiTypes.INT, description="Only deals of this pipeline (id)."),
    OpenApiParameter("owner", OpenApiTypes.INT, description="Only deals owned by this user (id; one you can see)."),
    OpenApiParameter("team", OpenApiTypes.INT, description="Only deals of this team (id; one you can see)."),
]
BAD_PARAMETERS = OpenApiResponse(ErrorSerializer, description=(
    "A bad, unknown or out-of-range query parameter; the errors name each one."))


class ReportView(APIView):
    """Read the query parameters with the report's form, compute, answer."""

    schema = ApiSchema()
    params_class: type[reports.ReportFilters]

    def params(self, request) -> reports.ReportFilters:
        params = self.params_class(request.query_params, user=request.user)
        known = [*params.fields]
        errors = {name[:100]: [gettext("Unknown query parameter. Known parameters: %(names)s.") % {
            "names": ", ".join(known)}] for name in list(request.query_params)[:20] if name not in {*known, "format"}}
        if not params.is_valid():
            errors.update(params.api_errors())
        if errors:
            raise serializers.ValidationError(errors)
        return params


class ForecastView(ReportView):
    params_class = reports.ForecastParams

    @extend_schema(
        tags=["reports"], summary="Forecast",
        description=(
            "Open deals you can see, weighted by their stage's probability (amount × probability ÷ 100), by "
            "expected close month, next to the deals won in each month (by the month of `closed_at` in the company "
            "time zone); for the whole, per owner and per team. Overdue open deals (expected close date before "
            "today), open deals with no date and those due outside the months asked for have their own buckets, "
            "so `total` covers every open deal. At most 24 months."),
        parameters=[
            OpenApiParameter("from", OpenApiTypes.STR, description="First month, YYYY-MM (default: this month)."),
            OpenApiParameter("to", OpenApiTypes.STR, description="Last month, YYYY-MM (default: `from` + 5 months)."),
            *FILTER_PARAMETERS,
        ],
        responses={200: ForecastSerializer, 400: BAD_PARAMETERS},
    )
    def get(self, request):
        params = self.params(request)
        data = params.cleaned_data
        report = reports.forecast(user=request.user, first_month=data["from"], last_month=data["to"],
                                  **params.filters())
        report = {**report, "from": reports.month_key(report["from"]), "to": reports.month_key(report["to"])}
        return Response(ForecastSerializer(report).data)


class WinLossView(ReportView):
    params_class = reports.WinLossParams

    @extend_schema(
        tags=["reports"], summary="Win/loss analysis",
        description=(
            "Deals you can see that were won or lost between `from` and `to` (closing days in the company time "
            "zone, both included): counts, amounts and win rate (won ÷ (won + lost)) in total, by lost reason, by "
            "lead source, by owner and by the stage deals were lost from. For one pipeline (`pipeline`, else the "
            "default one): the stage-to-stage conversion — of the deals that entered a stage in the range, the "
            "share that afterwards (up to now) reached a later open stage or a won stage — and the average days "
            "in each stage over the departures in the range. At most three years."),
        parameters=[
            OpenApiParameter("from", OpenApiTypes.STR, description=(
                "First closing day, YYYY-MM-DD, or a month YYYY-MM (its first day). Default: this quarter's first.")),
            OpenApiParameter("to", OpenApiTypes.STR, description=(
                "Last closing day, YYYY-MM-DD, or a month YYYY-MM (its last day). Default: this quarter's last.")),
            *FILTER_PARAMETERS,
        ],
        responses={200: WinLossSerializer, 400: BAD_PARAMETERS},
    )
    def get(self, request):
        params = self.params(request)
        data = params.cleaned_data
        report = reports.win_loss(user=request.user, date_from=data["from"], date_to=data["to"], **params.filters())
        return Response(WinLossSerializer(report).data)


class PipelineReviewView(ReportView):
    params_class = reports.ReviewParams

    @extend_schema(
        tags=["reports"], summary="Weekly pipeline review",
        description=(
            "From the stage history since `since` (midnight, company time zone): deals moved forward, moved "
            "backward, won, lost and reopened (one item per stage change, newest first), deals created since, and "
            "the open deals stale now (longest in their stage first). Each section counts deals and sums their "
            "amounts; `items` lists at most 100 rows, `more` says how many were left out."),
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATE, description=(
                "YYYY-MM-DD; default seven days ago; not in the future, at most a year ago.")),
            *FILTER_PARAMETERS,
        ],
        responses={200: PipelineReviewSerializer, 400: BAD_PARAMETERS},
    )
    def get(self, request):
        params = self.params(request)
        report = reports.pipeline_review(user=request.user, since=params.cleaned_data["since"], **params.filters())
        return Response(PipelineReviewSerializer(report).data)
