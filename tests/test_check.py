"""`python -m bot check`: a good set-up passes line by line; each broken piece is named with its fix."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from pathlib import Path

import discord
import pytest
from discord.http import HTTPClient, Route

from bot.check import BAD, BOT_PERMISSIONS, OK, SKIP, WARN, Line, check, exit_status, report, run_checks
from bot.store.sqlite import migration_files
from loopback.fake_discord import Intents
from loopback.rig import DISCORD_TOKEN, OPENAI_KEY, REPO, Rig, unused_port
from tests.postgres import Databases, database_url


async def run(rig: Rig) -> tuple[list[Line], str]:
    """The check's lines, and everything it printed."""
    settings = rig.settings()
    lines = await run_checks(settings)
    return lines, "\n".join(report(lines, settings))


def line(lines: list[Line], subject: str) -> Line:
    return next(found for found in lines if found.subject.startswith(subject))


def assert_no_secret(printed: str) -> None:
    assert DISCORD_TOKEN not in printed and OPENAI_KEY not in printed


@pytest.mark.asyncio
async def test_a_good_set_up_passes_every_check(rig: Rig) -> None:
    lines, printed = await run(rig)
    assert [(found.mark, found.subject) for found in lines if found.mark != OK] == []
    assert exit_status(lines) == 0
    application = rig.discord.application_id
    assert line(lines, "Invite to a server").text == (
        f"https://discord.com/oauth2/authorize?client_id={application}"
        f"&scope=bot+applications.commands&permissions={BOT_PERMISSIONS.value}"
    )
    assert line(lines, "Install for yourself").text == (
        f"https://discord.com/oauth2/authorize?client_id={application}&integration_type=1&scope=applications.commands"
    )
    assert "schema v" in line(lines, "Database").text and "0 sessions" in line(lines, "Database").text
    assert printed.splitlines()[-1].startswith("All good")
    assert_no_secret(printed)
    told: list[str] = []
    assert await check(rig.settings(), told.append) == 0
    assert told[-1].startswith("All good") and len(told) == len(lines) + 1


def test_the_invite_asks_for_exactly_what_mural_does_in_a_channel() -> None:
    granted = {name for name, value in BOT_PERMISSIONS if value}
    assert granted == {
        "read_messages",  # View Channel
        "send_messages",
        "send_messages_in_threads",
        "create_public_threads",
        "attach_files",
        "embed_links",
        "read_message_history",
    }


@pytest.mark.asyncio
async def test_a_refused_token_is_named_and_fails(rig: Rig) -> None:
    rig.overrides["DISCORD_TOKEN"] = "not-the-bots-token"
    lines, printed = await run(rig)
    assert line(lines, "Discord token").mark == BAD and "Reset Token" in line(lines, "Discord token").text
    assert line(lines, "Message Content intent").mark == SKIP
    assert exit_status(lines) == 1
    assert "not-the-bots-token" not in printed


@pytest.mark.asyncio
async def test_the_message_content_intent_switched_off_is_named_with_what_still_works(rig: Rig) -> None:
    rig.discord.allowed_privileged_intents = 0
    lines, printed = await run(rig)
    intent = line(lines, "Message Content intent")
    assert intent.mark == WARN and "switched off" in intent.text
    assert "Refine button" in intent.text and "Privileged Gateway Intents" in intent.text
    assert exit_status(lines) == 0
    assert_no_secret(printed)


@pytest.mark.asyncio
async def test_a_model_the_server_lacks_is_named(rig: Rig) -> None:
    rig.overrides["CHAT_MODEL"] = "gpt-0-nonexistent"
    lines, _ = await run(rig)
    missing = line(lines, "CHAT_MODEL")
    assert (
        missing.mark == BAD and "gpt-0-nonexistent" in missing.subject and "change CHAT_MODEL" in missing.text
    )
    assert line(lines, "IMAGE_MODEL").mark == OK
    assert exit_status(lines) == 1


@pytest.mark.asyncio
async def test_a_missing_vision_model_is_named_too(rig: Rig) -> None:
    rig.overrides["VISION_MODEL"] = "no-such-vision-model"
    lines, _ = await run(rig)
    assert line(lines, "VISION_MODEL").mark == BAD


@pytest.mark.asyncio
async def test_a_retired_image_model_is_named_as_retired_with_the_current_one(rig: Rig) -> None:
    rig.overrides["IMAGE_MODEL"] = "gpt-image-1"
    lines, _ = await run(rig)
    retired = line(lines, "IMAGE_MODEL")
    assert retired.mark == BAD
    assert "retired" in retired.text and "set IMAGE_MODEL=gpt-image-2" in retired.text
    assert exit_status(lines) == 1


