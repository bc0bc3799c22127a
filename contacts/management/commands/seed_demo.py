"""``manage.py seed_demo``: demo and scale data (see contacts/demo.py)."""

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from contacts.demo import DemoSeeder
from pipeline.demo import DealSeeder, describe


class Command(BaseCommand):
    help = (
        "Generate realistic demo data: teams, the demo users (admin, manager, rep, rep2 and a few more reps), "
        "lead sources, tags, custom fields, companies, Turkish and English contacts (with some near-duplicates on "
        "purpose), lifecycle history, consent and activities over the last two years. Bulk-loaded with COPY: a "
        "million contacts take minutes. Running it again is safe: teams, lists and users are reused (the users' "
        "password is set to --password), and when the database already has contacts nothing more is added unless "
        "--append is given. Refuses to run when ENVIRONMENT=production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=2000, help="How many contacts to add (default 2000).")
        parser.add_argument("--password", default="demo", help="Password of the demo users (default: demo).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed, for repeatable data (default 42).")
        parser.add_argument(
            "--activities-per-contact", type=float, default=3, metavar="K",
            help="Average number of activities per contact (default 3).",
        )
        parser.add_argument(
            "--append", action="store_true",
            help="Add the contacts even when the database already has some (e-mail addresses stay unique).",
        )
        parser.add_argument(
            "--bulk", action=argparse.BooleanOptionalAction, default=None,
            help="Load in one transaction with secondary indexes and foreign keys set aside and rebuilt at the end "
            "(default: on from 100,000 contacts). Other sessions wait for these tables until it commits.",
        )
        parser.add_argument("--batch-size", type=int, default=20_000, help="Contacts per transaction (default 20000).")
        parser.add_argument(
            "--deals", type=int, default=None,
            help="How many deals to add, in the pipelines \"New business\" and \"Renewals\" (default: a fifth of "
            "--contacts). Added when the database has no deals yet, or with --append. Written through the "
            "pipeline services, or with COPY from 20,000 deals on (or with --bulk).",
        )
        parser.add_argument(
            "--open-deals", type=int, default=None, metavar="N",
            help="How many of the deals are still open, a fifth of them stale (default: 45 %% of them, at most "
            "5,000); the rest are won or lost.",
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="The address printed at the end.")

    def handle(self, *args, **options):
        if getattr(settings, "ENVIRONMENT", "production") == "production":
            raise CommandError(
                "seed_demo refuses to run with ENVIRONMENT=production: it would mix invented people into real data. "
                "Run it against a development, test or benchmark database (ENVIRONMENT=development)."
            )
        if options["contacts"] < 0:
            raise CommandError(f"--contacts must be 0 or more (got {options['contacts']}).")
        if options["activities_per_contact"] < 0:
            raise CommandError(f"--activities-per-contact must be 0 or more (got {options['activities_per_contact']}).")
        if options["deals"] is not None and options["deals"] < 0:
            raise CommandError(f"--deals must be 0 or more (got {options['deals']}).")
        if options["open_deals"] is not None and options["open_deals"] < 0:
            raise CommandError(f"--open-deals must be 0 or more (got {options['open_deals']}).")
        if not options["password"]:
            raise CommandError("--password must not be empty.")

        def progress(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        seeder = DemoSeeder(
            contacts=options["contacts"], password=options["password"], seed=options["seed"],
            activities_per_contact=options["activities_per_contact"], batch_size=options["batch_size"],
            append=options["append"], bulk=options["bulk"], progress=progress,
        )
        summary = seeder.run()
        deals = DealSeeder(
            deals=options["contacts"] // 5 if options["deals"] is None else options["deals"],
            open_deals=options["open_deals"], seed=options["seed"], bulk=options["bulk"], append=options["append"],
            batch_size=options["batch_size"], progress=progress,
        ).run()
        if summary.skipped_existing:
            self.stdout.write(self.style.WARNING(
                f"The database already has {summary.skipped_existing:,} contacts: no demo contacts added "
                f"(pass --append to add {options['contacts']:,} more). Demo users checked."
            ))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Done in {summary.seconds:.0f} s: {len(summary.teams)} teams, {summary.companies:,} companies, "
                f"{summary.contacts:,} contacts ({summary.duplicates:,} near-duplicates on purpose), "
                f"{summary.activities:,} activities."
            ))
        if deals.deals or deals.skipped_existing:
            self.stdout.write(self.style.SUCCESS(describe(deals)) if deals.deals else describe(deals))
        from kpis import demo as kpi_demo  # the KPIs' survey answers, spend, rates and forecast history

        self.stdout.write(kpi_demo.describe(kpi_demo.KpiDemoSeeder(seed=options["seed"], progress=progress).run()))
        from okrs.demo import seed_demo_okrs  # this quarter's OKRs: the sales template for the manager's team

        self.stdout.write(seed_demo_okrs())
        self.stdout.write(f"\nOpen {options['url']} and log in as (password: {options['password']}):")
        for user in summary.users:
            team = f", {user.team.name}" if user.team_id else ""
            self.stdout.write(f"  {user.username:<9} {user.get_role_display()}{team}")
