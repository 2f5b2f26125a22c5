"""The gallery's pages; the site mounts them at the root."""

from django.urls import path

from gallery import library, views

app_name = "gallery"
urlpatterns = [
    path("", views.index, name="index"),
    path("images/<str:image_id>/", views.detail, name="detail"),
    path("upload/", views.upload, name="upload"),
    path("upload/policy/", views.upload_policy, name="upload-policy"),
    path("upload/done/", views.upload_done, name="upload-done"),
    path("upload/dismiss/<str:image_id>/", views.dismiss, name="dismiss"),
    path("my/", library.my_uploads, name="my"),
    path("my/<str:image_id>/edit/", library.edit, name="my-edit"),
    path("my/<str:image_id>/delete/", library.delete, name="my-delete"),
    path("my/<str:image_id>/retry/", library.retry, name="my-retry"),
    path("my/<str:image_id>/status", library.status, name="my-status"),
]
