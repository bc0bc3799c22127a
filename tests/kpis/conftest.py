"""KPI fixtures: the pipeline fixtures (a "Sales" pipeline, stages, make_deal) are shared with the pipeline tests."""

from tests.pipeline.conftest import make_deal, pipe, price, stages  # noqa: F401
