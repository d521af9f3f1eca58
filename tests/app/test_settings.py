"""Settings: parsing, validation, and that every setting is documented for operators."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigurationError
from app.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [f"PLEIN_{name.upper()}" for name in Settings.model_fields
               if f"`PLEIN_{name.upper()}`" not in text]
    assert missing == []
    assert all(field.description for field in Settings.model_fields.values())


def test_env_is_parsed_with_types(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "PLEIN_DATA_DIR": str(tmp_path),
        "PLEIN_OPEN_REGISTRATION": "off",
        "PLEIN_MAX_UPLOAD_BYTES": "1024",
        "PLEIN_ALLOWED_ORIGINS": "https://a.example, https://b.example/",
    })
    assert settings.data_dir == tmp_path
    assert settings.open_registration is False
    assert settings.max_upload_bytes == 1024
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.resolved_database_url.endswith("plein.sqlite3")
    assert settings.resolved_key_file == tmp_path / "keys.json"


def test_flags_override_env(tmp_path: Path) -> None:
    settings = Settings.from_env({"PLEIN_PORT": "9000"}, port=9100, data_dir=tmp_path)
    assert settings.port == 9100


@pytest.mark.parametrize(("name", "value"), [
    ("PLEIN_PORT", "eighty"),
    ("PLEIN_OPEN_REGISTRATION", "maybe"),
    ("PLEIN_DEFAULT_LANGUAGE", "fr"),
    ("PLEIN_ARGON2_MEMORY_KIB", "1024"),
    ("PLEIN_MAX_UPLOAD_BYTES", "0"),
    ("PLEIN_REQUIRE_EMAIL_VERIFICATION", "sometimes"),
    ("PLEIN_REQUIRE_EMAIL_VERIFICATION", "on"),  # without SMTP nobody could ever sign in
    ("PLEIN_PASSWORD_RESET_MINUTES", "0"),
    ("PLEIN_PAGE_SIZE", "501"),  # larger than PLEIN_MAX_PAGE_SIZE: no list would answer
])
def test_bad_values_are_clear_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env({name: value})


def test_secure_cookies_follow_https_base_url() -> None:
    assert Settings(base_url="https://plein.example.nl").cookies_secure
    assert not Settings().cookies_secure
    assert Settings(secure_cookies=True).cookies_secure


def test_email_verification_is_required_when_mail_can_be_sent() -> None:
    smtp = "smtp://127.0.0.1:2525"
    assert not Settings().email_verification_required
    assert Settings(smtp_url=smtp).email_verification_required
    assert not Settings(smtp_url=smtp, require_email_verification="off").email_verification_required
    assert Settings(smtp_url=smtp, require_email_verification="on").email_verification_required


def test_configuration_doc_is_current() -> None:
    from app.settings_doc import render

    assert DOC.read_text() == render(), "run: python -m app.settings_doc > docs/configuration.md"


def test_errors_name_the_variable_and_the_rule() -> None:
    with pytest.raises(ConfigurationError, match=r"^PLEIN_INDEXER must be inprocess or external$"):
        Settings.from_env({"PLEIN_INDEXER": "sometimes"})
    with pytest.raises(ConfigurationError, match=r"^PLEIN_PORT: "):
        Settings.from_env({"PLEIN_PORT": "eighty"})
    with pytest.raises(ConfigurationError, match="PLEIN_SEARCH_THREADS must be positive"):
        Settings.from_env({"PLEIN_SEARCH_THREADS": "0"})
    with pytest.raises(ConfigurationError, match="PLEIN_SMTP_URL must start with smtp://"):
        Settings.from_env({"PLEIN_SMTP_URL": "http://mail.example"})


def test_empty_variables_keep_the_default_and_booleans_are_lenient_on_case() -> None:
    settings = Settings.from_env({"PLEIN_PORT": "", "PLEIN_SECURE_COOKIES": " On "})
    assert settings.port == 8000
    assert settings.secure_cookies is True


def test_settings_built_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLEIN_PORT", "9000")
    assert Settings().port == 8000
    assert Settings.from_env().port == 9000
