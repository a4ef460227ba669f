"""Settings from the environment and `.env`, validated once at start.

Every problem is reported as a `ConfigError` naming the variable and what is expected, so that
`python -m bot` can print one line and exit with status 2. Secrets are never part of a message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from dotenv import dotenv_values

from bot.core.images import QUALITY_CHOICES, capabilities_for, size_problem
from bot.core.pricing import DEFAULT_PRICES, PricesFileError, PriceTable, load_prices
from bot.env_values import ConfigError
from bot.env_values import number as _number
from bot.env_values import required_secret as _required_secret
from bot.env_values import text as _text
from bot.env_values import url as _url
from bot.gallery_settings import DEFAULT_GALLERY_HOST, DEFAULT_GALLERY_LINK_SECONDS, gallery_settings
from bot.models import Limits

DEFAULT_CHAT_MODEL = "gpt-5.4-mini"
# Generous for one member, and a ceiling an operator can live with before choosing their own.
DEFAULT_LIMITS = Limits(
    member_daily_pictures=25, member_daily_spend=2.0, server_daily_spend=25.0, server_monthly_spend=250.0
)
DEFAULT_IMAGE_MODEL = "gpt-image-2"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Variable:
    """One setting as `python -m bot --help` lists it."""

    name: str
    default: str
    meaning: str


# Every variable `settings_from` reads, in the order of `.env.example`; a test keeps the three in step,
# so `--help`, the example file and the code cannot drift apart.
CATALOGUE: tuple[Variable, ...] = (
    Variable("DISCORD_TOKEN", "(required)", "the bot token (Developer Portal → Bot → Reset Token)"),
    Variable(
        "OPENAI_API_KEY", "(required)", "OpenAI API key, for images and (unless CHAT_* say otherwise) chat"
    ),
    Variable("OPENAI_BASE_URL", "api.openai.com", "another OpenAI-compatible server for everything"),
    Variable("CHAT_MODEL", DEFAULT_CHAT_MODEL, "the chat model that writes and refines prompts"),
    Variable("VISION_MODEL", "CHAT_MODEL", "the model that reads pictures for /describe"),
    Variable("CHAT_BASE_URL", "OPENAI_BASE_URL", "an OpenAI-compatible server for chat only (Ollama, vLLM)"),
    Variable("CHAT_API_KEY", "OPENAI_API_KEY", "the key for CHAT_BASE_URL"),
    Variable("IMAGE_MODEL", DEFAULT_IMAGE_MODEL, "the image model id"),
    Variable(
        "IMAGE_MODELS", "IMAGE_MODEL", "image models a server may choose with /settings, comma-separated"
    ),
    Variable("IMAGE_SIZE", "1024x1024", "default size: a preset, auto, or WIDTHxHEIGHT on gpt-image-2+"),
    Variable("IMAGE_QUALITY", "medium", "low, medium, high or auto"),
    Variable("CHAT_TIMEOUT", "60", "seconds to wait for one chat answer"),
    Variable("IMAGE_TIMEOUT", "180", "seconds to wait for one picture"),
    Variable("RENDER_CONCURRENCY", "4", "pictures drawn at the same time; more wait in a fair queue"),
    Variable("MEMBER_DAILY_PICTURES", "25", "pictures per member per day on a server (0: no limit)"),
    Variable("MEMBER_DAILY_SPEND", "2.00", "US dollars per member per day (0: no limit)"),
    Variable("SERVER_DAILY_SPEND", "25.00", "US dollars per server per day (0: no limit)"),
    Variable("SERVER_MONTHLY_SPEND", "250.00", "US dollars per server per calendar month (0: no limit)"),
    Variable("PRICES_FILE", "(built-in)", "a TOML file of prices replacing or adding to the built-in table"),
    Variable("DEV_GUILD_ID", "(empty)", "register slash commands on this one server only"),
    Variable("DATABASE_PATH", "mural.db", "the SQLite file; its folder must exist"),
    Variable(
        "DATABASE_URL",
        "(empty: SQLite)",
        "postgresql://user:pass@host:port/db: all state in PostgreSQL instead",
    ),
    Variable(
        "SHARD_COUNT", "(Discord's advice)", "total Discord shards of the deployment; set with SHARD_IDS"
    ),
    Variable("SHARD_IDS", "(all)", "this process's shards of SHARD_COUNT: 0, 0,1, 0-3 or 1,3-5"),
    Variable(
        "RENDER_LEASE_SECONDS", "60", "how long a job stays claimed by a process that stops renewing it"
    ),
    Variable("SAFETY_SALT", "(generated)", "salt for the member hash sent to OpenAI; 16+ characters"),
    Variable("GALLERY_PORT", "(empty: no gallery)", "serve the web gallery on this port (1-65535)"),
    Variable("GALLERY_HOST", "127.0.0.1", "the address the gallery listens on; put a TLS proxy in front"),
    Variable("GALLERY_URL", "http://GALLERY_HOST:GALLERY_PORT", "the public base URL of gallery links"),
    Variable("GALLERY_LINK_SECONDS", "86400", "how long a personal gallery link stays valid"),
    Variable(
        "GALLERY_SECRET", "(generated)", "signs gallery links; 32+ characters, the same for every process"
    ),
    Variable("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    Variable("LOG_FORMAT", "text", "text, or json: one JSON object per line for a log shipper"),
    Variable("METRICS_PORT", "(empty: none)", "serve Prometheus /metrics and /healthz on this port"),
    Variable("METRICS_HOST", "127.0.0.1", "the address METRICS_PORT listens on (0.0.0.0: every interface)"),
)


@dataclass(frozen=True)
class Settings:
    discord_token: str = field(repr=False)
    openai_api_key: str = field(repr=False)
    openai_base_url: str | None = None
    chat_model: str = DEFAULT_CHAT_MODEL
    # Reads pictures for /describe; the chat model unless set.
    vision_model: str | None = None
    chat_base_url: str | None = None
    chat_api_key: str | None = field(default=None, repr=False)
    image_model: str = DEFAULT_IMAGE_MODEL
    # The models a server may choose with /settings; IMAGE_MODEL is always one of them.
    image_models: tuple[str, ...] = (DEFAULT_IMAGE_MODEL,)
    image_size: str = "1024x1024"
    image_quality: str = "medium"
    database_path: Path = Path("mural.db")
    # PostgreSQL for every process of a deployment; None: the SQLite file at database_path.
    database_url: str | None = field(default=None, repr=False)
    # Discord shards: the deployment's total and this process's own; None: one process runs all.
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    render_lease_seconds: float = 60.0
    dev_guild_id: int | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_port: int | None = None  # where /metrics and /healthz are served; None: no port at all
    metrics_host: str = "127.0.0.1"
    chat_timeout: float = 60.0
    image_timeout: float = 180.0
    render_concurrency: int = 4
    # Budgets every server starts with (a server's /settings override them); None: no limit.
    member_daily_pictures: int | None = DEFAULT_LIMITS.member_daily_pictures
    member_daily_spend: float | None = DEFAULT_LIMITS.member_daily_spend
    server_daily_spend: float | None = DEFAULT_LIMITS.server_daily_spend
    server_monthly_spend: float | None = DEFAULT_LIMITS.server_monthly_spend
    # Salts the safety identifier OpenAI gets for each member; generated and kept in the store if unset.
    safety_salt: str | None = field(default=None, repr=False)
    prices: PriceTable = field(default=DEFAULT_PRICES, repr=False)
    # The web gallery: served on this port when set (None: no gallery, no port opened), at this address;
    # links start with `gallery_url` and stay valid `gallery_link_seconds`; signed with `gallery_secret`,
    # or (None) with a secret generated once and kept in the store.
    gallery_port: int | None = None
    gallery_host: str = DEFAULT_GALLERY_HOST
    gallery_url: str | None = None
    gallery_link_seconds: int = DEFAULT_GALLERY_LINK_SECONDS
    gallery_secret: str | None = field(default=None, repr=False)
    # Problems that do not stop the start (a model retiring soon, a retired one on a compatible server):
    # logged before connecting, so they are not lost behind a login that may take a while or fail.
    warnings: tuple[str, ...] = ()

    @property
    def limits(self) -> Limits:
        """The operator's budgets: every server's defaults."""
        return Limits(
            member_daily_pictures=self.member_daily_pictures,
            member_daily_spend=self.member_daily_spend,
            server_daily_spend=self.server_daily_spend,
            server_monthly_spend=self.server_monthly_spend,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line or a Discord message."""
        values = (
            self.discord_token,
            self.openai_api_key,
            self.chat_api_key,
            self.safety_salt,
            self.gallery_secret,
            database_password(self.database_url),
        )
        return tuple(v for v in values if v)

    @property
    def database_label(self) -> str:
        """Where the state lives, safe to print: the PostgreSQL URL without its password, or the file."""
        if self.database_url is None:
            return str(self.database_path)
        return redacted_url(self.database_url)


