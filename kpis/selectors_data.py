"""Reads of the data people and integrations supply (survey responses, metrics, exchange rates), scoped by
visibility: a survey response is seen by whoever sees its contact (admins and integrations see every one,
including answers without a contact). Metrics and exchange rates are company figures everyone signed in reads.
"""

from django.db.models import Q, QuerySet

from accounts.models import User
from accounts.selectors import visible_team_ids

from .models import SurveyResponse


def survey_responses_visible_to(user: User) -> QuerySet[SurveyResponse]:
    qs = SurveyResponse.objects.all()
    team_ids = visible_team_ids(user)
    if team_ids is None:
        return qs
    # The contacts' rule (contacts.selectors.contacts_visible_to) through the join, so no subquery per row.
    return qs.filter(Q(contact__team_id__in=team_ids) | Q(contact__owner_id=user.id))
