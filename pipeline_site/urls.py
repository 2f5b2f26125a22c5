"""The site's URLs: the gallery and upload pages, the read API under api/, and the admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from gallery import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("gallery.api_urls")),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("", include("gallery.urls")),
]

if settings.LOCAL_CDN:
    # No CloudFront locally: serve the bucket's public/ prefix where CDN_URL points (http://127.0.0.1:8000/cdn).
    urlpatterns.append(path(f"{views.local_cdn_prefix()}<path:path>", views.local_cdn, name="local-cdn"))

handler404 = "gallery.views.not_found"
handler400 = "gallery.views.bad_request"