@pytest.mark.asyncio
async def test_a_retired_model_a_compatible_server_still_serves_is_a_warning(rig: Rig) -> None:
    rig.overrides.update({"IMAGE_MODEL": "dall-e-3", "IMAGE_SIZE": "1024x1024"})
    lines, _ = await run(rig)
    served = line(lines, "IMAGE_MODEL")
    assert served.mark == WARN and "retired at OpenAI" in served.text
    assert exit_status(lines) == 0


@pytest.mark.asyncio
async def test_a_refused_openai_key_is_named_and_models_are_not_guessed(rig: Rig) -> None:
    rig.openai.api_key = "sk-some-other-key"
    lines, printed = await run(rig)
    refused = line(lines, "OpenAI")
    assert refused.mark == BAD and "key was refused" in refused.text and "OPENAI_API_KEY" in refused.text
    assert line(lines, "CHAT_MODEL").mark == SKIP and line(lines, "IMAGE_MODEL").mark == SKIP
    assert exit_status(lines) == 1
    assert_no_secret(printed)


@pytest.mark.asyncio
async def test_a_separate_chat_server_is_checked_with_its_own_key(rig: Rig) -> None:
    rig.overrides.update({"CHAT_BASE_URL": rig.openai.base_url, "CHAT_API_KEY": "sk-chat-key-refused"})
    rig.openai.api_key = OPENAI_KEY
    lines, printed = await run(rig)
    assert line(lines, "OpenAI").mark == OK
    chat = line(lines, "Chat server")
    assert chat.mark == BAD and "CHAT_API_KEY" in chat.text
    assert "sk-chat-key-refused" not in printed


@pytest.mark.asyncio
async def test_a_database_that_cannot_be_written_is_named(rig: Rig, tmp_path: Path) -> None:
    # A folder where the file should be: unwritable even for root, who ignores file modes.
    folder = tmp_path / "taken.db"
    folder.mkdir()
    rig.overrides["DATABASE_PATH"] = str(folder)
    lines, printed = await run(rig)
    database = line(lines, "Database")
    assert database.mark == BAD and "DATABASE_PATH" in database.text
    assert exit_status(lines) == 1
    assert_no_secret(printed)


@pytest.mark.asyncio
async def test_an_older_database_is_migrated_after_a_copy_and_the_check_says_so(rig: Rig) -> None:
    connection = sqlite3.connect(rig.database, isolation_level=None)
    connection.executescript(migration_files()[0].read_text())
    connection.close()
    lines, _ = await run(rig)
    database = line(lines, "Database")
    assert database.mark == OK and "migrated, the older one copied to" in database.text
    assert f"mural.db.before-v{len(migration_files())}.bak" in database.text


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.asyncio
async def test_a_database_in_a_read_only_place_is_named_even_for_root(rig: Rig) -> None:
    # /proc refuses new files to everyone, root included: a read-only file system as an admin meets it.
    rig.overrides["DATABASE_PATH"] = "/proc/mural.db"
    lines, printed = await run(rig)
    database = line(lines, "Database")
    assert database.mark == BAD and "DATABASE_PATH" in database.text
    assert exit_status(lines) == 1
    assert_no_secret(printed)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes")
@pytest.mark.asyncio
async def test_a_read_only_database_file_is_named(rig: Rig, tmp_path: Path) -> None:
    readonly = tmp_path / "ro" / "mural.db"
    readonly.parent.mkdir()
    readonly.touch(mode=0o444)
    readonly.parent.chmod(0o555)
    try:
        rig.overrides["DATABASE_PATH"] = str(readonly)
        lines, _ = await run(rig)
    finally:
        readonly.parent.chmod(0o755)
    assert line(lines, "Database").mark == BAD


@pytest.mark.asyncio
async def test_the_command_exits_1_on_a_bad_set_up_and_0_on_a_good_one(rig: Rig) -> None:
    """`python -m bot check` as a process (through loopback.launch_bot, which points discord.py at the fake)."""

    async def checked(environment: dict[str, str]) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loopback.launch_bot",
            "check",
            cwd=REPO,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    good = rig.environment()
    # Each its own database: two processes creating one new file would race to migrate it.
    bad = {
        **good,
        "DISCORD_TOKEN": "a-wrong-token",
        "IMAGE_MODEL": "dall-e-3",
        "DATABASE_PATH": str(rig.database.with_name("bad.db")),
    }
    (good_status, good_out, good_err), (bad_status, bad_out, bad_err) = await asyncio.gather(
        checked(good), checked(bad)
    )
    assert good_status == 0, good_out + good_err
    assert bad_status == 1, bad_out + bad_err
    assert all(text.startswith(OK) for text in good_out.splitlines()[:-1])
    assert f"{BAD} Discord token" in bad_out
    # A retired model on a compatible server is warned about before anything is checked.
    assert "dall-e-3 was retired by OpenAI" in bad_err
    for output in (good_out, good_err, bad_out, bad_err):
        assert_no_secret(output)
        assert "Traceback" not in output


