"""Demo and scale data: realistic Turkish and English contacts, companies and activities, fast.

Used by ``manage.py seed_demo``. Rows are generated in Python in batches and written with
PostgreSQL ``COPY``, one transaction per batch (a contact arrives with its lifecycle history,
consent, tags and activities, so every committed batch is consistent). Large loads run as one
transaction with the secondary indexes and foreign keys set aside and rebuilt at the end, so a
million contacts load in minutes.

The data is deliberately imperfect where real CRMs are: some contacts are near-duplicates of
others (the same person typed without Turkish letters, with another e-mail address, with the
phone number formatted differently), some have no company or no e-mail, some tasks are overdue.

Bulk rows skip the services on purpose (no events, no field history: nothing *happened* to this
data), but every stored value follows the services' rules: e-mails lower-cased, phones in E.164,
names trimmed, and ``search_text``/``sort_name`` computed by the same functions the services use.
"""

import io
import json
import math
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from django.db import connection, transaction
from django.db.models import F
from django.db.models.fields import NOT_PROVIDED
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import Team, User
from crm_okr.text import fold

from .models import (
    Activity,
    Company,
    Consent,
    ConsentLog,
    Contact,
    CustomFieldDefinition,
    Entity,
    LeadSource,
    LifecycleChange,
    LifecycleStage,
    Tag,
)
from .rules import normalize_phone
from .services import company_search_fields, contact_search_fields

# --- reference data ------------------------------------------------------------------------------

TEAMS = ["İstanbul Satış", "Ankara Satış", "London Sales"]

# username, first name, last name, role, team index (None: no team), manages team indexes
USERS = [
    ("admin", "Deniz", "Aksoy", User.Role.ADMIN, None, ()),
    ("manager", "Zeynep", "Kaya", User.Role.MANAGER, 0, (0,)),
    ("manager2", "Burak", "Demir", User.Role.MANAGER, 1, (1, 2)),
    ("rep", "Ayşe", "Yılmaz", User.Role.REP, 0, ()),
    ("rep2", "Mehmet", "Öztürk", User.Role.REP, 1, ()),
    ("rep3", "Çağrı", "Işık", User.Role.REP, 0, ()),
    ("rep4", "Gül", "Şahin", User.Role.REP, 1, ()),
    ("rep5", "Emily", "Clarke", User.Role.REP, 2, ()),
    ("rep6", "Oliver", "Hughes", User.Role.REP, 2, ()),
]
# The logins printed at the end (the ones the README and the run command name).
DEMO_LOGINS = ["admin", "manager", "rep", "rep2"]

LEAD_SOURCES = ["Web form", "Referral", "Event", "Ads", "Social", "Import", "API", "Partner", "Cold call",
                "E-mail campaign"]
LEAD_SOURCE_WEIGHTS = [30, 15, 8, 14, 10, 8, 6, 4, 3, 2]
TAGS = ["vip", "newsletter", "partner", "churn-risk", "enterprise", "kobi", "webinar", "fuar-2024", "follow-up",
        "decision-maker"]
SECTORS = ["Retail", "Manufacturing", "Finance", "Healthcare", "Technology", "Education", "Logistics", "Energy",
           "Tourism", "Public sector"]
CUSTOM_FIELDS = [
    # entity, key, label, type, choices, important
    (Entity.CONTACT, "sector", "Sector", CustomFieldDefinition.FieldType.CHOICE, SECTORS, True),
    (Entity.CONTACT, "vip", "VIP", CustomFieldDefinition.FieldType.BOOLEAN, [], False),
    (Entity.COMPANY, "erp_code", "ERP customer code", CustomFieldDefinition.FieldType.TEXT, [], False),
]

# --- names ---------------------------------------------------------------------------------------

TR_FIRST_FEMALE = [
    "Ayşe", "Fatma", "Emine", "Hatice", "Zeynep", "Elif", "Merve", "Özge", "Gül", "Gülşen", "Çiğdem", "Şule",
    "Büşra", "Tuğba", "İrem", "Işıl", "Sevgi", "Derya", "Ebru", "Ceren", "Dilek", "Gökçe", "Nazlı", "Ilgın",
    "Öykü", "Şeyma", "Ümran", "İpek", "Aslı", "Burcu", "Seda", "Pınar", "Duygu", "Hülya", "Sibel", "Yağmur",
    "Ayşegül", "Esra", "Özlem", "Nur", "Gizem", "Melis", "Ece", "Damla", "Selin", "Nilüfer", "Şebnem", "Çağla",
]
TR_FIRST_MALE = [
    "Mehmet", "Mustafa", "Ahmet", "Ali", "Hüseyin", "Hasan", "İbrahim", "İsmail", "Osman", "Yusuf", "Murat",
    "Ömer", "Çağrı", "Emre", "Burak", "Can", "Barış", "Oğuz", "Uğur", "Gökhan", "Serkan", "Tolga", "Onur", "Kaan",
    "Şükrü", "Doğan", "Ilgaz", "Tuğrul", "Cem", "Deniz", "Ozan", "Çağlar", "Bülent", "Levent", "Ümit", "Kıvanç",
    "İlker", "Erkan", "Sinan", "Volkan", "Selçuk", "Görkem", "Işık", "Yiğit", "Berk", "Alper", "Hakan", "Tarık",
]
TR_LAST = [
    "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Yıldırım", "Öztürk", "Aydın", "Özdemir", "Arslan",
    "Doğan", "Kılıç", "Aslan", "Çetin", "Kara", "Koç", "Kurt", "Özkan", "Şimşek", "Polat", "Öz", "Korkmaz",
    "Çakır", "Erdoğan", "Yavuz", "Can", "Acar", "Aksoy", "Güneş", "Tekin", "Işık", "Güler", "Bulut", "Keskin",
    "Ünal", "Uçar", "Toprak", "Sarı", "Akın", "Türk", "Ateş", "Gül", "Çiftçi", "Ekinci", "İnce", "Uysal",
    "Bozkurt", "Başaran", "Karagöz", "Tuncer", "Gündoğdu", "Soylu", "Ilıcak", "İpekçi", "Çağlayan", "Sönmez",
    "Özgür", "Eroğlu", "Kılınç", "Taş", "Özer", "Ağaoğlu", "Karaca", "Erdem", "Coşkun", "Duman", "Güven",
]
EN_FIRST = [
    "James", "Oliver", "Harry", "George", "Jack", "Charlie", "Thomas", "William", "Daniel", "Michael", "Isaac",
    "Ian", "Samuel", "Henry", "Noah", "Emily", "Olivia", "Amelia", "Isla", "Sophie", "Grace", "Jessica",
    "Charlotte", "Sarah", "Laura", "Emma", "Lucy", "Hannah", "Chloe", "Isabella", "Iris", "Ivy", "Eleanor",
]
EN_LAST = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
    "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke", "Hughes",
    "Edwards", "Irving", "Ingram", "O'Brien", "Patel", "Khan", "Lewis", "Harris", "Martin", "Cooper", "King",
]

