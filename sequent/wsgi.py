import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequent.settings")
django_application = get_wsgi_application()

# Imported once Django is set up: tracking hits (/t/) skip Django's middleware; every
# other path goes to Django.
from sequent.mail.tracking_wsgi import with_tracking  # noqa: E402

application = with_tracking(django_application)
