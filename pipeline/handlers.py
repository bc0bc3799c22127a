"""Event handlers of the pipeline: in-app notices for the people a deal concerns."""

from django.utils.translation import gettext_noop

from crm_okr.events import subscribe
from crm_okr.models import Event


def _notify(event: Event, user_id: int | None, message: str) -> None:
    from accounts.models import Notification

    if not user_id or user_id == event.actor_id:
        return
    Notification.objects.get_or_create(
        event=event, user_id=user_id,
        defaults={"message": message, "params": {"name": event.payload.get("name", "")},
                  "link": f"/deals/{event.subject_id}/"},
    )


@subscribe("notify-deal-owner", "deal.created", "deal.updated", "deal.won", "deal.lost")
def notify_deal_owner(event: Event) -> None:
    """Tell the owner when someone else gives them a deal, or closes one of theirs."""
    owner_id = event.payload.get("owner_id")
    if event.name == "deal.created":
        _notify(event, owner_id, gettext_noop("A deal was assigned to you: %(name)s"))
    elif event.name == "deal.updated":
        if "owner" in event.payload.get("changed", {}):
            _notify(event, owner_id, gettext_noop("A deal was assigned to you: %(name)s"))
    elif event.name == "deal.won":
        _notify(event, owner_id, gettext_noop("Your deal was marked won: %(name)s"))
    else:
        _notify(event, owner_id, gettext_noop("Your deal was marked lost: %(name)s"))
