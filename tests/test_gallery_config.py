"""GALLERY_* settings: no port unless asked, links' base URL and lifetime, a secret that is one, and every bad
value one line naming its setting (exit status 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, settings_from

ROOT = Path(__file__).resolve().parent.parent
VALID = {"DISCORD_TOKEN": "token", "OPENAI_API_KEY": "sk-key"}
SECRET = "s" * 32


def test_without_a_port_there_is_no_gallery() -> None:
    settings = settings_from(VALID)
    assert settings.gallery_port is None
    assert settings.gallery_url is None
    assert (settings.gallery_host, settings.gallery_link_seconds, settings.gallery_secret) == (
        "127.0.0.1",
        86_400,
        None,
    )


def test_the_links_base_url_defaults_to_where_the_gallery_listens() -> None:
    assert settings_from({**VALID, "GALLERY_PORT": "8080"}).gallery_url == "http://127.0.0.1:8080"
    on_ipv6 = settings_from({**VALID, "GALLERY_PORT": "8080", "GALLERY_HOST": "::1"})
    assert on_ipv6.gallery_url == "http://[::1]:8080"
    behind_proxy = settings_from(
        {**VALID, "GALLERY_PORT": "8080", "GALLERY_URL": "https://mural.example/pictures/"}
    )
    assert behind_proxy.gallery_url == "https://mural.example/pictures"


def test_the_gallery_secret_is_a_secret() -> None:
    settings = settings_from({**VALID, "GALLERY_SECRET": SECRET})
    assert settings.gallery_secret == SECRET
    assert SECRET in settings.secrets
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"GALLERY_PORT": "0"}, "GALLERY_PORT"),
        ({"GALLERY_PORT": "65536"}, "GALLERY_PORT"),
        ({"GALLERY_PORT": "http"}, "GALLERY_PORT"),
        ({"GALLERY_URL": "mural.example"}, "GALLERY_URL"),
        ({"GALLERY_URL": "ftp://mural.example"}, "GALLERY_URL"),
        ({"GALLERY_LINK_SECONDS": "0"}, "GALLERY_LINK_SECONDS"),
        ({"GALLERY_LINK_SECONDS": "-60"}, "GALLERY_LINK_SECONDS"),
        ({"GALLERY_LINK_SECONDS": "a day"}, "GALLERY_LINK_SECONDS"),
        ({"GALLERY_SECRET": "s" * 31}, "GALLERY_SECRET"),
        ({"GALLERY_HOST": "local host"}, "GALLERY_HOST"),
    ],
)
def test_a_bad_gallery_value_names_its_setting(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({**VALID, **overrides})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_a_short_secret_is_not_repeated() -> None:
    short = "not-long-enough-SECRET"
    with pytest.raises(ConfigError) as caught:
        settings_from({**VALID, "GALLERY_SECRET": short})
    assert short not in str(caught.value)


def test_a_bad_gallery_port_stops_the_start_with_one_line_and_status_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **VALID, "GALLERY_PORT": "70000"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "GALLERY_PORT" in lines[0], result.stderr
