"""KPI services: admins create and change KPIs; a bad formula is refused with its position and changes nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from crm_okr.models import FieldChange
from kpis import services
from kpis.dimensions import Dimension
from kpis.formula import FormulaError
from kpis.models import Kpi, KpiSnapshot
from kpis.periods import Period
from tests.factories import ContactFactory

JAN = Period("monthly", dt.date(2026, 1, 1))


def create(actor, **fields):
    fields.setdefault("slug", "contacts-made")
    fields.setdefault("name", "Contacts made")
    fields.setdefault("formula", "count(contacts)")
    return services.kpi_create(actor=actor, **fields)


class TestValidate:
    def test_valid(self, db):
        compiled = services.kpi_validate("count(deals where status = 'won' by closed_at)")
        assert compiled.dimensions == ["team", "owner", "pipeline", "source"]

    def test_invalid_has_position(self, db):
        with pytest.raises(ValidationError) as info:
            services.kpi_validate("count(deals where stauts = 'won')")
        assert info.value.message_dict == {
            "formula": ["Unknown field “stauts” on deals — did you mean “status”? (position 18)"]
        }
        assert info.value.formula_error.position == 18

    def test_a_message_that_says_its_position_does_not_repeat_it(self, db):
        with pytest.raises(ValidationError) as info:
            services.kpi_validate("count(deals where status = 'won' xyz)")
        assert info.value.message_dict == {
            "formula": ["Expected “)” after the aggregate at position 33 (found “xyz”)."]
        }
        assert info.value.formula_error.position == 33

    def test_empty(self, db):
        with pytest.raises(ValidationError) as info:
            services.kpi_validate("")
        assert "The formula is empty." in info.value.message_dict["formula"][0]


class TestCreate:
    def test_admin_creates_with_dimensions(self, sam):
        kpi = create(sam, formula="  count(contacts where lifecycle_stage = 'mql') * 100 / count(contacts)  ")
        assert kpi.formula == "count(contacts where lifecycle_stage = 'mql') * 100 / count(contacts)"
        assert kpi.dimensions == ["team", "owner", "source"]
        assert kpi.formula_version == 1
        assert kpi.created_by == sam

    @pytest.mark.parametrize("persona", ["alice", "mona", "integ"])
    def test_only_admins(self, request, persona):
        with pytest.raises(PermissionDenied):
            create(request.getfixturevalue(persona))
        assert not Kpi.objects.filter(slug="contacts-made").exists()

    def test_bad_formula_creates_nothing(self, sam):
        with pytest.raises(ValidationError) as info:
            create(sam, formula="sum(deals.name)")
        assert info.value.message_dict["formula"] == ["“sum” needs a number field; “name” is text. (position 10)"]
        assert not Kpi.objects.filter(slug="contacts-made").exists()

    def test_model_errors(self, sam):
        create(sam)
        with pytest.raises(ValidationError) as info:
            create(sam, unit="furlongs")
        assert set(info.value.message_dict) == {"slug", "unit"}

    def test_unknown_fields_refused(self, sam):
        with pytest.raises(ValidationError) as info:
            create(sam, formula_version=9, is_builtin=True)
        assert set(info.value.message_dict) == {"formula_version", "is_builtin"}

    @pytest.mark.parametrize("slug", ["new", "preview", "language", "data", "validate"])
    def test_reserved_slugs_refused(self, sam, slug):
        with pytest.raises(ValidationError) as info:
            create(sam, slug=slug)
        assert info.value.message_dict == {"slug": [f"“{slug}” is a reserved word; choose another key."]}
        assert not Kpi.objects.filter(slug=slug).exists()

    def test_self_reference_refused(self, sam):
        with pytest.raises(ValidationError) as info:
            create(sam, slug="me", formula="kpi('me') + 1")
        assert "cycle: me → me" in info.value.message_dict["formula"][0]


class TestUpdate:
    def test_formula_change_bumps_version_and_dimensions(self, sam):
        kpi = create(sam)
        kpi = services.kpi_update(kpi, actor=sam, formula="count(deals)", name="Deals made")
        assert (kpi.formula_version, kpi.dimensions, kpi.name) == (2, ["team", "owner", "pipeline", "source"],
                                                                 "Deals made")
        kpi = services.kpi_update(kpi, actor=sam, name="Deals")
        assert kpi.formula_version == 2  # the formula did not change
        change = FieldChange.objects.filter(record_type="kpis.kpi", record_id=kpi.pk).first()
        assert change.changes["name"]["new"] == "Deals"

    def test_bad_formula_changes_nothing(self, sam):
        kpi = create(sam)
        with pytest.raises(ValidationError):
            services.kpi_update(kpi, actor=sam, formula="count(contacts where lifecycle_stage = 'mqll')",
                                name="Renamed")
        kpi.refresh_from_db()
        assert (kpi.formula, kpi.name, kpi.formula_version) == ("count(contacts)", "Contacts made", 1)

    def test_cycle_refused(self, sam):
        a = create(sam, slug="a", formula="1")
        create(sam, slug="b", formula="kpi('a') * 2")
        with pytest.raises(ValidationError) as info:
            services.kpi_update(a, actor=sam, formula="kpi('b') + 1")
        assert "KPI references form a cycle: a → b → a." in info.value.message_dict["formula"][0]

    def test_slug_used_by_others_cannot_change(self, sam):
        a = create(sam, slug="a", formula="1")
        create(sam, slug="b", formula="kpi('a') * 2")
        with pytest.raises(ValidationError) as info:
            services.kpi_update(a, actor=sam, slug="a2")
        assert "b" in info.value.message_dict["slug"][0]

    def test_only_admins(self, sam, mona):
        kpi = create(sam)
        with pytest.raises(PermissionDenied):
            services.kpi_update(kpi, actor=mona, name="x")

    def test_reserved_slug_refused(self, sam):
        kpi = create(sam)
        with pytest.raises(ValidationError) as info:
            services.kpi_update(kpi, actor=sam, slug="validate")
        assert list(info.value.message_dict) == ["slug"]
        kpi.refresh_from_db()
        assert kpi.slug == "contacts-made"

    def test_slug_mentioned_only_in_a_comment_or_a_text_may_change(self, sam):
        a = create(sam, slug="a", formula="1")
        create(sam, slug="b", formula="count(deals where name = 'a')  # like kpi('a')")
        assert services.kpi_update(a, actor=sam, slug="a2").slug == "a2"

    def test_slug_used_through_snapshot_cannot_change(self, sam):
        a = create(sam, slug="a", formula="1")
        create(sam, slug="b", formula="snapshot('a') * 2")
        with pytest.raises(ValidationError) as info:
            services.kpi_update(a, actor=sam, slug="a2")
        assert info.value.message_dict == {"slug": ["Other KPIs use this key: b."]}


class TestEvaluate:
    def test_value_and_dimension(self, sam, alice, charlie, north):
        kpi = create(sam)
        tz = dt.timezone(dt.timedelta(hours=3))
        ContactFactory(owner=alice, created_at=dt.datetime(2026, 1, 5, tzinfo=tz))
        ContactFactory(owner=charlie, created_at=dt.datetime(2026, 1, 6, tzinfo=tz))
        ContactFactory(owner=charlie, created_at=dt.datetime(2025, 12, 31, 23, tzinfo=tz))  # December
        assert services.evaluate(kpi, JAN) == Decimal(2)
        assert services.evaluate(kpi, JAN, Dimension("team", north.id)) == Decimal(1)
        with pytest.raises(FormulaError, match="cannot be broken down by pipeline"):
            services.evaluate(kpi, JAN, Dimension("pipeline", 1))


def test_dependents_follow_a_formula_change(sam):
    base = create(sam, slug="base", formula="count(deals)")
    user = create(sam, slug="user", formula="kpi('base') * 2")
    assert user.dimensions == ["team", "owner", "pipeline", "source"]
    services.kpi_update(base, actor=sam, formula="count(contacts)")
    user.refresh_from_db()
    assert (user.dimensions, user.formula_version) == (["team", "owner", "source"], 2)


def test_dependents_follow_a_formula_change_transitively(sam):
    base = create(sam, slug="base", formula="count(deals)")
    middle = create(sam, slug="middle", formula="kpi('base') * 2")
    top = create(sam, slug="top", formula="kpi('middle') + 1")
    stored = create(sam, slug="stored", formula="snapshot('base') + snapshot('top')")
    services.kpi_update(base, actor=sam, formula="count(contacts)")
    for kpi in (middle, top, stored):
        kpi.refresh_from_db()
    assert (middle.dimensions, middle.formula_version) == (["team", "owner", "source"], 2)
    assert (top.dimensions, top.formula_version) == (["team", "owner", "source"], 2)
    # snapshot() reads stored values: nothing to recompute
    assert (stored.dimensions, stored.formula_version) == (["team", "owner", "pipeline", "source"], 1)


class TestDelete:
    def test_admin_deletes_a_custom_kpi_with_its_snapshots(self, sam):
        kpi = create(sam)
        KpiSnapshot.objects.create(kpi=kpi, frequency="monthly", period_start=JAN.start, period_end=JAN.end,
                                   value=Decimal(1), formula_version=1)
        assert services.kpi_delete(kpi, actor=sam) is None
        assert not Kpi.objects.filter(slug="contacts-made").exists()
        assert not KpiSnapshot.objects.filter(kpi_id=kpi.pk).exists()

    @pytest.mark.parametrize("persona", ["alice", "mona", "integ"])
    def test_only_admins(self, request, sam, persona):
        kpi = create(sam)
        with pytest.raises(PermissionDenied):
            services.kpi_delete(kpi, actor=request.getfixturevalue(persona))
        assert Kpi.objects.filter(pk=kpi.pk).exists()

    def test_builtin_refused(self, sam):
        kpi = Kpi.objects.get(slug="win-rate")
        with pytest.raises(ValidationError) as info:
            services.kpi_delete(kpi, actor=sam)
        assert info.value.message_dict == {"is_builtin": [
            "A built-in KPI cannot be deleted; make it inactive instead."]}
        assert Kpi.objects.filter(slug="win-rate").exists()

    @pytest.mark.parametrize("formula", ["kpi('contacts-made') * 2", "snapshot('contacts-made') + 1"])
    def test_refused_while_another_formula_refers_to_it(self, sam, formula):
        kpi = create(sam)
        create(sam, slug="user", formula=formula)
        with pytest.raises(ValidationError) as info:
            services.kpi_delete(kpi, actor=sam)
        assert info.value.message_dict == {"slug": ["Other KPIs use this one: user. Change their formulas first."]}
        assert Kpi.objects.filter(pk=kpi.pk).exists()

    def test_a_mention_in_a_comment_or_text_is_not_a_reference(self, sam):
        kpi = create(sam)
        create(sam, slug="note", formula="count(deals where name = 'contacts-made')  # was kpi('contacts-made')")
        services.kpi_delete(kpi, actor=sam)
        assert not Kpi.objects.filter(pk=kpi.pk).exists()


class TestNames:
    """Names a formula compares by must exist when it is written (validate, create, a formula change), with a
    did-you-mean; a stored formula keeps working after a rename."""

    @pytest.fixture
    def world(self, sam, alice, north):
        from pipeline import services as pipeline_services
        from tests.factories import LeadSourceFactory

        pipeline_services.pipeline_create(actor=sam, name="Satış", stages=[
            {"name": "Yeni", "probability": 10}, {"name": "Teklif", "probability": 60},
            {"name": "Kazanıldı", "probability": 100, "kind": "won"},
            {"name": "Kaybedildi", "probability": 0, "kind": "lost"},
        ])
        LeadSourceFactory(name="Web")

    def message(self, text, slug=None):
        with pytest.raises(ValidationError) as info:
            services.kpi_validate(text, slug=slug)
        return info.value.message_dict["formula"][0], info.value.formula_error.position

    @pytest.mark.parametrize("text, expected", [
        # "count(deals where stage = " is 26 characters: the text starts at 26
        ("count(deals where stage = 'Teklf')", ("No stage is named “Teklf” — did you mean “Teklif”? (position 26)", 26)),
        # case and Turkish letters do not matter for the suggestion (the comparison itself is exact)
        ("count(deals where stage = 'TEKLİF')",
         ("No stage is named “TEKLİF” — did you mean “Teklif”? (position 26)", 26)),
        ("count(deals where stage != 'Teklf')",
         ("No stage is named “Teklf” — did you mean “Teklif”? (position 27)", 27)),
        # the first unknown name of a list: 'Teklif' exists, 'Kazanldi' (at 38) does not
        ("count(deals where stage in ('Teklif', 'Kazanldi'))",
         ("No stage is named “Kazanldi” — did you mean “Kazanıldı”? (position 38)", 38)),
        ("count(deals where owner = 'nobody')", ("No user has the username “nobody”. (position 26)", 26)),
        ("count(deals where owner = 'alcie')",
         ("No user has the username “alcie” — did you mean “alice”? (position 26)", 26)),
        ("count(contacts where lead_source = 'Webb')",
         ("No lead source is named “Webb” — did you mean “Web”? (position 35)", 35)),
        ("count(deals) + count(activities where team = 'Nort')",
         ("No team is named “Nort” — did you mean “North”? (position 45)", 45)),
        ("count(deals where pipeline = 'Satis')",
         ("No pipeline is named “Satis” — did you mean “Satış”? (position 29)", 29)),
        # inside has: the related source's field (deals.stage)
        ("count(contacts where has deals where stage = 'Teklf')",
         ("No stage is named “Teklf” — did you mean “Teklif”? (position 45)", 45)),
        # the leftmost unknown name, whatever table it is in
        ("count(deals where team = 'Nort' and stage = 'Teklf')",
         ("No team is named “Nort” — did you mean “North”? (position 25)", 25)),
    ])
    def test_unknown_names_are_refused_with_a_suggestion(self, world, text, expected):
        assert self.message(text) == expected

    def test_known_names_pass(self, world):
        compiled = services.kpi_validate("count(deals where stage in ('Teklif', 'Kazanıldı') and owner = 'alice' "
                                         "and team = 'North' and pipeline = 'Satış' and lead_source = 'Web')")
        assert compiled.dimensions == ["team", "owner", "pipeline", "source"]

    def test_create_and_a_formula_change_are_refused(self, world, sam):
        with pytest.raises(ValidationError) as info:
            create(sam, formula="count(deals where stage = 'Teklf')")
        assert info.value.message_dict["formula"][0].startswith("No stage is named “Teklf”")
        assert not Kpi.objects.filter(slug="contacts-made").exists()
        kpi = create(sam, formula="count(deals where stage = 'Teklif')")
        with pytest.raises(ValidationError):
            services.kpi_update(kpi, actor=sam, formula="count(deals where stage = 'Teklf')")
        assert Kpi.objects.get(pk=kpi.pk).formula == "count(deals where stage = 'Teklif')"

    def test_a_stored_formula_survives_a_rename(self, world, sam):
        from kpis.formula import compile_formula
        from pipeline.models import Stage

        kpi = create(sam, slug="offers", formula="count(deals where stage = 'Teklif')")
        Stage.objects.filter(name="Teklif").update(name="Öneri")
        # still evaluates (nothing is named Teklif any more: 0) and still saves with other changes
        assert compile_formula(kpi.formula).evaluate(JAN) == 0
        assert services.kpi_update(kpi, actor=sam, name="Offers").name == "Offers"
        # the editor's and the API's validation of the stored formula of this KPI pass; as a new text it fails
        assert services.kpi_validate(kpi.formula, slug="offers").dimensions
        assert self.message(kpi.formula) == ("No stage is named “Teklif”. (position 26)", 26)
        # a KPI that inlines it is checked for its own names only
        other = create(sam, slug="offers-x2", name="Offers × 2", formula="kpi('offers') * 2")
        assert other.formula_version == 1


class TestBenchmark:
    def test_a_new_band_clears_the_text_that_described_the_old_one(self, sam):
        kpi = Kpi.objects.get(slug="win-rate")
        assert (kpi.benchmark_low, kpi.benchmark_high, kpi.benchmark_text) == (20, 30, "20–30 %")
        kpi = services.kpi_update(kpi, actor=sam, benchmark_low="25")  # 25–30 now: "20–30 %" would be stale
        stored = Kpi.objects.get(pk=kpi.pk)
        assert (stored.benchmark_low, stored.benchmark_high, stored.benchmark_text) == (25, 30, "")
        change = FieldChange.objects.filter(record_type="kpis.kpi", record_id=kpi.pk).first()
        assert (change.changes["benchmark_text"]["old"], change.changes["benchmark_text"]["new"]) == ("20–30 %", "")

    def test_a_text_sent_with_the_band_is_kept(self, sam):
        kpi = Kpi.objects.get(slug="win-rate")
        services.kpi_update(kpi, actor=sam, benchmark_high=Decimal("35"), benchmark_text="20–35 %")
        assert Kpi.objects.get(pk=kpi.pk).benchmark_text == "20–35 %"

    def test_the_same_band_or_other_changes_keep_the_text(self, sam):
        kpi = Kpi.objects.get(slug="win-rate")
        services.kpi_update(kpi, actor=sam, benchmark_low=Decimal("20.00"), benchmark_high=30, name="Win rate %")
        stored = Kpi.objects.get(pk=kpi.pk)
        assert (stored.name, stored.benchmark_text) == ("Win rate %", "20–30 %")

    def test_a_band_refused_changes_nothing(self, sam):
        kpi = Kpi.objects.get(slug="win-rate")
        with pytest.raises(ValidationError):
            services.kpi_update(kpi, actor=sam, benchmark_low=Decimal("40"))  # above the end (30)
        assert Kpi.objects.get(pk=kpi.pk).benchmark_text == "20–30 %"