# -- the fakes answer the check's requests as the real services do ----------------------------------


@pytest.mark.asyncio
async def test_fake_discord_refuses_a_wrong_token_and_reports_the_intent_switch(rig: Rig) -> None:
    http = HTTPClient(asyncio.get_running_loop())
    try:
        with pytest.raises(discord.LoginFailure):
            await http.static_login("wrong-token")
        me = await http.static_login(DISCORD_TOKEN)
        assert me["id"] == str(rig.discord.bot_user["id"])
        application = await http.request(Route("GET", "/applications/@me"))
        assert application["id"] == str(rig.discord.application_id)
        assert application["flags"] & (1 << 19)  # GATEWAY_MESSAGE_CONTENT_LIMITED: an unverified bot's switch
        rig.discord.allowed_privileged_intents = Intents.GUILD_MEMBERS
        application = await http.request(Route("GET", "/applications/@me"))
        assert not application["flags"] & ((1 << 18) | (1 << 19))
    finally:
        await http.close()


def test_a_check_line_reads_as_one_line() -> None:
    assert (
        str(Line(WARN, "Message Content intent", "switched off")) == "⚠ Message Content intent: switched off"
    )


# -- PostgreSQL (DATABASE_URL) ------------------------------------------------------------------------

DATABASE_PASSWORD = "pg-SECRET-password-789"


def with_password(url: str) -> str:
    """The URL with a password (trust authentication accepts any): enough to prove it is never printed."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{DATABASE_PASSWORD}@")


async def postgres_line(rig: Rig, url: str) -> tuple[Line, str]:
    rig.overrides["DATABASE_URL"] = with_password(url)
    lines, printed = await run(rig)
    assert DATABASE_PASSWORD not in printed
    assert_no_secret(printed)
    return line(lines, "Database"), printed


@pytest.mark.asyncio
async def test_a_migrated_postgresql_is_named_with_its_version(rig: Rig, postgres_url: str) -> None:
    database, printed = await postgres_line(rig, postgres_url)
    assert database.mark == OK
    assert database.subject == f"Database PostgreSQL at 127.0.0.1:5432/{postgres_url.rsplit('/', 1)[1]}"
    assert re.fullmatch(
        r"reachable, PostgreSQL \d+(\.\d+)*, schema v\d+ \(up to date\): 0 sessions, 0 versions, 0 renders",
        database.text,
    ), database.text
    assert printed.splitlines()[-1].startswith("All good")


@pytest.mark.asyncio
async def test_a_postgresql_without_the_schema_is_named_with_the_fix_and_left_as_it_is(
    rig: Rig, postgres_databases: Databases
) -> None:
    url = postgres_databases.empty()
    try:
        database, _ = await postgres_line(rig, url)
        assert database.mark == BAD
        assert "schema is not migrated (v0 of v" in database.text
        assert database.text.endswith("Fix: start the bot once or run `python -m bot copy-to`")
        # Looking changed nothing: the bot migrates at its start, the check never does.
        again, _ = await postgres_line(rig, url)
        assert again == database
    finally:
        postgres_databases.drop(url)


@pytest.mark.asyncio
async def test_a_postgresql_that_does_not_answer_is_named_by_host_and_port(rig: Rig) -> None:
    port = unused_port()
    database, _ = await postgres_line(rig, f"postgresql://postgres@127.0.0.1:{port}/mural")
    assert database.mark == BAD
    assert database.subject == f"Database PostgreSQL at 127.0.0.1:{port}/mural"
    assert database.text.startswith("cannot be reached (ConnectionRefusedError). Fix: start PostgreSQL")


@pytest.mark.asyncio
async def test_a_refused_connection_is_named_by_the_class_of_refusal(
    rig: Rig, postgres_databases: Databases
) -> None:
    missing = database_url(f"{postgres_databases.prefix}_never_made")
    database, _ = await postgres_line(rig, missing)
    assert database.mark == BAD
    assert database.text.startswith(
        "refused the connection (InvalidCatalogNameError): the database does not exist"
    )
    assert "DATABASE_URL" in database.text