def _model(env: Mapping[str, str], name: str, default: str) -> str:
    value = _text(env, name) or default
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}", value):
        raise ConfigError(name, "is not a model id; expected letters, digits, '.', '-', '_', ':' or '/'")
    return value


def _allowed_models(env: Mapping[str, str], image_model: str) -> tuple[str, ...]:
    """IMAGE_MODELS, comma-separated, with IMAGE_MODEL first; each a model id."""
    listed = [name.strip() for name in (_text(env, "IMAGE_MODELS") or "").split(",") if name.strip()]
    for name in listed:
        _model({"IMAGE_MODELS": name}, "IMAGE_MODELS", image_model)
    return tuple(dict.fromkeys([image_model, *listed]))


def _prices(env: Mapping[str, str]) -> PriceTable:
    path = _text(env, "PRICES_FILE")
    if path is None:
        return DEFAULT_PRICES
    try:
        return load_prices(Path(path).expanduser())
    except PricesFileError as error:
        raise ConfigError("PRICES_FILE", f"{path} {error}") from None


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def _safety_salt(env: Mapping[str, str]) -> str | None:
    value = _text(env, "SAFETY_SALT")
    if value is not None and len(value) < 16:
        raise ConfigError(
            "SAFETY_SALT", "is too short; expected at least 16 random characters, or leave it empty"
        )
    return value


