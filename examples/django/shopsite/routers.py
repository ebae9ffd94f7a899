class AnalyticsRouter:
    """Analytics events live in their own database."""

    def db_for_read(self, model, **hints):  # type: ignore[no-untyped-def]
        return "analytics" if model._meta.app_label == "analytics" else "default"

    db_for_write = db_for_read

    def allow_migrate(self, db, app_label, model_name=None, **hints):  # type: ignore[no-untyped-def]
        return (app_label == "analytics") == (db == "analytics")
