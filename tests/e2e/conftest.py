"""Browser fixtures for the end-to-end tests: a headless Debian Chromium driven by Playwright.

A failing test leaves a full-page screenshot in a temporary directory (never in the repository);
its path is printed in the test report.
"""

import os
import tempfile
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
# Bounded waits: every Playwright action and assertion gives up after this many milliseconds.
TIMEOUT_MS = 5_000


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def browser_page(request, monkeypatch):
    """A fresh browser page (own context, so own cookies); screenshot saved if the test fails."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"end-to-end tests need Debian's Chromium at {CHROMIUM}")
    # Playwright's sync API keeps an event loop running in this thread, which Django takes for an async
    # context; the test's own ORM calls are plain synchronous code. Allowed for the e2e test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        page = context.new_page()
        try:
            yield page
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                folder = Path(tempfile.mkdtemp(prefix="crm-okr-e2e-"))
                shot = folder / f"{request.node.name}.png"
                try:
                    page.screenshot(path=str(shot), full_page=True)
                    (folder / f"{request.node.name}.html").write_text(page.content(), encoding="utf-8")
                    print(f"\nE2E failure screenshot: {shot} (url {page.url})")
                except Exception as exc:  # the page may be gone; the test's own error is what matters
                    print(f"\nE2E failure screenshot could not be taken: {exc}")
            context.close()
            browser.close()
            # Inside the Playwright block the ORM runs in another context (greenlet), so it opened its
            # own connection: close it, or the test database cannot be dropped at the end of the run.
            connections.close_all()


@pytest.fixture(autouse=True)
def install_defaults(transactional_db):
    """The rows a fresh install gets from data migrations (default pipeline, lost reasons).

    Transactional tests empty every table when they end, migration data included, so whichever e2e test
    runs second would otherwise start without them.
    """
    import importlib

    from django.apps import apps

    importlib.import_module("pipeline.migrations.0002_defaults").create(apps, None)
