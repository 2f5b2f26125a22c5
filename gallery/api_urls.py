"""URLs of the read API; the site mounts them under ``api/``."""

from django.urls import path, re_path

from gallery import api_views

app_name = "api"
urlpatterns = [
    path("images", api_views.image_list, name="image-list"),
    path("images/<str:image_id>", api_views.image_detail, name="image-detail"),
    re_path(r"^(?P<path>.*)$", api_views.no_route),
]
