"""The Django process of the local stack: ``python -m local_stack.django_server <port>``.

Migrates, makes sure the staff login the parent chose exists (LOCAL_ADMIN_USER / LOCAL_ADMIN_PASSWORD),
then serves with ``runserver`` (threaded, no autoreload: the parent owns the process).
"""

from __future__ import annotations

import os
import signal
import sys

from local_stack.config import LOCALHOST


def die_with_parent() -> None:
    """On Linux, have the kernel stop this process if the stack is killed (kill -9 included)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        sys.exit(0)


def ensure_admin(username: str, password: str) -> None:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": True, "email": f"{username}@localhost"}
    )
    changed = not (user.is_staff and user.is_superuser and user.is_active)
    user.is_staff = user.is_superuser = user.is_active = True
    if created or not user.check_password(password):
        user.set_password(password)
        changed = True
    if changed:
        user.save()


def main(port: str) -> None:
    die_with_parent()
    # A terminal's Ctrl-C reaches the whole process group; the stack stops this process itself (SIGTERM), first
    # in its shutdown order, so a second signal cannot land in the middle of Python's own exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipeline_site.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    ensure_admin(os.environ["LOCAL_ADMIN_USER"], os.environ["LOCAL_ADMIN_PASSWORD"])
    call_command("runserver", f"{LOCALHOST}:{port}", use_reloader=False, skip_checks=True)


if __name__ == "__main__":
    main(sys.argv[1])
