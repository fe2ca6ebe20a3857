from django.db import migrations


class Migration(migrations.Migration):
    """The channel layer sends to a group with ``... FROM channels_postgres_groupchannel WHERE
    group_key = %s`` and leaves one with ``WHERE group_key = %s AND channel = %s``; the table
    (channels-postgres's own) has no index for either, so every send read the whole table."""

    dependencies = [
        ("morvo", "0002_throttle_window"),
        ("channels_postgres", "0004_notify_ensure_payload_not_too_big"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS morvo_groupchannel_group_key_channel "
            "ON channels_postgres_groupchannel (group_key, channel)",
            "DROP INDEX IF EXISTS morvo_groupchannel_group_key_channel",
        ),
    ]
