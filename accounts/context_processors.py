def notifications(request):
    """The number of unread notices, for the bell in the header (one cheap indexed count)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": user.notifications.filter(read_at__isnull=True).count}
