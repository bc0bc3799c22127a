"""The seed's sample OKR sets ("CRM için Örnek OKR Setleri") as templates a manager loads into a cycle for a
team (``okrs.services.load_template``).

Each key result is linked to the built-in KPI that measures it where one exists (``kpis/builtins.py``):
the pipeline conversion rate is the win rate, the time to close a deal the sales cycle length, churn the
churn rate, NPS the NPS. The others (revenue growth, MQL rate, landing page conversion, response time, CSAT,
repeat purchases, onboarding, training) have no built-in KPI yet and are kept by hand.

A target stated as a change ("cut by 20 %", "+6 points") starts from the KPI's latest value for the team when
the template is loaded; without a value the key result is kept by hand as the change itself (0 → 20 %).
A change stated for a key result kept by hand is tracked the same way from the start: 0 → 15 %.

English text, wrapped for translation; the Turkish wording of the seed goes into the .po file.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

INCREASE, DECREASE = "increase", "decrease"
NUMBER, PERCENT = "number", "percent"


@dataclass(frozen=True)
class KeyResultTemplate:
    title: object  # a lazy translation
    kind: str
    unit: str
    start: Decimal | None = None
    target: Decimal | None = None
    kpi: str = ""  # a built-in KPI slug; empty: kept by hand
    # A target relative to the KPI's latest value: a share (−0.20 = 20 % less) or, when ``relative_is_share``
    # is False, an amount in the KPI's unit (+6 NPS points).
    relative: Decimal | None = None
    relative_is_share: bool = True
    # Without a KPI value to start from: the change tracked by hand from 0 to this, in this unit.
    fallback_target: Decimal | None = None
    fallback_unit: str = PERCENT
    # "within 2 months": due that many months after the day the template is loaded (the cycle's first day when
    # loaded before it starts), never after the cycle's last day.
    due_in_months: int | None = None


@dataclass(frozen=True)
class OkrTemplate:
    key: str
    name: object
    objective: object
    description: object
    key_results: tuple[KeyResultTemplate, ...] = field(default_factory=tuple)


TEMPLATE_LIST: list[OkrTemplate] = [
    OkrTemplate(  # Satış Ekibi
        key="sales",
        name=_("Sales team"),
        objective=_("Speed up the sales pipeline to grow revenue"),
        description=_("Close deals faster and convert more of the pipeline into revenue."),
        key_results=(
            KeyResultTemplate(
                _("Cut the average time to close a deal by 20 % within 3 months"), DECREASE, NUMBER,
                kpi="sales-cycle-length", relative=Decimal("-0.20"), fallback_target=Decimal("20"),
                due_in_months=3,
            ),
            KeyResultTemplate(
                _("Raise the pipeline conversion (win) rate from 22 % to 30 % by the end of the quarter"),
                INCREASE, PERCENT, start=Decimal("22"), target=Decimal("30"), kpi="win-rate",
            ),
            KeyResultTemplate(
                # xgettext:no-python-format
                _("Grow monthly sales revenue by 15 % over the 3 months"), INCREASE, PERCENT,
                start=Decimal("0"), target=Decimal("15"), due_in_months=3,
            ),
        ),
    ),
    OkrTemplate(  # Pazarlama Ekibi
        key="marketing",
        name=_("Marketing team"),
        objective=_("Generate more qualified leads"),
        description=_("Bring in leads that are ready for sales, and convert more visitors into leads."),
        key_results=(
            KeyResultTemplate(
                # xgettext:no-python-format
                _("Raise the MQL rate by 10 % during the quarter"), INCREASE, PERCENT,
                start=Decimal("0"), target=Decimal("10"),
            ),
            KeyResultTemplate(
                _("Raise the landing page conversion rate from 18 % to 25 % within 2 months"), INCREASE, PERCENT,
                start=Decimal("18"), target=Decimal("25"), due_in_months=2,
            ),
        ),
    ),
    OkrTemplate(  # Müşteri Hizmetleri
        key="customer-service",
        name=_("Customer service"),
        objective=_("Improve the customer experience to raise satisfaction"),
        description=_("Answer customers faster and leave them more satisfied."),
        key_results=(
            KeyResultTemplate(
                _("Cut the average response time from 6 minutes to 3 minutes within 1 month"), DECREASE, NUMBER,
                start=Decimal("6"), target=Decimal("3"), due_in_months=1,
            ),
            KeyResultTemplate(
                _("Raise the CSAT score from 4.2 to 4.6 by the end of the quarter"), INCREASE, NUMBER,
                start=Decimal("4.2"), target=Decimal("4.6"),
            ),
        ),
    ),
    OkrTemplate(  # Müşteri Sadakati Ekibi
        key="customer-loyalty",
        name=_("Customer loyalty team"),
        objective=_("Deepen engagement with existing customers to lower churn"),
        description=_("Keep more customers, bring them back to buy again and make them recommend us."),
        key_results=(
            KeyResultTemplate(
                _("Bring the churn rate down from 8 % to 5 % by the end of the quarter"), DECREASE, PERCENT,
                start=Decimal("8"), target=Decimal("5"), kpi="churn-rate",
            ),
            KeyResultTemplate(
                _("Raise the repeat purchase rate by 20 % within 3 months"), INCREASE, PERCENT,
                start=Decimal("0"), target=Decimal("20"), due_in_months=3,
            ),
            KeyResultTemplate(
                _("Raise the NPS by 6 points by the end of the quarter"), INCREASE, NUMBER,
                kpi="nps", relative=Decimal("6"), relative_is_share=False, fallback_target=Decimal("6"),
                fallback_unit=NUMBER,
            ),
        ),
    ),
    OkrTemplate(  # Satış Sonrası Hizmetler
        key="after-sales",
        name=_("After-sales services"),
        objective=_("Speed up onboarding of new customers"),
        description=_("Get new customers up and running sooner, trained in their first month."),
        key_results=(
            KeyResultTemplate(
                _("Shorten the time to complete onboarding by 25 % within 3 months"), INCREASE, PERCENT,
                start=Decimal("0"), target=Decimal("25"), due_in_months=3,
            ),
            KeyResultTemplate(
                _("Raise the share of customers trained in their first 30 days from 60 % to 85 %"), INCREASE,
                PERCENT, start=Decimal("60"), target=Decimal("85"),
            ),
        ),
    ),
]

TEMPLATES: dict[str, OkrTemplate] = {template.key: template for template in TEMPLATE_LIST}
