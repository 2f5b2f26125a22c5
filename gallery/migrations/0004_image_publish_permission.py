from django.db import migrations


class Migration(migrations.Migration):
    """The permission to publish images without review (the publish gate, PUBLISH_REVIEW); the model stays
    unmanaged."""

    dependencies = [
        ("gallery", "0003_image_purge_permission"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="image",
            options={
                "default_permissions": ("view", "change", "delete"),
                "managed": False,
                "permissions": [
                    ("reprocess_image", "Can reprocess images"),
                    ("purge_image", "Can permanently delete images"),
                    ("publish_image", "Can publish images without review"),
                ],
                "verbose_name": "image",
                "verbose_name_plural": "images",
            },
        ),
    ]