TR_CITIES = ["İstanbul", "İstanbul", "İstanbul", "Ankara", "Ankara", "İzmir", "Bursa", "Antalya", "Eskişehir",
             "Konya", "Adana", "Kayseri", "Gaziantep", "Muğla", "Çanakkale", "Trabzon", "Kocaeli", "Diyarbakır"]
EN_CITIES = ["London", "London", "Manchester", "Birmingham", "Leeds", "Bristol", "Edinburgh", "Glasgow",
             "Liverpool", "Oxford"]
TR_TITLES = ["Satın Alma Müdürü", "Genel Müdür", "Pazarlama Uzmanı", "İnsan Kaynakları Müdürü",
             "Bilgi İşlem Sorumlusu", "Finans Direktörü", "Satış Temsilcisi", "Operasyon Müdürü", "Kurucu Ortak",
             "Muhasebe Şefi", "Ürün Yöneticisi", "İş Geliştirme Uzmanı", "Lojistik Sorumlusu", "Yazılım Mühendisi"]
EN_TITLES = ["Procurement Manager", "CEO", "Marketing Lead", "Head of IT", "CFO", "Operations Manager", "Founder",
             "Sales Director", "Product Manager", "Office Manager", "Software Engineer", "Buyer"]

TR_COMPANY_HEADS = [
    "Anadolu", "Boğaziçi", "Ege", "Karadeniz", "Marmara", "Toros", "Kapadokya", "Çukurova", "Yeşilırmak", "Uludağ",
    "Akdeniz", "Trakya", "Fırat", "Dicle", "Ilgaz", "Erciyes", "Palandöken", "Kızılırmak", "Gökova", "Işıklar",
    "Şirin", "Güneş", "Yıldız", "Doğa", "Ata", "Özgür", "Çınar", "Işıl", "Öncü", "Gündoğdu", "Yılmaz", "Öztürk",
    "Şahin", "Çelik", "Koç", "Kılıç", "Aydın", "Doğan", "Erdoğan", "Güler", "Karagöz", "Başaran", "İpekçi",
]
TR_SECTORS = [
    ("Tekstil", "Textiles"), ("Gıda", "Food"), ("Lojistik", "Logistics"), ("Yazılım", "Software"),
    ("Enerji", "Energy"), ("İnşaat", "Construction"), ("Otomotiv", "Automotive"), ("Kimya", "Chemicals"),
    ("Mobilya", "Furniture"), ("Turizm", "Tourism"), ("Danışmanlık", "Consulting"), ("Medikal", "Healthcare"),
    ("Elektronik", "Electronics"), ("Tarım", "Agriculture"), ("Ambalaj", "Packaging"), ("Makine", "Machinery"),
    ("Plastik", "Plastics"), ("Bilişim", "IT services"), ("Seramik", "Ceramics"), ("Çelik Döküm", "Steel"),
]
TR_LEGAL = ["A.Ş.", "Ltd. Şti.", "San. ve Tic. A.Ş.", "San. ve Tic. Ltd. Şti."]
EN_COMPANY_HEADS = [
    "Northwind", "Blackstone", "Riverside", "Greenfield", "Ironbridge", "Oakwood", "Silverline", "Redhill",
    "Brightwater", "Kingsway", "Harbour", "Westgate", "Summit", "Crown", "Thames", "Pennine", "Highland", "Ashford",
]
EN_SECTORS = [
    ("Logistics", "Logistics"), ("Software", "Software"), ("Foods", "Food"), ("Energy", "Energy"),
    ("Engineering", "Machinery"), ("Consulting", "Consulting"), ("Healthcare", "Healthcare"),
    ("Retail", "Retail"), ("Analytics", "IT services"), ("Textiles", "Textiles"), ("Packaging", "Packaging"),
]
EN_LEGAL = ["Ltd", "Limited", "PLC", "LLP"]
FREE_MAIL_TR = ["gmail.com", "hotmail.com", "yahoo.com", "outlook.com", "yandex.com", "icloud.com"]
FREE_MAIL_EN = ["gmail.com", "outlook.com", "yahoo.co.uk", "btinternet.com", "icloud.com", "hotmail.co.uk"]

# Mobile prefixes phonenumbers accepts as valid (checked in the tests).
TR_MOBILE = [501, 505, 506, 507, 530, 531, 532, 533, 534, 535, 536, 537, 538, 539, 541, 542, 543, 544, 545, 546,
             547, 548, 549, 551, 552, 553, 554, 555]
TR_LANDLINE = [212, 216, 312, 232, 224, 242, 322, 262]
# Great Britain proper: Jersey, Guernsey and the Isle of Man share +44 with their own mobile ranges.
UK_MOBILE = [p for p in [*range(7400, 7600), *range(7800, 7900)] if p not in {7457, 7509, 7524, 7829, 7839}]

