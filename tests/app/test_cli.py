"""The ``plein`` command: first run, createuser, and a clear stop when the key file is gone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live import REPO, free_port, running_server


def plein(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLEIN_")}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=REPO, text=True,
                          capture_output=True, env={**clean, **(env or {})}, timeout=60,
                          check=False)


def test_first_run_creates_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data) as server:
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert (data / "plein.sqlite3").exists()
    for name in ("keys.json", "secret"):
        mode = stat.S_IMODE((data / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"


def test_createuser_then_sign_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = plein("createuser", "--data-dir", str(data), "--email", "op@example.nl",
                   "--name", "Operator", "--password", "a long enough password", "--admin")
    assert result.returncode == 0, result.stderr
    assert "site administrator" in result.stdout
    with running_server(data) as server:
        client = server.client()
        assert client.sign_in("op@example.nl", "a long enough password").status_code == 200
        assert client.user and client.user["is_site_admin"] is True
        client.close()


def test_operator_made_accounts_count_as_verified(tmp_path: Path) -> None:
    """With mail configured, new accounts must prove their address before signing in; an
    account the operator makes does not (nor does a second one, which is not the first)."""
    data = tmp_path / "data"
    env = {"PLEIN_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"}
    for name in ("one", "two"):
        result = plein("createuser", "--data-dir", str(data), "--email", f"{name}@example.nl",
                       "--name", name, "--password", "a long enough password", env=env)
        assert result.returncode == 0, result.stderr
    again = plein("createuser", "--data-dir", str(data), "--email", "TWO@example.nl",
                  "--name", "two", "--password", "a long enough password", env=env)
    assert again.returncode != 0 and "Traceback" not in again.stderr
    with running_server(data, env) as server:
        for name in ("one", "two"):
            client = server.client()
            assert client.sign_in(f"{name}@example.nl", "a long enough password"
                                  ).status_code == 200
            assert client.user and client.user["email_verified"] is True
            client.close()


@pytest.mark.parametrize("password", ["short", ""])
def test_createuser_rejects_bad_input(tmp_path: Path, password: str) -> None:
    result = plein("createuser", "--data-dir", str(tmp_path / "d"), "--email", "not-an-email",
                   "--name", "X", "--password", password or "x")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_missing_key_file_is_a_clear_error_and_touches_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert plein("migrate", "--data-dir", str(data)).returncode == 0
    # An existing database without its key file: refusing to start beats creating a new key
    # that could never read the stored files.
    (data / "keys.json").unlink()
    before = (data / "plein.sqlite3").read_bytes()
    result = plein("serve", "--data-dir", str(data), "--port", "1")
    assert result.returncode == 2
    assert "key file" in result.stderr
    assert not (data / "keys.json").exists()
    assert (data / "plein.sqlite3").read_bytes() == before


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data):
        pass
    (data / "keys.json").write_text("{not json")
    result = plein("serve", "--data-dir", str(data), "--port", "1")
    assert result.returncode == 2
    assert "key file" in result.stderr
