"""Pipeline fixtures: a "Sales" pipeline with known stages and exit criteria, and a deal maker."""

import pytest

from pipeline import services
from pipeline.models import LostReason, Stage


@pytest.fixture
def pipe(sam):
    """Lead → Qualified (needs amount) → Proposal (needs amount and close date; no skipping) → Negotiation
    → Won / Lost."""
    return services.pipeline_create(actor=sam, name="Sales", stages=[
        {"name": "Lead", "probability": 10},
        {"name": "Qualified", "probability": 30, "exit_criteria": ["amount"]},
        {"name": "Proposal", "probability": 60, "exit_criteria": ["amount", "expected_close_date"],
         "allow_skip": False},
        {"name": "Negotiation", "probability": 80, "rotting_days": 30},
        {"name": "Won", "probability": 100, "kind": Stage.Kind.WON},
        {"name": "Lost", "probability": 0, "kind": Stage.Kind.LOST},
    ])


@pytest.fixture
def stages(pipe):
    return {stage.name: stage for stage in pipe.stages.all()}


@pytest.fixture
def price(db):
    return LostReason.objects.get(name="Price")


@pytest.fixture
def make_deal(pipe):
    """``make_deal(alice, name="X", stage=stages["Lead"], amount=...)`` through the service."""

    def make(user, **data):
        data.setdefault("name", "Deal")
        data.setdefault("pipeline", pipe)
        return services.deal_create(actor=user, data=data)

    return make
