"""Django's side of the gallery: a stand-in for images, and the upload grants that quotas count.

Images live in DynamoDB (pipeline.records.ImageRecord), not in Django's database: ``Image`` is unmanaged and
has no table. It exists for the admin index entry, the view/change/delete permissions plus "reprocess", "purge"
and "publish" (the publish gate), and admin log entries; gallery.admin overrides every admin view so no SQL ever
touches it. ``UploadGrant`` is a real table: one row per upload form handed out, which gallery.quotas counts.
"""

from django.conf import settings
from django.db import models


class Image(models.Model):
    id = models.CharField(primary_key=True, max_length=26)
    title = models.CharField(max_length=200, blank=True)

    class Meta:
        managed = False
        db_table = "gallery_image_in_dynamodb"  # never created, never queried
        default_permissions = ("view", "change", "delete")
        permissions = [
            ("reprocess_image", "Can reprocess images"),
            ("purge_image", "Can permanently delete images"),
            # The publish gate: uploads skip review, and staff holding it approve or reject others' uploads.
            ("publish_image", "Can publish images without review"),
        ]
        verbose_name = "image"
        verbose_name_plural = "images"

    def __str__(self) -> str:
        return self.title or self.id


class UploadGrant(models.Model):
    """One upload form (presigned POST) handed to a person: what gallery.quotas counts against their quota.

    ``size_bytes`` is the declared size of a file the script sends, or the largest accepted upload for a form
    without JavaScript until the upload is confirmed (then its real size). A grant is open while it is neither
    confirmed nor expired. Grants older than the quota's window are deleted when the person is next granted one.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_grants")
    image_id = models.CharField(max_length=26)
    size_bytes = models.BigIntegerField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="gallery_grant_user_created")]
        verbose_name = "upload grant"
        verbose_name_plural = "upload grants"

    def __str__(self) -> str:
        return f"{self.image_id} ({self.size_bytes} bytes)"
