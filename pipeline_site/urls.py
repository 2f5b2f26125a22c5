"""The site's URLs: the gallery and upload pages, the read API under api/, accounts and the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from gallery import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("gallery.api_urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="gallery/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("", include("gallery.urls")),
]

handler400 = "gallery.views.bad_request"
handler404 = "gallery.views.not_found"
