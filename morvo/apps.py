from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class MorvoConfig(AppConfig):
    name = "morvo"
    verbose_name = "Morvo"
    default_auto_field = "django.db.models.BigAutoField"


class MorvoAdminConfig(AdminConfig):
    default_site = "morvo.admin_site.MorvoAdminSite"
