"""The small template helpers of ``contacts/templatetags/crm.py``."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from contacts.templatetags.crm import format_percent, percent


def render(source: str, **context) -> str:
    return Template("{% load crm %}" + source).render(Context(context))


@pytest.mark.parametrize(("language", "value", "decimals", "expected"), [
    ("en", 10, None, "10%"),
    ("en", 0, None, "0%"),
    ("en", Decimal("42.857"), 1, "42.9%"),
    ("en", Decimal("100.0"), 1, "100.0%"),
    ("tr", 10, None, "%10"),
    ("tr", 0, None, "%0"),
    ("tr", Decimal("42.857"), 1, "%42,9"),
    ("tr", Decimal("66.65"), 1, "%66,7"),
])
def test_percent_puts_the_sign_where_the_language_does(language, value, decimals, expected):
    with translation.override(language):
        assert percent(value, decimals) == expected
        source = "{{ value|percent }}" if decimals is None else f"{{{{ value|percent:{decimals} }}}}"
        assert render(source, value=value) == expected


@pytest.mark.parametrize("value", [None, ""])
def test_percent_of_nothing_is_empty(value):
    assert percent(value) == ""
    assert render("[{{ value|percent }}]", value=value) == "[]"


def test_format_percent_takes_text_already_formatted():
    with translation.override("tr"):
        assert format_percent("12,5") == "%12,5"
    with translation.override("en"):
        assert format_percent("12.5") == "12.5%"
