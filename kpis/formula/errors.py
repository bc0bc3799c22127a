"""The one error the formula language raises: a message a person can act on, with where it happened."""


class FormulaError(ValueError):
    """A formula that cannot be compiled (or evaluated for a dimension it does not support).

    ``position`` and ``end`` are 0-based character offsets into the formula text (``end`` exclusive);
    ``position`` is None when the error is about the formula as a whole.
    """

    def __init__(self, message: str, position: int | None = None, end: int | None = None, *,
                 says_position: bool = False):
        super().__init__(str(message))
        self.message = str(message)
        self.position = position
        self.end = end if end is not None else (None if position is None else position + 1)
        # The message already names ``position`` ("… at position 12 …"): not repeated by with_position().
        self.says_position = says_position

    def __str__(self):
        return self.message

    def with_position(self) -> str:
        """The message followed by "(position N)" when there is one (what forms and the API show) — once: a
        message that already says where ("… at position N …") is shown as it is."""
        from django.utils.translation import gettext as _

        if self.position is None or self.says_position:
            return self.message
        return _("%(message)s (position %(position)s)") % {"message": self.message, "position": self.position}