SUBJECTS = {
    "tr": {
        Activity.Kind.CALL: ["Tanışma görüşmesi", "Teklif takibi", "Fiyat görüşmesi", "İhtiyaç analizi",
                             "Yenileme görüşmesi", "Geri arama"],
        Activity.Kind.EMAIL: ["Teklif gönderildi", "Katalog iletildi", "Toplantı özeti", "Sözleşme taslağı",
                              "Fatura bilgileri", "Bülten aboneliği"],
        Activity.Kind.MEETING: ["Demo toplantısı", "Yıllık değerlendirme", "Fuar görüşmesi", "Ofis ziyareti",
                                "Çözüm sunumu"],
        Activity.Kind.NOTE: ["Bütçe onayı bekleniyor", "WhatsApp'tan ulaşılmasını tercih ediyor",
                             "Karar verici: genel müdür", "Rakip firmayla da görüşüyor", "Ödeme vadesi 60 gün"],
        Activity.Kind.TASK: ["Teklifi gönder", "Geri ara", "Sözleşmeyi hazırla", "Demo ayarla",
                             "Referans bilgilerini iste", "Ödeme hatırlatması yap"],
    },
    "en": {
        Activity.Kind.CALL: ["Intro call", "Follow-up on proposal", "Pricing call", "Discovery call",
                             "Renewal call", "Call back"],
        Activity.Kind.EMAIL: ["Sent proposal", "Sent pricing", "Meeting summary", "Draft contract",
                              "Invoice details"],
        Activity.Kind.MEETING: ["Product demo", "Quarterly review", "Trade show meeting", "On-site visit"],
        Activity.Kind.NOTE: ["Waiting for budget approval", "Prefers e-mail", "Decision maker is the CFO",
                             "Also talking to a competitor"],
        Activity.Kind.TASK: ["Send the proposal", "Call back", "Prepare the contract", "Schedule a demo",
                             "Ask for references"],
    },
}
BODIES = {
    "tr": ["", "", "Müşteri olumlu, gelecek hafta tekrar görüşülecek.", "Fiyat listesi paylaşıldı.",
           "Karar süreci uzun sürebilir."],
    "en": ["", "", "Positive, talk again next week.", "Shared the price list.", "The decision may take a while."],
}
ACTIVITY_KINDS = [Activity.Kind.CALL, Activity.Kind.EMAIL, Activity.Kind.MEETING, Activity.Kind.NOTE,
                  Activity.Kind.TASK]
ACTIVITY_WEIGHTS = [30, 25, 12, 15, 18]

STAGE_ORDER = [LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL,
               LifecycleStage.OPPORTUNITY, LifecycleStage.CUSTOMER, LifecycleStage.ADVOCATE]
STAGES = [*STAGE_ORDER, LifecycleStage.CHURNED]
STAGE_WEIGHTS = [10, 35, 12, 9, 8, 17, 3, 6]
CONSENT_SOURCES = ["Web form", "İYS", "Event sign-up", "Phone call", "Contract"]

TWO_YEARS = 730 * 86400
DUPLICATE_RATE = 0.02
# From this many contacts on, the load is one transaction that sets indexes and foreign keys aside.
BULK_THRESHOLD = 100_000
NULL = "\\N"  # NULL in COPY's text format

_ASCII = str.maketrans("ŞşİıĞğÇçÖöÜü", "SsIiGgCcOoUu")
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def ascii_name(value: str) -> str:
    """The name as typed on a keyboard without Turkish letters ("Şahin" → "Sahin", "Işık" → "Isik")."""
    return value.translate(_ASCII)


@lru_cache(maxsize=4096)
def _slug(value: str) -> str:
    return "".join(ch for ch in fold(value) if ch.isalnum())


_DAYS: dict[int, str] = {}


def _ts(epoch: float) -> str:
    """A UTC time for COPY, to the second; much faster than ``datetime.isoformat`` for millions of rows."""
    day, second = divmod(int(epoch), 86400)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%Y-%m-%d")
    return f"{date} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+00"


def _id(value) -> str:
    return NULL if value is None else str(value)


def _text(value: str) -> str:
    return value.translate(_COPY_ESCAPE)


def _weighted(values, weights) -> list:
    """A list in which each value appears as often as its weight: a uniform pick from it is a weighted pick."""
    return [value for value, weight in zip(values, weights, strict=True) for _ in range(weight)]


STAGE_TABLE = _weighted(STAGES, STAGE_WEIGHTS)
KIND_TABLE = _weighted(ACTIVITY_KINDS, ACTIVITY_WEIGHTS)
CHANNELS = ["", "", "email", "phone", "whatsapp", "sms", "in_person"]

# The columns each generator writes, in order.
COMPANY_COLUMNS = (
    "id", "name", "legal_name", "tax_number", "website", "email", "phone", "industry", "size", "annual_revenue",
    "address", "city", "country", "lead_source_id", "owner_id", "team_id", "custom_fields", "search_text",
    "sort_name", "last_activity_at", "created_by_id", "created_at", "updated_at", "archived_at",
)
CONTACT_COLUMNS = (
    "id", "first_name", "last_name", "email", "phone", "mobile", "job_title", "company_id", "lifecycle_stage",
    "lifecycle_changed_at", "lead_source_id", "preferred_channel", "language", "birth_date", "gender", "city",
    "country", "notes", "owner_id", "team_id", "custom_fields", "search_text", "sort_name", "last_activity_at",
    "created_by_id", "created_at", "updated_at", "archived_at",
)
LIFECYCLE_COLUMNS = ("contact_id", "from_stage", "to_stage", "changed_at", "actor_id")
CONSENT_COLUMNS = ("contact_id", "channel", "status", "source", "changed_at")
CONSENT_LOG_COLUMNS = ("contact_id", "channel", "status", "source", "note", "actor_id", "recorded_at")
ACTIVITY_COLUMNS = (
    "kind", "subject", "body", "contact_id", "company_id", "owner_id", "team_id", "occurred_at", "assignee_id",
    "due_at", "done_at", "created_at",
)


