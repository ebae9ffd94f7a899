"""Settings of the example shop. The database coordinates are placeholders: under pytest, testbed points
every alias at its own test database."""

SECRET_KEY = "example-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "shop",
    "analytics",
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "HOST": "localhost"},
    "analytics": {"ENGINE": "django.db.backends.postgresql", "NAME": "analytics", "HOST": "localhost"},
}
DATABASE_ROUTERS = ["shopsite.routers.AnalyticsRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
