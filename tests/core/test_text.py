"""Turkish-aware folding and sorting (crm_okr.text): the pitfalls of str.lower and NFKD, pinned."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_okr.text import collapse_spaces, digits, fold, sort_key, turkish_lower

TURKISH_LETTERS = "çğıöşüÇĞİIÖŞÜâîûÂÎÛ"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("İSTANBUL", "istanbul"),
        ("IŞIK", "isik"),
        ("ışık", "isik"),
        ("Işık", "isik"),
        ("isik", "isik"),
        ("Şahin", "sahin"),
        ("ŞAHİN", "sahin"),
        ("Çağlar Güneş", "caglar gunes"),
        ("ÖZTÜRK", "ozturk"),
        ("Kâzım", "kazim"),
        ("José Müller", "jose muller"),
        ("  Ayşe \t  Nur\n", "ayse nur"),
        ("ayse@example.com", "ayse@example.com"),
        ("", ""),
        (None, ""),
    ],
)
def test_fold_matches_turkish_text_with_or_without_accents(raw, expected):
    assert fold(raw) == expected


def test_fold_avoids_the_python_pitfalls():
    # What the naive ways give (the reason fold exists):
    assert "İSTANBUL".lower() == "i̇stanbul" and len("İSTANBUL".lower()) == 9
    assert "IŞIK".lower() == "işik"
    assert fold("İSTANBUL") == "istanbul" and len(fold("İSTANBUL")) == 8
    assert fold("IŞIK") == fold("ışık") == fold("isik")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("İSTANBUL", "istanbul"), ("IŞIK", "ışık"), ("ISPARTA", "ısparta"), ("Iİ", "ıi")],
)
def test_turkish_lower_follows_the_dotted_and_dotless_i(raw, expected):
    assert turkish_lower(raw) == expected


def test_sort_key_gives_turkish_alphabetical_order():
    names = ["Zeynep", "Ümit", "Ufuk", "Şule", "Sena", "Ömer", "Oğuz", "İlker", "ışıl", "Irmak", "Hakan", "Ğ",
             "Gül", "Deniz", "Çağla", "Cem", "Can"]
    assert sorted(names, key=sort_key) == [
        "Can", "Cem", "Çağla", "Deniz", "Gül", "Ğ", "Hakan", "Irmak", "ışıl", "İlker", "Oğuz", "Ömer", "Sena",
        "Şule", "Ufuk", "Ümit", "Zeynep",
    ]


def test_sort_key_ignores_case_and_extra_spaces():
    assert sort_key("  ŞAHİN   Ali ") == sort_key("şahin ali")
    assert sort_key("Işık") == sort_key("ışık") != sort_key("isik")


def test_collapse_spaces_and_digits():
    assert collapse_spaces("  a \u00a0 b\t\nc ") == "a b c"
    assert digits("+90 (532) 123-45-67") == "905321234567"
    assert digits(None) == ""


@given(st.text())
def test_fold_is_idempotent_and_never_raises(value):
    folded = fold(value)
    assert fold(folded) == folded
    assert folded == folded.strip()
    assert "  " not in folded


@given(st.text(alphabet=TURKISH_LETTERS + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-@\t"))
def test_fold_of_turkish_text_is_ascii(value):
    folded = fold(value)
    assert folded.isascii()
    assert folded == folded.lower()


@given(st.text(alphabet=TURKISH_LETTERS + "abcdefghijklmnopqrstuvwxyz "))
def test_fold_is_blind_to_case_and_turkish_accents(value):
    assert fold(value.upper()) == fold(value) == fold(fold(value).upper())


@given(st.text())
def test_sort_key_never_raises(value):
    assert isinstance(sort_key(value), str)
