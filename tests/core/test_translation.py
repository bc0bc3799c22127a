"""The Turkish translation is complete, compiled, and used by the pages.

The .po file is read with a tiny parser of our own (polib is not a project dependency).
"""

import ast
import gettext as gettext_module
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, ngettext

from contacts.models import LifecycleStage
from tests.factories import UserFactory

PO_FILE = Path(settings.BASE_DIR) / "locale" / "tr" / "LC_MESSAGES" / "django.po"
MO_FILE = PO_FILE.with_suffix(".mo")


def read_po(path):
    """Entries of a .po file as dicts: flags, msgctxt, msgid, msgid_plural, msgstr (a list: one per form)."""
    entries = []
    entry, field = None, None

    def finish():
        if entry is not None and "msgid" in entry:
            entries.append(entry)

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#~"):  # blank lines and obsolete entries
            continue
        if line.startswith("#"):
            if entry is not None and "msgid" in entry:  # comments open the next entry
                finish()
                entry = None
            entry = entry or {"flags": set(), "msgstr": []}
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith('"'):
            value = ast.literal_eval(line)
            if field == "msgstr":
                entry["msgstr"][-1] += value
            else:
                entry[field] += value
            continue
        keyword, _, literal = line.partition(" ")
        value = ast.literal_eval(literal)
        if keyword in ("msgctxt", "msgid") and entry is not None and "msgid" in entry:
            finish()
            entry = None
        entry = entry or {"flags": set(), "msgstr": []}
        if keyword.startswith("msgstr"):
            field = "msgstr"
            entry["msgstr"].append(value)
        else:
            field = keyword
            entry[keyword] = value
    finish()
    return entries


def test_the_turkish_po_file_has_no_untranslated_or_fuzzy_entries():
    entries = read_po(PO_FILE)
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == ""
    assert "fuzzy" not in header["flags"]
    assert "Language: tr\n" in header["msgstr"][0]
    assert "Plural-Forms: nplurals=2; plural=(n > 1);\n" in header["msgstr"][0]
    assert len(messages) > 300
    untranslated = [e["msgid"] for e in messages if not all(e["msgstr"]) or not e["msgstr"]]
    fuzzy = [e["msgid"] for e in messages if "fuzzy" in e["flags"]]
    assert untranslated == []
    assert fuzzy == []
    plurals = [e for e in messages if "msgid_plural" in e]
    assert plurals and all(len(e["msgstr"]) == 2 for e in plurals)


def test_the_committed_mo_file_matches_the_po_file():
    # The .mo is committed so the app runs without gettext; it must be recompiled after each .po edit.
    with MO_FILE.open("rb") as handle:
        compiled = gettext_module.GNUTranslations(handle)
    stale = []
    for e in read_po(PO_FILE)[1:]:
        key = f"{e['msgctxt']}\x04{e['msgid']}" if "msgctxt" in e else e["msgid"]
        if "msgid_plural" in e:
            got = [compiled.ngettext(key, e["msgid_plural"], n) for n in (1, 2)]
        else:
            got = [compiled.gettext(key)]
        if got != e["msgstr"]:
            stale.append(e["msgid"])
    assert stale == []


def test_placeholders_survive_translation():
    placeholder = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")
    for e in read_po(PO_FILE)[1:]:
        source = sorted(placeholder.findall(e.get("msgid_plural") or e["msgid"]))
        for text in e["msgstr"]:
            assert sorted(placeholder.findall(text)) == source, e["msgid"]


@pytest.mark.parametrize(
    ("english", "turkish"),
    [
        ("Contacts", "Kişiler"),
        ("Companies", "Firmalar"),
        ("Home", "Ana sayfa"),
        ("Sign out", "Çıkış yap"),
        ("Lifecycle stage", "Yaşam döngüsü aşaması"),
        ("Lead source", "Lead kaynağı"),
        ("Owner", "Sahip"),
        ("Task", "Görev"),
        ("This field is required.", "Bu alan zorunludur."),
    ],
)
def test_key_strings_are_turkish_when_tr_is_active(english, turkish):
    with translation.override("tr"):
        assert gettext(english) == turkish
    with translation.override("en"):
        assert gettext(english) == english


def test_lifecycle_stage_labels_are_turkish():
    with translation.override("tr"):
        labels = {value: str(label) for value, label in LifecycleStage.choices}
    assert labels == {
        "subscriber": "Abone",
        "lead": "Müşteri adayı",
        "mql": "Pazarlama nitelikli müşteri adayı (MQL)",
        "sql": "Satış nitelikli müşteri adayı (SQL)",
        "opportunity": "Fırsat",
        "customer": "Müşteri",
        "advocate": "Marka savunucusu",
        "churned": "Kaybedilen müşteri (churn)",
    }


def test_plural_and_formatted_messages_translate():
    with translation.override("tr"):
        assert ngettext("%(n)s row", "%(n)s rows", 1) % {"n": 1} == "1 kayıt"
        assert ngettext("%(n)s row", "%(n)s rows", 7) % {"n": 7} == "7 kayıt"
        assert gettext("Hello, %(name)s") % {"name": "Ayşe"} == "Merhaba Ayşe"
        # Django's own catalog is still there next to ours.
        assert gettext("January") == "Ocak"


def test_contact_list_renders_in_turkish_for_a_user_whose_language_is_tr(db, client_for):
    user = UserFactory(username="turkan", language="tr")
    response = client_for(user).get("/contacts/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="tr">' in html
    assert ">Kişiler</a>" in html
    assert ">Firmalar</a>" in html
    assert "Ana sayfa" in html
    assert ">Contacts</a>" not in html


def test_contact_list_stays_english_for_a_user_without_a_language(client_for, alice):
    html = client_for(alice).get("/contacts/").content.decode()
    assert ">Contacts</a>" in html
    assert ">Kişiler</a>" not in html
