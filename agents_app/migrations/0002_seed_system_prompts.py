from django.db import migrations


def seed(apps, schema_editor):
    from agents_app.prompts import TEMPLATES

    SystemPrompt = apps.get_model("agents_app", "SystemPrompt")
    for (name, industry, language), content in TEMPLATES.items():
        SystemPrompt.objects.get_or_create(
            tenant=None,
            name=name,
            industry=industry,
            language=language,
            version=1,
            defaults={"content": content, "is_active": True},
        )


class Migration(migrations.Migration):
    dependencies = [("agents_app", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
