"""Browser pages of the accounts app: sign-in, the language switch and in-app notifications."""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm_okr.pagination import SortOption, paginate

from .forms import LanguageForm, LoginForm
from .models import Notification, User

NOTIFICATIONS_PAGE_SIZE = 50
NEWEST = SortOption("newest", "created_at", descending=True)


def browser_user_required(view):
    """Signed-in people only: integration accounts use the API, never the browser pages."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if request.user.role == User.Role.INTEGRATION:
            raise PermissionDenied(_("Integration accounts cannot use the browser pages."))
        return view(request, *args, **kwargs)

    return wrapper


class LoginView(auth_views.LoginView):
    authentication_form = LoginForm
    redirect_authenticated_user = True


def _safe_next(request, candidate: str | None, fallback: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


@require_POST
def set_language(request):
    """Switch the interface language: saved on the user (so it follows them) and in the language cookie."""
    form = LanguageForm(request.POST)
    fallback = request.META.get("HTTP_REFERER") or "/"
    if not form.is_valid():
        messages.error(request, _("Choose one of the offered languages."))
        return HttpResponseRedirect(_safe_next(request, fallback, "/"))
    language = form.cleaned_data["language"]
    if request.user.is_authenticated and request.user.language != language:
        request.user.language = language
        request.user.save(update_fields=["language"])
    translation.activate(language)
    response = HttpResponseRedirect(_safe_next(request, form.cleaned_data["next"] or fallback, "/"))
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language,
        max_age=settings.LANGUAGE_COOKIE_AGE, path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN, secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY, samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response


@browser_user_required
def notifications(request):
    """The user's notices, newest first, a page at a time."""
    qs = Notification.objects.filter(user=request.user)
    try:
        page = paginate(qs, sort=NEWEST, cursor=request.GET.get("cursor"), page_size=NOTIFICATIONS_PAGE_SIZE)
    except ValidationError:
        messages.error(request, _("That page link is no longer valid; showing the newest notifications."))
        page = paginate(qs, sort=NEWEST, cursor=None, page_size=NOTIFICATIONS_PAGE_SIZE)
    return render(request, "accounts/notifications.html", {"page": page})


@require_POST
@browser_user_required
def notification_read(request, pk: int):
    """Mark one notice read; someone else's notice is a 404."""
    notice = get_object_or_404(Notification, pk=pk, user=request.user)
    Notification.objects.filter(pk=notice.pk, read_at__isnull=True).update(read_at=timezone.now())
    return redirect("notifications")


@browser_user_required
def notification_open(request, pk: int):
    """Follow a notice's link and mark it read on the way."""
    notice = get_object_or_404(Notification, pk=pk, user=request.user)
    if notice.read_at is None:
        Notification.objects.filter(pk=notice.pk, read_at__isnull=True).update(read_at=timezone.now())
    link = notice.link if notice.link.startswith("/") else ""
    return redirect(_safe_next(request, link, "/notifications/"))


@require_POST
@browser_user_required
def notifications_read_all(request):
    count = Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
    if count:
        messages.success(request, _("All notifications marked read."))
    return redirect("notifications")