def _limit(env: Mapping[str, str], name: str, default: float | None, *, integer: bool) -> float | None:
    """A budget: a number of pictures or dollars; 0 turns the limit off."""
    if _text(env, name) is None:
        return default
    if integer:
        value: float = _number(env, name, 0, integer=True, low=0, high=1_000_000)
    else:
        value = _number(env, name, 0.0, integer=False, low=0, high=1_000_000)
    return value or None


def _retirements(name: str, models: tuple[str, ...], *, at_openai: bool, today: date) -> list[str]:
    """Warnings for models that retire soon or are retired elsewhere; an error for one retired at OpenAI.

    Refused at start rather than warned about: at api.openai.com every render with a retired model
    fails, and a warning after login scrolls past while members already meet E-CONFIG. A compatible
    server (OPENAI_BASE_URL) may still serve DALL-E, so there it is only a warning.
    """
    warnings: list[str] = []
    for model in models:
        retired_on = capabilities_for(model).retired_on
        if retired_on is None:
            continue
        if retired_on > today:
            warnings.append(
                f"{name}: {model} retires at OpenAI on {retired_on.isoformat()}; "
                f"set {name}={DEFAULT_IMAGE_MODEL} before then"
            )
        elif at_openai:
            raise ConfigError(
                name,
                f"{model} was retired by OpenAI on {retired_on.isoformat()}; expected a current model "
                f"(set {name}={DEFAULT_IMAGE_MODEL}), or OPENAI_BASE_URL for a compatible server that serves it",
            )
        else:
            warnings.append(
                f"{name}: {model} was retired by OpenAI on {retired_on.isoformat()}; "
                "using it only because OPENAI_BASE_URL names another server"
            )
    return warnings


def _database_path(env: Mapping[str, str]) -> Path:
    database = _text(env, "DATABASE_PATH") or "mural.db"
    if "\x00" in database:
        raise ConfigError("DATABASE_PATH", "is not a file path")
    path = Path(database).expanduser()
    folder = path.parent
    # A typo in the folder would otherwise start a fresh, empty database somewhere unexpected.
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(
            "DATABASE_PATH", f"its folder {folder} {problem}; create it first or choose another path"
        )
    return path


