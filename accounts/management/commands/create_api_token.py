"""Issue, list or revoke API tokens: ``manage.py create_api_token USERNAME [--name NAME]``."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken, User


class Command(BaseCommand):
    help = (
        "Print a new API token for USERNAME (send it as 'Authorization: Token <token>'). Only its hash is "
        "stored, so it is shown once. --revoke PREFIX revokes a token by the first characters shown in "
        "--list; --list shows a user's tokens."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", help="The user the token acts as.")
        parser.add_argument("--name", default="", help="What the token is for, e.g. 'ERP sync'.")
        parser.add_argument("--revoke", metavar="PREFIX", help="Revoke the active token whose key starts so.")
        parser.add_argument("--list", dest="list_tokens", action="store_true", help="List the user's tokens.")

    def handle(self, *args, username=None, name="", revoke=None, list_tokens=False, **options):
        user = self._user(username) if username else None
        if revoke:
            return self._revoke(revoke, user)
        if user is None:
            raise CommandError("Give a USERNAME (or --revoke PREFIX).")
        if list_tokens:
            return self._list(user)
        if not user.is_active:
            raise CommandError(f"User “{username}” is inactive; activate the account before issuing a token.")
        if len(name) > 100:
            raise CommandError("--name: at most 100 characters.")
        token, raw = ApiToken.issue(user=user, name=name)
        self.stderr.write(f"Token {token.prefix}… for {user.username} ({user.get_role_display()}); "
                          "it is shown once — store it now.")
        self.stdout.write(raw)

    def _user(self, username: str) -> User:
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No user with username “{username}”.") from None

    def _revoke(self, prefix: str, user: User | None) -> None:
        tokens = ApiToken.objects.filter(prefix=prefix[:8], revoked_at__isnull=True)
        if user is not None:
            tokens = tokens.filter(user=user)
        tokens = list(tokens.select_related("user"))
        if not tokens:
            raise CommandError(f"No active token starts with “{prefix}”.")
        if len(tokens) > 1:
            raise CommandError(f"{len(tokens)} active tokens start with “{prefix}”; add the USERNAME.")
        token = tokens[0]
        token.revoke()
        self.stdout.write(f"Revoked token {token.prefix}… of {token.user.username}.")

    def _list(self, user: User) -> None:
        for token in ApiToken.objects.filter(user=user):
            state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
            used = f"last used {token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used"
            self.stdout.write(f"{token.prefix}…  {state:<24} {used:<28} {token.name}")