# --- the seeder ----------------------------------------------------------------------------------


@dataclass
class Summary:
    """What one run added (and what it found), for the command's final message."""

    teams: list = field(default_factory=list)
    users: list = field(default_factory=list)
    companies: int = 0
    contacts: int = 0
    duplicates: int = 0
    activities: int = 0
    skipped_existing: int = 0
    bulk: bool = False
    seconds: float = 0.0


@dataclass(slots=True)
class _Person:
    id: int
    first: str
    last: str
    lang: str
    owner: int | None
    team: int | None
    company: int | None
    created: float


class _Batch:
    """The COPY lines of one batch of contacts and what hangs off them."""

    def __init__(self):
        self.contacts: list[str] = []
        self.tags: list[str] = []
        self.lifecycle: list[str] = []
        self.consents: list[str] = []
        self.consent_log: list[str] = []
        self.activities: list[str] = []


class DemoSeeder:
    """Generates the demo data set; ``run()`` returns a :class:`Summary`.

    ``progress`` is called with one line of text after every batch. ``bulk`` (default: from
    :data:`BULK_THRESHOLD` contacts on) loads everything in one transaction with the tables' secondary
    indexes and foreign keys set aside and rebuilt at the end, as ``pg_restore`` does: several times
    faster, and a failure rolls the whole load back, indexes included.
    """

    def __init__(
        self, *, contacts: int, password: str, seed: int = 42, activities_per_contact: float = 3,
        batch_size: int = 20_000, append: bool = False, bulk: bool | None = None,
        progress: Callable[[str], None] = print,
    ):
        self.total = contacts
        self.password = password
        self.rng = random.Random(seed)
        self.k = activities_per_contact
        self.batch_size = max(1, batch_size)
        self.append = append
        self.bulk = contacts >= BULK_THRESHOLD if bulk is None else bulk
        self.progress = progress
        self.now = timezone.now().timestamp()
        self.started = time.monotonic()
        self.summary = Summary(bulk=self.bulk)
        self.copier: _Copier | None = None

    # -- orchestration --

    def run(self) -> Summary:
        with transaction.atomic():
            self._reference_data()
        if not self.append and Contact.objects.exists():
            self.summary.skipped_existing = Contact.objects.count()
        elif self.total > 0:
            if self.bulk:
                with transaction.atomic(), _set_aside(BULK_MODELS, self.progress, self._elapsed):
                    self.copier = _Copier()
                    try:
                        self._load()
                    finally:
                        copier, self.copier = self.copier, None
                        copier.close()
            else:
                self._load()
            self._company_last_activity()
            self._home_page_tasks()
            self._analyze()
        self.summary.seconds = time.monotonic() - self.started
        return self.summary

    def _write(self, statements: list) -> None:
        """COPY one batch: on the worker thread in bulk mode (already inside the load's transaction),
        else in a transaction of its own."""
        statements = [s for s in statements if s is not None]
        if self.copier is not None:
            self.copier.submit(statements)
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for sql, data in statements:
                cursor.copy_expert(sql, io.StringIO(data))

    def _load(self) -> None:
        # Ids first: once batches are being written on the copier thread, this thread keeps off the connection.
        company_ids = _reserve_ids(Company, max(1, self.total // 10))
        contact_ids = _reserve_ids(Contact, self.total)
        self._companies(company_ids)
        self._contacts(contact_ids)

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s"

    # -- teams, users, lists --

    def _reference_data(self) -> None:
        teams = [Team.objects.get_or_create(name=name)[0] for name in TEAMS]
        users = {}
        for username, first, last, role, team_index, _manages in USERS:
            team = teams[team_index] if team_index is not None else None
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first, "last_name": last, "email": f"{username}@demo.example.com", "role": role,
                    "team": team, "is_staff": role == User.Role.ADMIN, "is_superuser": role == User.Role.ADMIN,
                },
            )
            if created or not user.check_password(self.password):
                user.set_password(self.password)
                user.save(update_fields=["password"])
            users[username] = user
        for username, *_rest, manages in USERS:
            for index in manages:
                if teams[index].manager_id is None:
                    teams[index].manager = users[username]
                    teams[index].save(update_fields=["manager"])
        self.summary.teams = teams
        self.summary.users = [users[name] for name in DEMO_LOGINS]
        self.users = users

        for order, name in enumerate(LEAD_SOURCES):
            LeadSource.objects.get_or_create(name=name, defaults={"order": order})
        sources = dict(LeadSource.objects.filter(name__in=LEAD_SOURCES).values_list("name", "id"))
        self.source_table = _weighted([str(sources[name]) for name in LEAD_SOURCES], LEAD_SOURCE_WEIGHTS)
        self.tag_ids = []
        for name in TAGS:
            tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
            self.tag_ids.append(tag.id)
        for order, (entity, key, label, kind, choices, important) in enumerate(CUSTOM_FIELDS):
            CustomFieldDefinition.objects.get_or_create(
                entity=entity, key=key,
                defaults={"label": label, "field_type": kind, "choices": choices, "is_important": important,
                          "order": order},
            )
        sector = CustomFieldDefinition.objects.get(entity=Entity.CONTACT, key="sector")
        sectors = [str(c) for c in sector.choices] or SECTORS
        self.custom_json = {
            (s, v): _text(json.dumps({k: x for k, x in (("sector", s), ("vip", v)) if x is not None},
                                     ensure_ascii=False))
            for s in [None, *sectors] for v in (None, True, False)
        }
        self.sectors = sectors

        # Who owns records: reps most, managers some, a few records nobody (only admins see those).
        pool = [u for u in users.values() if u.role in (User.Role.REP, User.Role.MANAGER)]
        self.owner_table = _weighted([u.id for u in pool], [30 if u.role == User.Role.REP else 10 for u in pool])
        self.owner_table += [None] * (len(self.owner_table) * 3 // 97)
        self.owner_team = {u.id: u.team_id for u in pool}
        self.rep_ids = [u.id for u in users.values() if u.role == User.Role.REP]

    def _owner(self) -> int | None:
        table = self.owner_table
        return table[int(self.rng.random() * len(table))]

    def _source(self) -> str:
        r = self.rng.random
        if r() < 0.08:
            return NULL
        return self.source_table[int(r() * len(self.source_table))]

    # -- companies --

    def _companies(self, ids: list[int]) -> None:
        count = len(ids)
        self.company_ids: list[int] = []
        self.company_owner: dict[int, int | None] = {}
        self.company_domain: dict[int, str] = {}
        for start in range(0, count, self.batch_size):
            lines, tags = [], []
            for company_id in ids[start:start + self.batch_size]:
                lines.append(self._company_line(company_id, tags))
            self._write([_copy(Company, COMPANY_COLUMNS, lines), _copy_m2m(Company.tags.through, "company_id", tags)])
            self.summary.companies += len(lines)
            self.progress(f"companies {self.summary.companies:,}/{count:,} ({self._elapsed()})")

    def _company_line(self, company_id: int, tags: list) -> str:
        rng = self.rng
        r = rng.random
        if r() < 0.25:
            head, (word, industry) = rng.choice(EN_COMPANY_HEADS), rng.choice(EN_SECTORS)
            name = f"{head} {word}"
            legal = f"{name} {rng.choice(EN_LEGAL)}"
            domain = f"{_slug(name)}.{rng.choice(['co.uk', 'com'])}"
            city, country = rng.choice(EN_CITIES), "GB"
            if city == "London":
                phone = f"+4420{rng.randrange(30_000_000, 80_000_000)}"
            else:
                phone = f"+44{rng.choice(['161', '121', '113', '117'])}{rng.randrange(2_000_000, 10_000_000)}"
            tax = f"GB{rng.randrange(10**8, 10**9)}"
        else:
            head, (word, industry) = rng.choice(TR_COMPANY_HEADS), rng.choice(TR_SECTORS)
            name = f"{head} {word}"
            legal = f"{name} {rng.choice(TR_LEGAL)}"
            domain = f"{_slug(name)}.{rng.choice(['com.tr', 'com', 'com.tr'])}"
            city, country = rng.choice(TR_CITIES), "TR"
            phone = f"+90{rng.choice(TR_LANDLINE)}{rng.randrange(2_000_000, 10_000_000)}"
            tax = f"{rng.randrange(10**9, 10**10)}"
        owner = self._owner()
        created = _ts(self.now - TWO_YEARS * r() ** 1.5)
        email, website = f"info@{domain}", f"https://www.{domain}"
        sort_name, search_text = company_search_fields(name=name, legal_name=legal, email=email, phone=phone,
                                                       website=website)
        self.company_ids.append(company_id)
        self.company_owner[company_id] = owner
        self.company_domain[company_id] = domain
        if r() < 0.2:
            tags.append((company_id, rng.choice(self.tag_ids)))
        size = rng.choice(Company.Size.values)
        revenue = {"1-9": 1e6, "10-49": 1e7, "50-249": 1e8, "250-999": 5e8, "1000+": 2e9}[size] * r()
        custom = _text(json.dumps({"erp_code": f"C{company_id:07d}"})) if r() < 0.3 else "{}"
        return "\t".join((
            str(company_id), _text(name), _text(legal), tax, website, email, phone, industry, size, f"{revenue:.2f}",
            "", _text(city), country, self._source(), _id(owner), _id(self.owner_team.get(owner)), custom,
            _text(search_text), _text(sort_name), NULL, _id(owner), created, created, NULL,
        ))

    # -- contacts and everything that hangs off them --

    def _contacts(self, ids: list[int]) -> None:
        count = len(ids)
        r = self.rng.random
        for start in range(0, count, self.batch_size):
            batch_ids = ids[start:start + self.batch_size]
            batch = _Batch()
            index = 0
            while index < len(batch_ids):
                person = self._contact(batch_ids[index], batch)
                index += 1
                # A few twins always (so even a small demo shows them), then about 2 %.
                twin = self.summary.duplicates < 3 and self.total >= 20 or r() < DUPLICATE_RATE
                if index < len(batch_ids) and twin:
                    self._duplicate(batch_ids[index], person, batch)
                    index += 1
            self._write([
                _copy(Contact, CONTACT_COLUMNS, batch.contacts),
                _copy_m2m(Contact.tags.through, "contact_id", batch.tags),
                _copy(LifecycleChange, LIFECYCLE_COLUMNS, batch.lifecycle),
                _copy(Consent, CONSENT_COLUMNS, batch.consents),
                _copy(ConsentLog, CONSENT_LOG_COLUMNS, batch.consent_log),
                _copy(Activity, ACTIVITY_COLUMNS, batch.activities),
            ])
            self.summary.contacts += len(batch_ids)
            self.summary.activities += len(batch.activities)
            self.progress(
                f"contacts {self.summary.contacts:,}/{count:,}, activities {self.summary.activities:,} "
                f"({self._elapsed()})"
            )

    def _name(self, lang: str) -> tuple[str, str, str]:
        rng = self.rng
        if lang == "en":
            return rng.choice(EN_FIRST), rng.choice(EN_LAST), rng.choice([Contact.Gender.MALE, Contact.Gender.FEMALE])
        if rng.random() < 0.5:
            names, gender = TR_FIRST_FEMALE, Contact.Gender.FEMALE
        else:
            names, gender = TR_FIRST_MALE, Contact.Gender.MALE
        first = rng.choice(names)
        if rng.random() < 0.05:  # a second given name, as many Turkish people have
            first = f"{first} {rng.choice(names)}"
        return first, rng.choice(TR_LAST), gender

    @staticmethod
    def _mobile(lang: str, contact_id: int) -> str:
        # A bijection of the id onto the number space, so generated numbers never collide by chance.
        if lang == "en":
            x = (contact_id * 7_919_111) % (len(UK_MOBILE) * 1_000_000)
            return f"+44{UK_MOBILE[x // 1_000_000]}{x % 1_000_000:06d}"
        x = (contact_id * 104_729_003) % (len(TR_MOBILE) * 10_000_000)
        return f"+90{TR_MOBILE[x // 10_000_000]}{x % 10_000_000:07d}"

    def _contact(self, contact_id: int, batch: _Batch) -> _Person:
        rng = self.rng
        r = rng.random
        lang = "en" if r() < 0.25 else "tr"
        first, last, gender = self._name(lang)
        company = self.company_ids[int(r() * len(self.company_ids))] if r() < 0.75 else None
        owner = self.company_owner[company] if company is not None and r() < 0.7 else self._owner()
        created = self.now - TWO_YEARS * r() ** 1.5
        local = f"{_slug(first)}.{_slug(last)}{contact_id}"
        if r() < 0.05:
            email = ""
        elif company is not None and r() < 0.5:
            email = f"{local}@{self.company_domain[company]}"
        else:
            email = f"{local}@{rng.choice(FREE_MAIL_EN if lang == 'en' else FREE_MAIL_TR)}"
        phone, mobile = self._mobile(lang, contact_id), ""
        if r() < 0.2:  # an office line, and the mobile beside it
            mobile = phone
            if lang == "tr":
                phone = f"+90{rng.choice(TR_LANDLINE)}{rng.randrange(2_000_000, 10_000_000)}"
            else:
                phone = f"+4420{rng.randrange(70_000_000, 80_000_000)}"
        elif r() < 0.04:
            phone = ""
        person = _Person(contact_id, first, last, lang, owner, self.owner_team.get(owner), company, created)
        self._emit_contact(person, batch, email=email, phone=phone, mobile=mobile, gender=gender)
        return person

    def _duplicate(self, contact_id: int, original: _Person, batch: _Batch) -> None:
        """The same person again, as a second web form or an import would bring them in."""
        rng = self.rng
        first, last = original.first, original.last
        if ascii_name(first + last) != first + last or rng.random() < 0.5:
            first, last = ascii_name(first), ascii_name(last)
        else:
            first, last = first.upper(), last.upper()
        domains = FREE_MAIL_EN if original.lang == "en" else FREE_MAIL_TR
        email = f"{_slug(first)}{_slug(last)}{original.id}@{rng.choice(domains)}" if rng.random() < 0.8 else ""
        # The same mobile typed the way people type it; the real parser makes it the same E.164.
        e164 = self._mobile(original.lang, original.id)
        national = e164[3:]
        if original.lang == "en":
            typed = f"0{national[:4]} {national[4:]}"
        else:
            typed = rng.choice([
                f"0{national[:3]} {national[3:6]} {national[6:8]} {national[8:]}",
                f"({national[:3]}) {national[3:6]}-{national[6:]}",
                f"+90 {national[:3]} {national[3:6]} {national[6:]}",
                f"0090{national}",
            ])
        phone = normalize_phone(typed, "GB" if original.lang == "en" else "TR")
        owner = original.owner if rng.random() < 0.5 else self._owner()
        created = original.created + (self.now - original.created) * rng.random()
        twin = _Person(contact_id, first, last, original.lang, owner, self.owner_team.get(owner), original.company,
                       created)
        self._emit_contact(twin, batch, email=email, phone=phone, mobile="", gender="", stage=LifecycleStage.LEAD,
                           activity_scale=0.3)
        self.summary.duplicates += 1

    def _emit_contact(self, p: _Person, batch: _Batch, *, email: str, phone: str, mobile: str, gender: str,
                      stage: str | None = None, activity_scale: float = 1.0) -> None:
        rng = self.rng
        r = rng.random
        stage = stage or STAGE_TABLE[int(r() * len(STAGE_TABLE))]
        stage_at = self._lifecycle(p, stage, batch)
        last_activity = self._activities(p, batch, activity_scale)
        self._consent(p, batch)
        if r() < 0.3:
            for tag in rng.sample(self.tag_ids, 2 if r() < 0.3 else 1):
                batch.tags.append((p.id, tag))
        sector = self.sectors[int(r() * len(self.sectors))] if r() < 0.6 else None
        vip = (r() < 0.4) if r() < 0.1 else None
        sort_name, search_text = contact_search_fields(first_name=p.first, last_name=p.last, email=email,
                                                       phone=phone, mobile=mobile)
        titles = EN_TITLES if p.lang == "en" else TR_TITLES
        birth = NULL
        if r() < 0.3:
            birth = (BIRTH_START + timedelta(days=int(r() * 40 * 365))).isoformat()
        owner, created = _id(p.owner), _ts(p.created)
        batch.contacts.append("\t".join((
            str(p.id), _text(p.first), _text(p.last), email, phone, mobile,
            titles[int(r() * len(titles))] if r() < 0.7 else "", _id(p.company), stage, _ts(stage_at),
            self._source(), CHANNELS[int(r() * len(CHANNELS))], p.lang, birth, gender,
            rng.choice(EN_CITIES if p.lang == "en" else TR_CITIES), "GB" if p.lang == "en" else "TR", "",
            owner, _id(p.team), self.custom_json[(sector, vip)], _text(search_text), _text(sort_name),
            _ts(last_activity) if last_activity is not None else NULL, owner, created,
            _ts(max(p.created, stage_at)), NULL,
        )))

    def _lifecycle(self, p: _Person, stage: str, batch: _Batch) -> float:
        """Write the stage history that leads to ``stage``; returns when the contact entered it."""
        r = self.rng.random
        target = STAGE_ORDER.index(LifecycleStage.CUSTOMER if stage == LifecycleStage.CHURNED else stage)
        start = 0 if target == 0 or r() < 0.2 else 1
        path = [STAGE_ORDER[start]]
        path += [s for s in STAGE_ORDER[start + 1:target] if r() < 0.4]
        if target > start:
            path.append(STAGE_ORDER[target])
        if stage == LifecycleStage.CHURNED:
            path.append(LifecycleStage.CHURNED)
        when, previous = p.created, ""
        contact, actor = str(p.id), _id(p.owner)
        for step, to_stage in enumerate(path):
            if step:
                when += (self.now - when) * r() * 0.5
            batch.lifecycle.append("\t".join((contact, previous, to_stage, _ts(when), actor)))
            previous = to_stage
        return when

    def _activities(self, p: _Person, batch: _Batch, scale: float) -> float | None:
        """Activities spread between the contact's creation and now; returns the last activity time.

        Like the services: a call, e-mail, meeting or note counts as activity when it happened; a task
        when it was ticked done.
        """
        r = self.rng.random
        k = self.k * scale
        count = int(r() * (math.floor(2 * k) + 1)) if k >= 0.5 else int(r() < k)
        if not count:
            return None
        subjects, bodies, reps = SUBJECTS[p.lang], BODIES[p.lang], self.rep_ids
        contact, company, team = str(p.id), _id(p.company), _id(p.team)
        now, span, last = self.now, self.now - p.created, None
        append = batch.activities.append
        for _ in range(count):
            kind = KIND_TABLE[int(r() * len(KIND_TABLE))]
            occurred = p.created + span * r()
            owner = str(p.owner or reps[int(r() * len(reps))])
            options = subjects[kind]
            subject, body, at = options[int(r() * len(options))], bodies[int(r() * len(bodies))], _ts(occurred)
            if kind == Activity.Kind.TASK:
                due = occurred + 86400 * (0.5 + 13.5 * r())
                done = NULL
                if due < now and r() < 0.85:
                    finished = min(occurred + (due - occurred + 3 * 86400) * r(), now)
                    done = _ts(finished)
                    last = finished if last is None or finished > last else last
                append("\t".join((kind, subject, body, contact, company, owner, team, at, owner, _ts(due), done, at)))
            else:
                last = occurred if last is None or occurred > last else last
                append("\t".join((kind, subject, body, contact, company, owner, team, at, NULL, NULL, NULL, at)))
        return last

    def _consent(self, p: _Person, batch: _Batch) -> None:
        r = self.rng.random
        for channel, share in (("email", 0.4), ("sms", 0.2), ("phone", 0.1)):
            if r() >= share:
                continue
            source = CONSENT_SOURCES[int(r() * len(CONSENT_SOURCES))]
            contact, actor = str(p.id), _id(p.owner)
            granted = p.created + (self.now - p.created) * r() * 0.2
            batch.consent_log.append("\t".join((contact, channel, "granted", source, "", actor, _ts(granted))))
            status, changed = "granted", granted
            if r() < 0.1:
                status, changed = "withdrawn", granted + (self.now - granted) * r()
                batch.consent_log.append(
                    "\t".join((contact, channel, status, "Unsubscribe link", "", NULL, _ts(changed))))
            batch.consents.append("\t".join((contact, channel, status, source, _ts(changed))))

    # -- finishing touches --

    def _company_last_activity(self) -> None:
        """Companies' last activity from their contacts' activities (as activity_log keeps it)."""
        if not self.company_ids:
            return
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {Company._meta.db_table} c SET last_activity_at = GREATEST(c.last_activity_at, s.last)
                FROM (
                    SELECT company_id, MAX(COALESCE(done_at, occurred_at)) AS last
                    FROM {Activity._meta.db_table}
                    WHERE company_id BETWEEN %s AND %s AND (kind <> 'task' OR done_at IS NOT NULL)
                    GROUP BY company_id
                ) s
                WHERE c.id = s.company_id
                """,
                [min(self.company_ids), max(self.company_ids)],
            )

    def _home_page_tasks(self) -> None:
        """Give ``rep`` something to do today: overdue, due-today and upcoming tasks, and recent calls."""
        rep = self.users["rep"]
        contacts = list(Contact.objects.filter(owner=rep).order_by("-id")[:12])
        if not contacts:
            return
        now = timezone.now()
        rows, touched = [], []
        for (days, subject), contact in zip(REP_TASKS, contacts, strict=False):
            rows.append(Activity(
                kind=Activity.Kind.TASK, subject=subject, contact=contact, company_id=contact.company_id,
                owner=rep, team_id=contact.team_id, occurred_at=now - timedelta(days=12), assignee=rep,
                due_at=now + timedelta(days=days), created_at=now - timedelta(days=12),
            ))
        for (kind, subject, days_ago), contact in zip(REP_RECENT, contacts, strict=False):
            when = now - timedelta(days=days_ago)
            rows.append(Activity(
                kind=kind, subject=subject, contact=contact, company_id=contact.company_id, owner=rep,
                team_id=contact.team_id, occurred_at=when, created_at=when,
            ))
            touched.append((contact, when))
        with transaction.atomic():
            Activity.objects.bulk_create(rows)
            for contact, when in touched:
                Contact.objects.filter(pk=contact.pk).update(last_activity_at=Greatest(F("last_activity_at"), when))
                if contact.company_id:
                    Company.objects.filter(pk=contact.company_id).update(
                        last_activity_at=Greatest(F("last_activity_at"), when))
        self.summary.activities += len(rows)

    def _analyze(self) -> None:
        """Fresh planner statistics (and, after a big load, a visibility map for index-only scans)."""
        vacuum = self.total >= 50_000 and not connection.in_atomic_block
        with connection.cursor() as cursor:
            for model in BULK_MODELS:
                table = model._meta.db_table
                if vacuum:
                    self.progress(f"vacuum analyze {table} ({self._elapsed()})")
                cursor.execute(f"{'VACUUM ANALYZE' if vacuum else 'ANALYZE'} {table}")


BIRTH_START = date(1960, 1, 1)
# ``rep``'s to-do list on the home page: (days from now until due, subject).
REP_TASKS = [(-9, "Teklifi gönder"), (-4, "Geri ara"), (-2, "Sözleşmeyi hazırla"), (-1, "Demo ayarla"),
             (0.2, "Ödeme hatırlatması yap"), (1, "Referans bilgilerini iste"), (3, "Teklif takibi"),
             (7, "Yenileme görüşmesi planla")]
REP_RECENT = [(Activity.Kind.CALL, "Tanışma görüşmesi", 0.1), (Activity.Kind.NOTE, "Bütçe onayı bekleniyor", 0.5),
              (Activity.Kind.EMAIL, "Teklif gönderildi", 1), (Activity.Kind.MEETING, "Demo toplantısı", 2)]
BULK_MODELS = [Company, Company.tags.through, Contact, Contact.tags.through, LifecycleChange, Consent, ConsentLog,
               Activity]


# --- COPY and bulk loading -----------------------------------------------------------------------


def _reserve_ids(model, count: int) -> list[int]:
    """Take ``count`` ids from the table's sequence, so rows can refer to each other before they exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


_DEFAULTS_CACHE: dict = {}


def _defaults(model, columns: tuple[str, ...]) -> tuple[list[str], str]:
    """Constant values for the fields the generator does not write (fields added later, with defaults)."""
    key = (model, columns)
    if key not in _DEFAULTS_CACHE:
        extra_columns, extra_values = [], []
        for f in model._meta.concrete_fields:
            if f.column in columns or f.primary_key:
                continue
            if f.has_default():
                value = f.get_default()
                if isinstance(value, dict | list):
                    value = json.dumps(value)
                elif isinstance(value, bool):
                    value = "t" if value else "f"
                elif hasattr(value, "isoformat"):
                    value = value.isoformat()
                value = NULL if value is None else _text(str(value))
            elif f.null:
                value = NULL
            elif getattr(f, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
                continue
            else:
                raise RuntimeError(f"seed_demo does not know how to fill {model.__name__}.{f.name}; teach demo.py.")
            extra_columns.append(f.column)
            extra_values.append(value)
        _DEFAULTS_CACHE[key] = (extra_columns, "".join(f"\t{v}" for v in extra_values))
    return _DEFAULTS_CACHE[key]


def _copy(model, columns: tuple[str, ...], lines: list[str]) -> tuple[str, str] | None:
    """The COPY statement and data for ``lines`` (None when there are none)."""
    if not lines:
        return None
    extra_columns, suffix = _defaults(model, columns)
    data = f"{suffix}\n".join(lines) + f"{suffix}\n"
    names = ", ".join(connection.ops.quote_name(c) for c in (*columns, *extra_columns))
    return f"COPY {model._meta.db_table} ({names}) FROM STDIN", data


def _copy_m2m(through, owner_column: str, pairs: list[tuple]) -> tuple[str, str] | None:
    if not pairs:
        return None
    other = next(f.column for f in through._meta.concrete_fields if not f.primary_key and f.column != owner_column)
    data = "".join(f"{a}\t{b}\n" for a, b in dict.fromkeys(pairs))
    return f"COPY {through._meta.db_table} ({owner_column}, {other}) FROM STDIN", data


class _Copier:
    """Runs a batch's COPY statements on a worker thread while Python generates the next batch.

    Same database connection, so same transaction: PostgreSQL writes batch n on one core while the
    generator builds batch n + 1 on the other. The main thread must not use the connection until
    :meth:`wait` (only the bulk load uses this, and it reserves its ids before generating).
    """

    def __init__(self):
        connection.ensure_connection()
        self.raw = connection.connection
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-copy")
        self.pending: Future | None = None

    def submit(self, statements: list[tuple[str, str]]) -> None:
        self.wait()
        self.pending = self.pool.submit(self._run, statements)

    def _run(self, statements: list[tuple[str, str]]) -> None:
        with self.raw.cursor() as cursor:
            for sql, data in statements:
                cursor.copy_expert(sql, io.StringIO(data))

    def wait(self) -> None:
        """Block until the batch in flight is written; re-raise its error, if any."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown()


@contextmanager
def _set_aside(models, progress: Callable[[str], None], elapsed: Callable[[], str]):
    """Drop the tables' secondary indexes and foreign keys, and rebuild them after the load.

    Must run inside the load's transaction: if anything fails, the rollback brings every index and
    constraint back, so nothing is ever dropped for good. Unique indexes and primary keys stay (they
    guard the data while it goes in). Re-adding a foreign key checks all rows in one join, which is
    much cheaper than a trigger per inserted row.
    """
    assert connection.in_atomic_block, "_set_aside must run inside transaction.atomic()"
    quote = connection.ops.quote_name
    indexes, foreign_keys = [], []
    with connection.cursor() as cursor:
        # Deferred foreign-key checks already queued in this transaction would block ALTER TABLE: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for model in models:
            table = model._meta.db_table
            cursor.execute(
                """
                SELECT %s, c.relname, pg_get_indexdef(i.indexrelid)
                FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary
                ORDER BY c.relname
                """,
                [table, table],
            )
            indexes += cursor.fetchall()
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                [table],
            )
            foreign_keys += [(table, name, definition) for name, definition in cursor.fetchall()]
        for table, name, _definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for _table, name, _definition in indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
    progress(f"set aside {len(indexes)} indexes and {len(foreign_keys)} foreign keys until the load is done")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for model in models:
            table = model._meta.db_table
            own_indexes = [definition for owner, _name, definition in indexes if owner == table]
            own_keys = [(name, definition) for owner, name, definition in foreign_keys if owner == table]
            if not own_indexes and not own_keys:
                continue
            progress(f"{table}: rebuilding {len(own_indexes)} indexes, checking {len(own_keys)} foreign keys "
                     f"({elapsed()})")
            for definition in own_indexes:
                cursor.execute(definition)
            for name, definition in own_keys:
                cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
