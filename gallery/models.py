"""A stand-in model so that Django's admin and permissions can speak about images.

Images live in DynamoDB (pipeline.records.ImageRecord), not in Django's database: this model is unmanaged
and has no table. It exists for the admin index entry, the view/change/delete permissions plus
"reprocess", and admin log entries; gallery.admin overrides every admin view so no SQL ever touches it.
"""

from django.db import models


class Image(models.Model):
    id = models.CharField(primary_key=True, max_length=26)
    title = models.CharField(max_length=200, blank=True)

    class Meta:
        managed = False
        db_table = "gallery_image_in_dynamodb"  # never created, never queried
        default_permissions = ("view", "change", "delete")
        permissions = [("reprocess_image", "Can reprocess images")]
        verbose_name = "image"
        verbose_name_plural = "images"

    def __str__(self) -> str:
        return self.title or self.id
