"""The gallery's pages; the site mounts them at the root."""

from django.urls import path

from gallery import views

app_name = "gallery"
urlpatterns = [
    path("", views.index, name="index"),
    path("images/<str:image_id>/", views.detail, name="detail"),
    path("upload/", views.upload, name="upload"),
    path("upload/policy/", views.upload_policy, name="upload-policy"),
    path("upload/done/", views.upload_done, name="upload-done"),
    path("upload/dismiss/<str:image_id>/", views.dismiss, name="dismiss"),
]
