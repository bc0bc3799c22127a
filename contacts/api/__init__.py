"""The contacts REST API (/api/v1/): contacts, companies, activities, tags, lead sources, custom fields.

Viewsets are thin doors: reads start from the selectors (visibility in one place), writes call
``contacts.services`` (the rules), serializers check only types and shape.
"""
