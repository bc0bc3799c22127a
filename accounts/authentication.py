"""Token authentication against hashed, revocable tokens (`Authorization: Token <key>`)."""

from datetime import timedelta

from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from .models import ApiToken


class HashedTokenAuthentication(authentication.TokenAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        result = super().authenticate(request)
        # The browser's middleware runs before DRF knows the token's user: answer in the user's saved language
        # here, unless the caller asked for one with Accept-Language.
        if result is not None and result[0].language and "HTTP_ACCEPT_LANGUAGE" not in request.META:
            translation.activate(result[0].language)
            request._request.LANGUAGE_CODE = result[0].language
        return result

    def authenticate_credentials(self, key):
        token = ApiToken.objects.active().select_related("user", "user__team").filter(key_hash=ApiToken.hash(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token."))
        now = timezone.now()
        # Record use at most once a minute, so a busy integration does not write on every call.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
