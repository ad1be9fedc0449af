"""First run: `ensure_admin` creates `admin` with a password printed once (or ADMIN_PASSWORD)."""

import re
from io import StringIO

from django.core.management import call_command
from django.test import Client

from accounts.models import User
from accounts.tests.factories import UserFactory


def run() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_creates_admin_with_a_printed_password_that_works(db, monkeypatch):
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)
    output = run()
    password = re.search(r"password: (\S+)", output).group(1)
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": password})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_uses_admin_password_from_environment_without_printing_it(db, monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "from-the-env-passphrase")
    output = run()
    assert "from-the-env-passphrase" not in output
    assert User.objects.get(username="admin").check_password("from-the-env-passphrase")


def test_does_nothing_when_users_exist(db):
    UserFactory()
    assert "not creating" in run()
    assert not User.objects.filter(username="admin").exists()


def test_second_run_does_not_print_a_password_again(db, monkeypatch):
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    run()
    assert "password" not in run()
