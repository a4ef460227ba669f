"""Settings: defaults, validation, and how `python -m bot` reports a bad configuration."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.config import CATALOGUE, ConfigError, load_settings, settings_from, shard_list

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.secret-discord-token"
KEY = "sk-test-secret-openai-key-123456"
DB_PASSWORD = "hunter2-database-password"
VALID = {"DISCORD_TOKEN": TOKEN, "OPENAI_API_KEY": KEY}


def test_defaults_are_sane() -> None:
    settings = settings_from(VALID)
    assert settings.image_model == "gpt-image-2"
    assert settings.image_size == "1024x1024"
    assert settings.image_quality == "medium"
    assert settings.chat_model == "gpt-5.4-mini"
    assert settings.database_path == Path("mural.db")
    assert settings.dev_guild_id is None
    assert settings.render_concurrency == 4


def test_secrets_stay_out_of_repr() -> None:
    settings = settings_from({**VALID, "CHAT_API_KEY": "chat-secret-key"})
    assert TOKEN not in repr(settings)
    assert KEY not in repr(settings)
    assert "chat-secret-key" not in repr(settings)
    assert set(settings.secrets) == {TOKEN, KEY, "chat-secret-key"}


def test_a_prices_file_overrides_the_built_in_table(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[chat."gpt-5.4-mini"]\ninput = 1.5\noutput = 6\n')
    settings = settings_from({**VALID, "PRICES_FILE": str(prices)})
    assert settings.prices.chat_cost("gpt-5.4-mini", input_tokens=1_000_000, output_tokens=0) == 1.5
    prices.write_text("[chat")
    with pytest.raises(ConfigError, match=r"PRICES_FILE: .* is not valid TOML"):
        settings_from({**VALID, "PRICES_FILE": str(prices)})


def test_real_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        f"DISCORD_TOKEN={TOKEN}\nOPENAI_API_KEY={KEY}\nIMAGE_QUALITY=low\nCHAT_MODEL=from-dotenv\n"
    )
    for name in ("DISCORD_TOKEN", "OPENAI_API_KEY", "IMAGE_QUALITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHAT_MODEL", "from-environment")
    settings = load_settings(dotenv)
    assert settings.image_quality == "low"
    assert settings.chat_model == "from-environment"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DISCORD_TOKEN": ""}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": "two words"}, "DISCORD_TOKEN"),
        ({"OPENAI_API_KEY": "   "}, "OPENAI_API_KEY"),
        ({"OPENAI_BASE_URL": "localhost:8080"}, "OPENAI_BASE_URL"),
        ({"CHAT_BASE_URL": "ftp://example"}, "CHAT_BASE_URL"),
        ({"IMAGE_SIZE": "1000x1000"}, "IMAGE_SIZE"),
        ({"IMAGE_SIZE": "big"}, "IMAGE_SIZE"),
        ({"IMAGE_MODEL": "dall-e-3", "IMAGE_SIZE": "1536x1024"}, "IMAGE_SIZE"),
        ({"IMAGE_MODEL": "dall-e-2", "IMAGE_SIZE": "1024x1536"}, "IMAGE_SIZE"),
        ({"IMAGE_QUALITY": "ultra"}, "IMAGE_QUALITY"),
        ({"IMAGE_MODEL": "bad model id"}, "IMAGE_MODEL"),
        ({"DEV_GUILD_ID": "my-server"}, "DEV_GUILD_ID"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"CHAT_TIMEOUT": "soon"}, "CHAT_TIMEOUT"),
        ({"IMAGE_TIMEOUT": "0"}, "IMAGE_TIMEOUT"),
        ({"RENDER_CONCURRENCY": "1.5"}, "RENDER_CONCURRENCY"),
        ({"PRICES_FILE": "/nonexistent/prices.toml"}, "PRICES_FILE"),
        ({"SAFETY_SALT": "short"}, "SAFETY_SALT"),
    ],
)
def test_bad_value_names_the_variable(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({**VALID, **overrides})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_custom_size_allowed_on_current_gpt_image() -> None:
    assert settings_from({**VALID, "IMAGE_SIZE": "2048x1152"}).image_size == "2048x1152"


def test_legacy_sizes_accepted_for_dalle() -> None:
    settings = settings_from(
        {
            **VALID,
            "OPENAI_BASE_URL": "http://localai.lan:8080/v1",
            "IMAGE_MODEL": "dall-e-3",
            "IMAGE_SIZE": "1792x1024",
            "IMAGE_QUALITY": "high",
        }
    )
    assert settings.image_size == "1792x1024"


TODAY = date(2026, 11, 30)


@pytest.mark.parametrize("model", ["gpt-image-1", "dall-e-3", "dall-e-2"])
def test_a_model_openai_has_retired_is_refused_before_anything_connects(model: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({**VALID, "IMAGE_MODEL": model, "IMAGE_SIZE": "1024x1024"}, today=TODAY)
    assert caught.value.variable == "IMAGE_MODEL"
    assert "retired" in str(caught.value) and "IMAGE_MODEL=gpt-image-2" in str(caught.value)
    with pytest.raises(ConfigError, match="IMAGE_MODELS: gpt-image-1 was retired"):
        settings_from({**VALID, "IMAGE_MODELS": "gpt-image-2.5-flare, gpt-image-1"}, today=TODAY)


def test_a_model_retiring_soon_or_served_elsewhere_is_a_warning() -> None:
    soon = settings_from({**VALID, "IMAGE_MODEL": "gpt-image-1.5"}, today=TODAY)
    assert soon.warnings == (
        "IMAGE_MODEL: gpt-image-1.5 retires at OpenAI on 2026-12-01; set IMAGE_MODEL=gpt-image-2 before then",
    )
    with pytest.raises(ConfigError):
        settings_from({**VALID, "IMAGE_MODEL": "gpt-image-1.5"}, today=date(2026, 12, 1))
    elsewhere = settings_from(
        {**VALID, "IMAGE_MODEL": "dall-e-3", "OPENAI_BASE_URL": "http://localai.lan:8080/v1"}, today=TODAY
    )
    assert "only because OPENAI_BASE_URL names another server" in elsewhere.warnings[0]
    assert settings_from(VALID, today=TODAY).warnings == ()


def test_the_size_error_names_custom_sizes_where_the_model_takes_them() -> None:
    with pytest.raises(ConfigError) as current:
        settings_from({**VALID, "IMAGE_SIZE": "huge"})
    assert "1024x1024, 1536x1024, 1024x1536, auto or WIDTHxHEIGHT in steps of 16" in str(current.value)
    with pytest.raises(ConfigError) as legacy:
        settings_from(
            {
                **VALID,
                "OPENAI_BASE_URL": "http://localai.lan/v1",
                "IMAGE_MODEL": "dall-e-3",
                "IMAGE_SIZE": "1280x720",
            }
        )
    assert "WIDTHxHEIGHT" not in str(legacy.value)


def test_a_database_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({**VALID, "DATABASE_PATH": str(tmp_path / "typo" / "mural.db")})
    assert caught.value.variable == "DATABASE_PATH"
    assert f"its folder {tmp_path / 'typo'} does not exist" in str(caught.value)
    assert not (tmp_path / "typo").exists()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="is not a folder"):
        settings_from({**VALID, "DATABASE_PATH": str(tmp_path / "a-file" / "mural.db")})


class Recording(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def _example_variables() -> list[str]:
    return re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.M)


def _readme_settings_table() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| variable | default | meaning |") :].split("\n\n", 1)[0]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", table, flags=re.M)


def test_the_catalogue_is_what_the_code_reads_and_what_the_example_and_readme_list() -> None:
    environment = Recording(VALID)
    settings_from(environment)
    names = [variable.name for variable in CATALOGUE]
    assert set(names) == environment.asked
    assert names == _example_variables()
    assert sorted(names) == sorted(_readme_settings_table())


@dataclass(frozen=True)
class BotRun:
    """One `python -m bot` run this module checks: its environment, arguments and `.env` file."""

    env: dict[str, str]
    args: tuple[str, ...] = ()
    dotenv: str | None = None


BAD_CONFIGURATIONS = {
    "DISCORD_TOKEN": BotRun({"OPENAI_API_KEY": KEY}),
    "OPENAI_API_KEY": BotRun({"DISCORD_TOKEN": TOKEN}),
    "IMAGE_SIZE": BotRun({**VALID, "IMAGE_SIZE": "999x999"}),
    "IMAGE_QUALITY": BotRun({**VALID, "IMAGE_QUALITY": "best"}),
    "OPENAI_BASE_URL": BotRun({**VALID, "OPENAI_BASE_URL": "not a url"}),
    "DEV_GUILD_ID": BotRun({**VALID, "DEV_GUILD_ID": "abc"}),
    "RENDER_CONCURRENCY": BotRun({**VALID, "RENDER_CONCURRENCY": "0"}),
    "IMAGE_MODEL": BotRun({**VALID, "IMAGE_MODEL": "gpt-image-1"}),
    "DATABASE_PATH": BotRun({**VALID, "DATABASE_PATH": "no-such-folder/mural.db"}),
    "DATABASE_URL": BotRun({**VALID, "DATABASE_URL": f"mysql://mural:{DB_PASSWORD}@localhost/mural"}),
    "SHARD_COUNT": BotRun({**VALID, "SHARD_IDS": "0"}),
    "SHARD_IDS": BotRun({**VALID, "SHARD_COUNT": "2", "SHARD_IDS": "1-2"}),
    "RENDER_LEASE_SECONDS": BotRun({**VALID, "RENDER_LEASE_SECONDS": "0"}),
}
RUNS = {
    **{f"bad-{variable}": run for variable, run in BAD_CONFIGURATIONS.items()},
    "bad-dotenv": BotRun({}, dotenv=f"DISCORD_TOKEN={TOKEN}\nOPENAI_API_KEY={KEY}\nLOG_LEVEL=chatty\n"),
    "unknown-subcommand": BotRun(VALID, ("dance",)),
    "help": BotRun({}, ("--help",)),
}


@pytest.fixture(scope="module")
def bot_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every run in RUNS, started together, each in a folder of its own: a run is a second of imports,
    so one after another they would take a second each."""
    started: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, run in RUNS.items():
            folder = tmp_path_factory.mktemp(name)
            if run.dotenv is not None:
                (folder / ".env").write_text(run.dotenv)
            started[name] = subprocess.Popen(
                [sys.executable, "-m", "bot", *run.args],
                cwd=folder,
                env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **run.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        yield started
    finally:
        for process in started.values():
            process.kill()
            process.communicate()


def finished(bot_runs: dict[str, subprocess.Popen[str]], name: str) -> subprocess.CompletedProcess[str]:
    process = bot_runs[name]
    # Generous: seventeen interpreters start at once, and a loaded machine takes its time over them.
    stdout, stderr = process.communicate(timeout=180)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("variable", BAD_CONFIGURATIONS)
def test_bad_configuration_exits_2_with_one_line(
    bot_runs: dict[str, subprocess.Popen[str]], variable: str
) -> None:
    """`python -m bot` names the variable on one line, exits 2, prints no traceback and no secret."""
    result = finished(bot_runs, f"bad-{variable}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    assert KEY not in result.stderr + result.stdout
    assert DB_PASSWORD not in result.stderr + result.stdout


SHARD_LISTS = {
    "0": (0,),
    "0,1": (0, 1),
    "0-3": (0, 1, 2, 3),
    "1,3-5": (1, 3, 4, 5),
    " 2 , 0 ": (0, 2),
    "": None,
    "a": None,
    "3-1": None,
    "1,,2": None,
    "-1": None,
}


@pytest.mark.parametrize(("raw", "ids"), SHARD_LISTS.items())
def test_shard_lists_are_ids_and_ranges(raw: str, ids: tuple[int, ...] | None) -> None:
    assert shard_list(raw) == ids


SHARD_SETTINGS = {
    "neither": ({}, None),
    "both": ({"SHARD_COUNT": "4", "SHARD_IDS": "1,3"}, None),
    "ids without count": ({"SHARD_IDS": "0"}, "SHARD_COUNT"),
    "count without ids": ({"SHARD_COUNT": "2"}, "SHARD_IDS"),
    "id outside the count": ({"SHARD_COUNT": "2", "SHARD_IDS": "2"}, "SHARD_IDS"),
    "malformed ids": ({"SHARD_COUNT": "2", "SHARD_IDS": "0;1"}, "SHARD_IDS"),
    "zero shards": ({"SHARD_COUNT": "0", "SHARD_IDS": "0"}, "SHARD_COUNT"),
}


@pytest.mark.parametrize(("extra", "refused"), SHARD_SETTINGS.values(), ids=list(SHARD_SETTINGS))
def test_shard_settings_come_together_or_not_at_all(extra: dict[str, str], refused: str | None) -> None:
    if refused is None:
        settings = settings_from({**VALID, **extra})
        assert settings.shard_ids == (shard_list(extra["SHARD_IDS"]) if extra else None)
        return
    with pytest.raises(ConfigError) as error:
        settings_from({**VALID, **extra})
    assert error.value.variable == refused


DATABASE_URLS = {
    "postgresql://mural:pw@db.example:5432/mural": None,
    "postgres://mural@localhost/mural": None,
    "postgresql:///mural?host=/run/postgresql": None,
    f"mysql://mural:{DB_PASSWORD}@localhost/mural": "is not a PostgreSQL URL",
    f"postgresql://mural:{DB_PASSWORD}@localhost:port/mural": "is not a URL",
    "sqlite:///mural.db": "is not a PostgreSQL URL",
    "postgresql://": "names no host",
}


@pytest.mark.parametrize(("url", "problem"), DATABASE_URLS.items())
def test_database_url_is_postgresql_and_never_repeated(url: str, problem: str | None) -> None:
    if problem is None:
        assert settings_from({**VALID, "DATABASE_URL": url}).database_url == url
        return
    with pytest.raises(ConfigError) as error:
        settings_from({**VALID, "DATABASE_URL": url})
    assert error.value.variable == "DATABASE_URL" and problem in str(error.value)
    assert DB_PASSWORD not in str(error.value)


def test_the_database_password_is_a_secret_and_hidden_from_the_label() -> None:
    settings = settings_from({**VALID, "DATABASE_URL": f"postgresql://mural:{DB_PASSWORD}@db:5432/mural"})
    assert DB_PASSWORD in settings.secrets
    assert settings.database_label == "postgresql://mural:***@db:5432/mural"
    assert DB_PASSWORD not in repr(settings)


def test_bad_value_in_dotenv_is_reported_too(bot_runs: dict[str, subprocess.Popen[str]]) -> None:
    result = finished(bot_runs, "bad-dotenv")
    assert result.returncode == 2
    assert "LOG_LEVEL" in result.stderr


def test_unknown_subcommand_exits_2(bot_runs: dict[str, subprocess.Popen[str]]) -> None:
    result = finished(bot_runs, "unknown-subcommand")
    assert result.returncode == 2
    assert "unknown command" in result.stderr


def test_help_lists_every_command_and_every_setting(bot_runs: dict[str, subprocess.Popen[str]]) -> None:
    result = finished(bot_runs, "help")
    assert result.returncode == 0
    listed = result.stdout.splitlines()
    for command in ("run", "sync", "check", "backup PATH"):
        assert any(line.strip().startswith(command + " ") for line in listed), command
    for variable in CATALOGUE:
        assert any(line.strip().startswith(variable.name + " ") for line in listed), variable.name