DATABASE_SCHEMES = ("postgresql", "postgres")


def database_password(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


def redacted_url(url: str) -> str:
    """A database URL with its password replaced, for logs and `check`."""
    password = database_password(url)
    if not password:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f":{quote(password, safe='')}@", ":***@").replace(f":{password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _database_url(env: Mapping[str, str]) -> str | None:
    """DATABASE_URL: a PostgreSQL URL. The value is never repeated in a message: it holds a password."""
    value = _text(env, "DATABASE_URL")
    if value is None:
        return None
    expected = "expected postgresql://user:password@host:port/database (or postgres://)"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError("DATABASE_URL", f"is not a URL; {expected}") from None
    if parts.scheme not in DATABASE_SCHEMES:
        raise ConfigError("DATABASE_URL", f"is not a PostgreSQL URL; {expected}")
    if not parts.hostname and "host=" not in parts.query:
        raise ConfigError("DATABASE_URL", f"names no host; {expected}")
    return value


def shard_list(raw: str) -> tuple[int, ...] | None:
    """`0`, `0,1`, `0-3`, `1,3-5` as sorted shard ids; None when malformed."""
    ids: set[int] = set()
    for part in raw.split(","):
        match = re.fullmatch(r"\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5})\s*)?", part)
        if match is None:
            return None
        low = int(match[1])
        high = int(match[2]) if match[2] is not None else low
        if high < low:
            return None
        ids.update(range(low, high + 1))
    return tuple(sorted(ids))


def _shards(env: Mapping[str, str]) -> tuple[int | None, tuple[int, ...] | None]:
    """SHARD_COUNT and SHARD_IDS: both or neither; every id one of 0…SHARD_COUNT-1."""
    count_raw, ids_raw = _text(env, "SHARD_COUNT"), _text(env, "SHARD_IDS")
    if count_raw is None and ids_raw is None:
        return None, None
    if count_raw is None:
        raise ConfigError(
            "SHARD_COUNT", "is missing; expected the deployment's total number of shards with SHARD_IDS"
        )
    if ids_raw is None:
        raise ConfigError(
            "SHARD_IDS", "is missing; expected this process's shards (0, 0,1, 0-3) with SHARD_COUNT"
        )
    count = _number(env, "SHARD_COUNT", 1, integer=True, low=1, high=65_535)
    ids = shard_list(ids_raw)
    if not ids:
        raise ConfigError(
            "SHARD_IDS", "is not a list of shards; expected ids and ranges such as 0, 0,1, 0-3 or 1,3-5"
        )
    outside = [shard for shard in ids if shard >= count]
    if outside:
        raise ConfigError(
            "SHARD_IDS",
            f"names shard {outside[0]}, outside 0–{count - 1}; expected ids below SHARD_COUNT ({count})",
        )
    return count, ids


def settings_from(env: Mapping[str, str], *, today: date | None = None) -> Settings:
    """Build and validate settings from a mapping of variable names to strings."""
    discord_token = _required_secret(env, "DISCORD_TOKEN", "the bot token from the Discord Developer Portal")
    openai_api_key = _required_secret(env, "OPENAI_API_KEY", "an OpenAI API key (sk-...)")
    chat_api_key = _text(env, "CHAT_API_KEY")
    if chat_api_key is not None and any(ch.isspace() for ch in chat_api_key):
        raise ConfigError("CHAT_API_KEY", "contains spaces; expected an API key for CHAT_BASE_URL")

    image_model = _model(env, "IMAGE_MODEL", DEFAULT_IMAGE_MODEL)
    image_models = _allowed_models(env, image_model)
    capabilities = capabilities_for(image_model)
    image_size = (_text(env, "IMAGE_SIZE") or "1024x1024").lower()
    problem = size_problem(capabilities, image_size)
    if problem:
        raise ConfigError("IMAGE_SIZE", f"{problem} for IMAGE_MODEL {image_model}")
    image_quality = (_text(env, "IMAGE_QUALITY") or "medium").lower()
    if image_quality not in QUALITY_CHOICES:
        raise ConfigError("IMAGE_QUALITY", f"is not a quality; expected one of {', '.join(QUALITY_CHOICES)}")
    openai_base_url = _url(env, "OPENAI_BASE_URL")
    at_openai = openai_base_url is None or "api.openai.com" in openai_base_url
    today = today or datetime.now(UTC).date()
    warnings = _retirements("IMAGE_MODEL", (image_model,), at_openai=at_openai, today=today)
    warnings += _retirements("IMAGE_MODELS", image_models[1:], at_openai=at_openai, today=today)

    dev_guild = _text(env, "DEV_GUILD_ID")
    if dev_guild is not None and not re.fullmatch(r"[0-9]{15,21}", dev_guild):
        raise ConfigError(
            "DEV_GUILD_ID", "is not a server id; expected the 17–20 digit id of a Discord server"
        )

    log_level = (_text(env, "LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"is not a log level; expected one of {', '.join(LOG_LEVELS)}")
    log_format = (_text(env, "LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError("LOG_FORMAT", "is not a log format; expected text or json")
    metrics_host = _text(env, "METRICS_HOST") or "127.0.0.1"
    if any(ch.isspace() or ch in "/@" for ch in metrics_host):
        raise ConfigError("METRICS_HOST", "is not an address; expected an IP address or a host name")

    database_url = _database_url(env)
    # With PostgreSQL the SQLite file is only the source of `copy-to`; its folder is checked where it is used.
    database_path = (
        _database_path(env) if database_url is None else Path(_text(env, "DATABASE_PATH") or "mural.db")
    )
    shard_count, shard_ids = _shards(env)

    return Settings(
        discord_token=discord_token,
        openai_api_key=openai_api_key,
        openai_base_url=openai_base_url,
        chat_model=_model(env, "CHAT_MODEL", DEFAULT_CHAT_MODEL),
        vision_model=_model(env, "VISION_MODEL", "") if _text(env, "VISION_MODEL") else None,
        chat_base_url=_url(env, "CHAT_BASE_URL"),
        chat_api_key=chat_api_key,
        image_model=image_model,
        image_models=image_models,
        image_size=image_size,
        image_quality=image_quality,
        database_path=database_path,
        database_url=database_url,
        shard_count=shard_count,
        shard_ids=shard_ids,
        render_lease_seconds=_number(env, "RENDER_LEASE_SECONDS", 60.0, integer=False, low=5, high=3600),
        dev_guild_id=int(dev_guild) if dev_guild else None,
        log_level=log_level,
        log_format=log_format,
        metrics_port=_number(env, "METRICS_PORT", 0, integer=True, low=1, high=65_535) or None,
        metrics_host=metrics_host,
        chat_timeout=_number(env, "CHAT_TIMEOUT", 60.0, integer=False, low=1, high=600),
        image_timeout=_number(env, "IMAGE_TIMEOUT", 180.0, integer=False, low=1, high=1800),
        render_concurrency=_number(env, "RENDER_CONCURRENCY", 4, integer=True, low=1, high=32),
        safety_salt=_safety_salt(env),
        member_daily_pictures=_int_or_none(
            _limit(env, "MEMBER_DAILY_PICTURES", DEFAULT_LIMITS.member_daily_pictures, integer=True)
        ),
        member_daily_spend=_limit(
            env, "MEMBER_DAILY_SPEND", DEFAULT_LIMITS.member_daily_spend, integer=False
        ),
        server_daily_spend=_limit(
            env, "SERVER_DAILY_SPEND", DEFAULT_LIMITS.server_daily_spend, integer=False
        ),
        server_monthly_spend=_limit(
            env, "SERVER_MONTHLY_SPEND", DEFAULT_LIMITS.server_monthly_spend, integer=False
        ),
        prices=_prices(env),
        **gallery_settings(env),
        warnings=tuple(warnings),
    )


def load_settings(dotenv_path: str | os.PathLike[str] | None = ".env") -> Settings:
    """Read `.env` (if present) under the real environment, which wins, then validate."""
    merged: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(os.environ)
    return settings_from(merged)
