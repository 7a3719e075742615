import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = 'django-insecure-uew9ju&3(&s42%knsw5@ulp-(ri^wqqmbv&(r)=ohpt*!cptfa'
DEBUG = False
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': 'mysite',
        'USER': 'mysite',
        'PASSWORD': '9FKftBgsRGJN1E^52',
        'HOST': 'db',
    }
}
CELERY_BROKER_URL = 'amqp://mysite:ehjdMxeAbqd7D#08@rabbit:5672//'
SENTRY_DSN = os.environ.get('SENTRY_DSN')
