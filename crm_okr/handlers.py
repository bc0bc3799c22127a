"""Event handlers of the core: in-app notices. Workflows and webhooks subscribe the same way."""

from django.utils.translation import gettext_noop

from .events import subscribe
from .models import Event


@subscribe("notify-new-owner", "contact.created", "contact.updated")
def notify_new_owner(event: Event) -> None:
    """Tell a rep when someone else gives them a contact (speed to lead starts with knowing)."""
    from accounts.models import Notification

    owner_id = event.payload.get("owner_id")
    if event.name == "contact.updated" and "owner" not in event.payload.get("changed", {}):
        return
    if not owner_id or owner_id == event.actor_id:
        return
    Notification.objects.get_or_create(
        event=event,
        user_id=owner_id,
        defaults={
            "message": gettext_noop("A contact was assigned to you: %(name)s"),
            "params": {"name": event.payload.get("name", "")},
            "link": f"/contacts/{event.subject_id}/",
        },
    )
