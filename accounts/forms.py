"""Browser forms of the accounts app: sign-in (people only) and the language switch."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from .models import User


class LoginForm(AuthenticationForm):
    """Django's sign-in form, refusing API-only integration accounts with a clear message."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "integration": _(
            "This is an API-only integration account: it cannot sign in to the browser. "
            "Use its API token with the REST API instead."
        ),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if user.role == User.Role.INTEGRATION:
            raise forms.ValidationError(self.error_messages["integration"], code="integration")


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=settings.LANGUAGES)
    next = forms.CharField(required=False, max_length=2000)
