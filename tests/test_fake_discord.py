"""Tests of the loopback fake Discord itself, driven by a small but real discord.py bot.

Why: every other Mural test trusts ``loopback.fake_discord``; these tests prove that an
unmodified ``commands.Bot`` really logs in, syncs, answers interactions, uses threads and files,
Components v2 layouts, context menus and file-upload modals, survives a gateway drop and restarts
against it, and that the fake rejects what Discord rejects.
"""

from __future__ import annotations

import io
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import discord.webhook.async_
import pytest
import pytest_asyncio
import yarl
from discord import app_commands
from discord.ext import commands

from loopback.fake_discord import FakeDiscord, Permissions
from loopback.rig import DISCORD_TOKEN as TOKEN

pytestmark = pytest.mark.asyncio

PNG = b"\x89PNG\r\n\x1a\n" + b"not really an image, but bytes we can compare"
STYLES = ["noir", "nocturne", "pastel", "watercolour"]


class Reroll(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"reroll:(?P<prompt_id>\d+)"):
    """A persistent button: it must work for messages sent before a restart, hence DynamicItem."""

    def __init__(self, prompt_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Reroll", style=discord.ButtonStyle.primary, custom_id=f"reroll:{prompt_id}"
            )
        )
        self.prompt_id = prompt_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> Reroll:
        return cls(int(match["prompt_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Rerolling prompt {self.prompt_id}", ephemeral=True)


class IdeaModal(discord.ui.Modal, title="Describe your idea"):
    """One plain text input (sent in an action row) and one inside a Label (type 18)."""

    idea: discord.ui.TextInput[IdeaModal] = discord.ui.TextInput(
        label="Idea", custom_id="idea", max_length=200
    )
    mood: discord.ui.Label[IdeaModal] = discord.ui.Label(
        text="Mood", component=discord.ui.TextInput(custom_id="mood", required=False)
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.mood.component, discord.ui.TextInput)
        await interaction.response.send_message(
            f"Idea: {self.idea.value} / mood: {self.mood.component.value}"
        )


def png(tag: str) -> bytes:
    return PNG + tag.encode()


class PromptCard(discord.ui.LayoutView):
    """A Components v2 card: a container with a heading, a gallery of uploaded versions, a section
    whose accessory is the Edit button, and a row with Delete and a link button."""

    def __init__(self, prompt_id: int, versions: list[str], *, edited: bool = False) -> None:
        super().__init__(timeout=None)
        self.edit_button: discord.ui.Button[PromptCard] = discord.ui.Button(
            label="Edit", custom_id=f"edit:{prompt_id}", disabled=edited
        )
        self.edit_button.callback = self.on_edit
        delete: discord.ui.Button[PromptCard] = discord.ui.Button(
            label="Delete", custom_id=f"delete:{prompt_id}", style=discord.ButtonStyle.danger
        )
        gallery = discord.ui.MediaGallery(
            *(discord.MediaGalleryItem(f"attachment://{v}.png", description=v) for v in versions)
        )
        self.add_item(
            discord.ui.Container(
                discord.ui.TextDisplay(f"# Prompt {prompt_id}"),
                gallery,
                discord.ui.Section(
                    discord.ui.TextDisplay(f"Latest: {versions[-1]}"), accessory=self.edit_button
                ),
                discord.ui.Separator(),
                discord.ui.ActionRow(
                    delete, discord.ui.Button(label="Guide", url="https://example.com/guide")
                ),
                accent_colour=0x5865F2,
            )
        )
        self.edits: list[int] = []

    async def on_edit(self, interaction: discord.Interaction) -> None:
        self.edits.append(interaction.user.id)
        self.edit_button.disabled = True
        await interaction.response.edit_message(view=self)


class RefineModal(discord.ui.Modal, title="Refine the image"):
    """A Label-wrapped text input and a Label-wrapped FileUpload (type 19)."""

    change: discord.ui.Label[RefineModal] = discord.ui.Label(
        text="What should change?", component=discord.ui.TextInput(custom_id="change")
    )
    reference: discord.ui.Label[RefineModal] = discord.ui.Label(
        text="Reference images",
        component=discord.ui.FileUpload(custom_id="reference", max_values=3, required=False),
    )

    def __init__(self, bot: FixtureBot) -> None:
        super().__init__(custom_id="refine-modal")
        self.bot = bot

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.change.component, discord.ui.TextInput)
        assert isinstance(self.reference.component, discord.ui.FileUpload)
        uploads = self.reference.component.values
        self.bot.refined.append(
            {
                "change": self.change.component.value,
                "files": [(a.filename, a.content_type, a.ephemeral, await a.read()) for a in uploads],
            }
        )
        await interaction.response.send_message(f"Refining with {len(uploads)} reference(s)")


class FixtureBot(commands.Bot):
    """The smallest bot that exercises every part of the fake Mural relies on."""

    def __init__(self, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        # A short guild_ready_timeout keeps on_ready from idling 2 s after GUILD_CREATE.
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.seen: list[discord.Message] = []
        self.errors: list[discord.HTTPException] = []
        self.autocompleted: list[dict[str, Any]] = []  # what each autocomplete callback was given
        self.targets: list[dict[str, Any]] = []  # what each message context menu command was given
        self.refined: list[dict[str, Any]] = []  # what each RefineModal submit delivered

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Reroll)

        @self.tree.command(name="ping", description="Check the bot answers")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

        @self.tree.command(name="render", description="Render an idea into an image")
        async def render(interaction: discord.Interaction, idea: str, steps: int = 20) -> None:
            await interaction.response.defer(thinking=True)
            image = discord.File(io.BytesIO(PNG), filename="render.png")
            await interaction.followup.send(f"Rendered: {idea} ({steps} steps)", file=image, wait=True)

        @self.tree.command(name="secret", description="Defer ephemerally, then follow up")
        async def secret(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("only you can see this", wait=True)
            await interaction.followup.send("a second, public followup", ephemeral=False, wait=True)

        @self.tree.command(name="card", description="Defer, then follow up with a v2 card and a file")
        async def card(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            image = discord.File(io.BytesIO(png("v1")), filename="v1.png")
            await interaction.followup.send(view=PromptCard(9, ["v1"]), file=image, wait=True)

        async def edit_with_mural(interaction: discord.Interaction, message: discord.Message) -> None:
            self.targets.append(
                {
                    "id": message.id,
                    "content": message.content,
                    "attachments": [(a.filename, await a.read()) for a in message.attachments],
                    "components_v2": message.flags.components_v2,
                    "media_ids": [
                        item.media.attachment_id
                        for container in message.components
                        if isinstance(container, discord.components.Container)
                        for child in container.children
                        if isinstance(child, discord.components.MediaGalleryComponent)
                        for item in child.items
                    ],
                }
            )
            await interaction.response.send_modal(RefineModal(self))

        async def wave(interaction: discord.Interaction, member: discord.Member) -> None:
            await interaction.response.send_message(f"{interaction.user.name} waves at {member.name}")

        self.tree.add_command(app_commands.ContextMenu(name="Edit with Mural", callback=edit_with_mural))
        self.tree.add_command(app_commands.ContextMenu(name="Wave at", callback=wave))

        @self.tree.command(name="describe", description="Open the idea modal")
        async def describe(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(IdeaModal(custom_id="idea-modal"))

        async def suggest_style(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            self.record_autocomplete(interaction, current)
            if current == "misbehave":  # answers Discord refuses; discord.py sends them unchanged
                many = [app_commands.Choice(name=f"style {n}", value=f"s{n}") for n in range(26)]
                attempts: list[list[app_commands.Choice[str]]] = [
                    many,
                    [app_commands.Choice(name="", value="blank")],
                    [app_commands.Choice(name="x" * 101, value="long-name")],
                    [app_commands.Choice(name="long value", value="x" * 101)],
                ]
                for choices in attempts:
                    try:
                        await interaction.response.autocomplete(choices)
                    except discord.HTTPException as exc:
                        self.errors.append(exc)
                try:
                    await interaction.response.send_message("not a valid answer to autocomplete")
                except discord.HTTPException as exc:
                    self.errors.append(exc)
                return [app_commands.Choice(name="fallback", value="fallback")]
            return [app_commands.Choice(name=s.title(), value=s) for s in STYLES if s.startswith(current)]

        async def suggest_count(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[int]]:
            self.record_autocomplete(interaction, current)
            return [app_commands.Choice(name=f"{n} images", value=n) for n in range(1, 5)]

        @self.tree.command(name="style", description="Render an idea in a style")
        @app_commands.autocomplete(style=suggest_style, count=suggest_count)
        async def style(
            interaction: discord.Interaction, idea: str, style: str, count: app_commands.Range[int, 1, 4] = 1
        ) -> None:
            await interaction.response.send_message(f"{idea} in {style} x{count}")

        @self.tree.command(name="misbehave", description="Make mistakes the fake must reject")
        async def misbehave(interaction: discord.Interaction, mode: str) -> None:
            try:
                if mode == "early-followup":
                    await interaction.followup.send("followup before any response")
                elif mode == "too-long":
                    await interaction.response.send_message("x" * 2001)
                elif mode == "choices":  # type 8 is only for autocomplete; discord.py would refuse locally
                    adapter = discord.webhook.async_.async_context.get()
                    params = discord.webhook.async_.interaction_response_params(type=8, data={"choices": []})
                    await adapter.create_interaction_response(
                        interaction.id, interaction.token, session=interaction._session, params=params
                    )
            except discord.HTTPException as exc:
                self.errors.append(exc)
                await interaction.response.send_message(f"recovered from {exc.code}")

    def record_autocomplete(self, interaction: discord.Interaction, current: str) -> None:
        self.autocompleted.append(
            {
                "type": interaction.type,
                "current": current,
                "namespace": dict(iter(interaction.namespace)),  # Namespace iterates (name, value)
                "options": (interaction.data or {}).get("options"),
            }
        )

    async def on_message(self, message: discord.Message) -> None:
        if message.author != self.user:
            self.seen.append(message)


StartBot = Callable[..., Awaitable[FixtureBot]]


@pytest.fixture
def fake(loopback_discord: FakeDiscord) -> FakeDiscord:
    return loopback_discord


@pytest.fixture
def start_bot(start_client: Callable[..., Awaitable[Any]]) -> StartBot:
    async def _start(bot: FixtureBot | None = None, *, sync: bool = True) -> FixtureBot:
        return await start_client(bot or FixtureBot(), sync=sync)

    return _start


@pytest_asyncio.fixture
async def bot(start_bot: StartBot) -> FixtureBot:
    return await start_bot()


@pytest.fixture
def alice(fake: FakeDiscord) -> dict[str, Any]:
    return fake.add_member("alice")


def text_channel(bot: FixtureBot, channel_id: int) -> discord.TextChannel:
    channel = bot.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_bot_logs_in_and_caches_guild(fake: FakeDiscord, bot: FixtureBot) -> None:
    await fake.wait_until_ready()
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.name == fake.guild_name
    assert text_channel(bot, fake.channel_id).name == "general"
    assert bot.user is not None and bot.user.id == int(fake.bot_user["id"])
    assert guild.me is not None and guild.owner_id == int(fake.owner_user["id"])
    assert bot.application_id == fake.application_id
    assert fake.requests_to("GET", r"^/users/@me$")[0].headers["Authorization"] == f"Bot {TOKEN}"
    assert fake.requests_to("GET", r"^/oauth2/applications/@me$")
    assert fake.identify_count == 1


async def test_tree_sync_registers_commands_per_scope(fake: FakeDiscord, bot: FixtureBot) -> None:
    names = sorted(c["name"] for c in fake.registered_commands[None] if c["type"] == 1)
    assert names == ["card", "describe", "misbehave", "ping", "render", "secret", "style"]
    render = next(c for c in fake.registered_commands[None] if c["name"] == "render")
    assert [(o["name"], o["type"], o.get("required", False)) for o in render["options"]] == [
        ("idea", 3, True),
        ("steps", 4, False),
    ]
    first_id = render["id"]

    guild = discord.Object(id=fake.guild_id)
    bot.tree.copy_global_to(guild=guild)
    synced = await bot.tree.sync(guild=guild)
    assert {c.name for c in synced} == {*names, "Edit with Mural", "Wave at"}
    assert all(c["guild_id"] == str(fake.guild_id) for c in fake.registered_commands[fake.guild_id])

    await bot.tree.sync()  # re-syncing keeps command ids stable, as on Discord
    again = next(c for c in fake.registered_commands[None] if c["name"] == "render")
    assert again["id"] == first_id


async def test_slash_defer_then_followup_with_file(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    inter = await fake.slash_command(alice, "render", {"idea": "a beach", "steps": 30})
    first = await inter.wait_response()
    assert first["type"] == 5 and inter.deferred and not inter.ephemeral
    assert inter.response_latency is not None and inter.response_latency < 3

    (message,) = await inter.wait_followup()
    assert message["content"] == "Rendered: a beach (30 steps)"
    # Discord turns the first followup after a "thinking" defer into the original response.
    assert inter.original is not None and inter.original["id"] == message["id"]
    assert not message["flags"] & 128

    upload = fake.requests_to("POST", rf"^/webhooks/{fake.application_id}/")[-1]
    assert upload.query["wait"] == "1" and "Authorization" not in upload.headers
    assert [(f.field, f.filename, f.data) for f in upload.files] == [("files[0]", "render.png", PNG)]

    (attachment,) = message["attachments"]
    assert attachment["filename"] == "render.png" and attachment["content_type"] == "image/png"
    assert attachment["size"] == len(PNG)
    async with aiohttp.ClientSession() as session, session.get(attachment["url"]) as response:
        assert response.status == 200
        assert await response.read() == PNG
    assert fake.attachment_bytes(attachment["url"]) == PNG


async def test_ephemeral_defer_makes_first_followup_ephemeral(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    inter = await fake.slash_command(alice, "secret")
    first, second = await inter.wait_followup(count=2)
    assert inter.deferred and inter.ephemeral
    assert inter.original is not None and first["id"] == inter.original["id"]  # took over the loading message
    assert first["flags"] & 64
    assert not second["flags"] & 64 and second["id"] != first["id"]
    assert [m["content"] for m in fake.messages_in(fake.channel_id, include_ephemeral=False)] == [
        "a second, public followup"
    ]


async def test_slash_command_arguments_are_checked_against_synced_definition(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    with pytest.raises(LookupError, match="not a synced command"):
        await fake.slash_command(alice, "imagine", {"idea": "x"})
    with pytest.raises(ValueError, match="no option 'style'"):
        await fake.slash_command(alice, "render", {"idea": "x", "style": "noir"})
    with pytest.raises(ValueError, match="requires option 'idea'"):
        await fake.slash_command(alice, "render", {})
    with pytest.raises(TypeError):
        await fake.slash_command(alice, "render", {"idea": 5})
    assert fake.interactions == []


async def test_thread_from_bot_message_receives_user_messages(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    channel = text_channel(bot, fake.channel_id)
    starter = await channel.send("Prompt: a beach at dusk")
    thread = await channel.create_thread(name="Refine: a beach", message=starter)
    assert thread.id == starter.id
    stored = fake.channels[thread.id]
    assert stored["type"] == 11 and stored["parent_id"] == str(fake.channel_id)
    await fake.wait_for(lambda: bot.get_channel(thread.id))  # THREAD_CREATE reached the cache

    await fake.user_message(alice, thread.id, "make it night")
    (seen,) = await fake.wait_for(lambda: [m for m in bot.seen if m.channel.id == thread.id])
    assert seen.content == "make it night" and isinstance(seen.channel, discord.Thread)
    assert seen.author.id == int(alice["id"])

    reply = await thread.send("Updated prompt: a beach at night")
    assert [m["content"] for m in fake.messages_in(thread.id)] == ["make it night", reply.content]


async def test_thread_creation_is_validated(fake: FakeDiscord, bot: FixtureBot) -> None:
    channel = text_channel(bot, fake.channel_id)
    starter = await channel.send("Prompt: a forest")
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.create_thread(name="x" * 101, message=starter)
    assert too_long.value.status == 400 and too_long.value.code == 50035

    other_info = fake.add_text_channel("other")
    other = await fake.wait_for(lambda: bot.get_channel(int(other_info["id"])))
    assert isinstance(other, discord.TextChannel)
    elsewhere = await other.send("Prompt elsewhere")
    with pytest.raises(discord.NotFound) as wrong_channel:
        await channel.create_thread(name="nope", message=elsewhere)
    assert wrong_channel.value.code == 10008

    await channel.create_thread(name="first", message=starter)
    with pytest.raises(discord.HTTPException) as twice:
        await channel.create_thread(name="second", message=starter)
    assert twice.value.code == 160004


async def test_dynamic_button_click_gets_ephemeral_reply(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    view = discord.ui.View(timeout=None)
    view.add_item(Reroll(42))
    sent = await text_channel(bot, fake.channel_id).send("Prompt #42", view=view)

    click = await fake.click(alice, sent.id, "reroll:42")
    body = await click.wait_response()
    assert body["type"] == 4 and body["data"]["content"] == "Rerolling prompt 42"
    assert click.ephemeral
    assert click.original is not None and click.original["flags"] & 64
    with pytest.raises(LookupError):
        await fake.click(alice, sent.id, "reroll:43")


async def test_modal_submit_reaches_modal(fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]) -> None:
    with pytest.raises(LookupError):
        await fake.submit_modal(alice, "idea-modal", {"idea": "too early"})
    opener = await fake.slash_command(alice, "describe")
    assert (await opener.wait_response())["type"] == 9
    assert opener.modal is not None and opener.modal["title"] == "Describe your idea"
    assert [c["type"] for c in opener.modal["components"]] == [1, 18]

    with pytest.raises(ValueError, match="required"):
        await fake.submit_modal(alice, "idea-modal", {"mood": "gloomy"})
    submit = await fake.submit_modal(alice, "idea-modal", {"idea": "a castle", "mood": "gloomy"})
    body = await submit.wait_response()
    assert body["data"]["content"] == "Idea: a castle / mood: gloomy"


async def test_interaction_mistakes_are_rejected_like_discord(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    early = await fake.slash_command(alice, "misbehave", {"mode": "early-followup"})
    assert (await early.wait_response())["data"]["content"] == "recovered from 10015"
    assert isinstance(bot.errors[-1], discord.NotFound)

    long = await fake.slash_command(alice, "misbehave", {"mode": "too-long"})
    assert (await long.wait_response())["data"]["content"] == "recovered from 50035"
    assert bot.errors[-1].status == 400

    url = f"{fake.http_url}/api/v10/interactions/{long.id}/{long.token}/callback"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"type": 4, "data": {"content": "again"}}) as response:
            assert response.status == 400
            assert (await response.json())["code"] == 40060
        headers = {"Authorization": f"Bot {TOKEN}"}
        async with session.get(f"{fake.http_url}/api/v10/no/such/route", headers=headers) as response:
            assert response.status == 404
            assert await response.json() == {"message": "404: Not Found", "code": 0}
        async with session.get(f"{fake.http_url}/api/v10/users/@me") as response:
            assert response.status == 401
    assert [r.status for r in fake.requests_to("GET", r"^/no/such/route$")] == [404]
    assert len(long.responses) == 1


async def test_autocomplete_choices_reach_the_user(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    style = next(c for c in fake.registered_commands[None] if c["name"] == "style")
    assert [(o["name"], o.get("autocomplete", False)) for o in style["options"]] == [
        ("idea", False),
        ("style", True),
        ("count", True),
    ]
    inter = await fake.autocomplete(alice, "style", {"idea": "a beach", "style": "no"}, focused="style")
    body = await inter.wait_response()
    assert body["type"] == 8 and inter.payload["type"] == 4
    choices = inter.choices
    assert choices == [{"name": "Noir", "value": "noir"}, {"name": "Nocturne", "value": "nocturne"}]
    assert inter.focused == {"name": "style", "type": 3, "value": "no", "focused": True}
    assert "resolved" not in inter.data
    (seen,) = bot.autocompleted
    assert seen["type"] is discord.InteractionType.autocomplete
    assert seen["current"] == "no" and seen["namespace"] == {"idea": "a beach", "style": "no"}
    assert seen["options"] == [
        {"name": "idea", "type": 3, "value": "a beach"},
        {"name": "style", "type": 3, "value": "no", "focused": True},
    ]
    assert fake.messages_in(fake.channel_id) == []  # suggestions are not messages

    # The user picks a suggestion and sends the command; that is an ordinary slash command.
    run = await fake.slash_command(alice, "style", {"idea": "a beach", "style": choices[0]["value"]})
    assert (await run.wait_response())["data"]["content"] == "a beach in noir x1"
    assert run.choices is None


async def test_autocomplete_sends_the_partial_text_unvalidated(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    # An integer option being typed arrives as the raw text, even past max_value, and without the
    # required "idea" the user has not filled in yet.
    inter = await fake.autocomplete(alice, "style", {"style": "noir", "count": "9"}, focused="count")
    await inter.wait_response()
    assert inter.choices == [{"name": f"{n} images", "value": n} for n in range(1, 5)]
    (seen,) = bot.autocompleted
    assert seen["current"] == "9" and seen["namespace"] == {"style": "noir", "count": "9"}
    assert seen["options"] == [
        {"name": "style", "type": 3, "value": "noir"},
        {"name": "count", "type": 4, "value": "9", "focused": True},
    ]

    empty = await fake.autocomplete(alice, "style", focused="style")  # focused but nothing typed yet
    await empty.wait_response()
    assert bot.autocompleted[-1]["current"] == "" and len(empty.choices or []) == len(STYLES)


async def test_autocomplete_is_only_sent_for_autocomplete_options(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="no autocomplete"):
        await fake.autocomplete(alice, "style", {"idea": "a be"}, focused="idea")
    with pytest.raises(ValueError, match="no autocomplete"):
        await fake.autocomplete(alice, "render", {"idea": "a be"}, focused="idea")
    with pytest.raises(ValueError, match="no option 'mood'"):
        await fake.autocomplete(alice, "style", {"mood": "calm"}, focused="mood")
    with pytest.raises(TypeError, match="partially typed text"):
        await fake.autocomplete(alice, "style", {"count": 3}, focused="count")
    with pytest.raises(ValueError, match="max_value"):  # options already filled in are still checked
        await fake.autocomplete(alice, "style", {"count": 9, "style": "n"}, focused="style")
    with pytest.raises(LookupError, match="not a synced command"):
        await fake.autocomplete(alice, "imagine", {"idea": "x"}, focused="idea")
    assert fake.interactions == [] and bot.autocompleted == []


async def test_autocomplete_answers_are_limited_like_discord(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    inter = await fake.autocomplete(alice, "style", {"style": "misbehave"}, focused="style")
    await inter.wait_response()
    assert inter.choices == [{"name": "fallback", "value": "fallback"}]
    assert [(e.status, e.code) for e in bot.errors] == [(400, 50035)] * 4 + [(400, 40043)]
    too_many, blank, long_name, long_value, message = (str(e) for e in bot.errors)
    assert "In data.choices: Must be 25 or fewer in length." in too_many
    assert "In data.choices.0.name: Must be between 1 and 100 in length." in blank
    assert "In data.choices.0.name: Must be between 1 and 100 in length." in long_name
    assert "In data.choices.0.value: Must be 100 or fewer in length." in long_value
    assert "not valid for this interaction" in message
    callbacks = fake.requests_to("POST", rf"^/interactions/{inter.id}/")
    assert [r.status for r in callbacks] == [400, 400, 400, 400, 400, 200]
    assert callbacks[0].json == {
        "type": 8,
        "data": {"choices": [{"name": f"style {n}", "value": f"s{n}"} for n in range(26)]},
    }
    assert len(inter.responses) == 1 and fake.messages_in(fake.channel_id) == []

    webhook = f"{fake.http_url}/api/v10/webhooks/{fake.application_id}/{inter.token}"
    callback = f"{fake.http_url}/api/v10/interactions/{inter.id}/{inter.token}/callback"
    async with aiohttp.ClientSession() as session:
        async with session.post(webhook, json={"content": "followup"}) as response:
            assert response.status == 404 and (await response.json())["code"] == 10015
        async with session.post(callback, json={"type": 8, "data": {"choices": []}}) as response:
            assert response.status == 400 and (await response.json())["code"] == 40060


async def test_autocomplete_result_only_answers_autocomplete(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    inter = await fake.slash_command(alice, "misbehave", {"mode": "choices"})
    assert (await inter.wait_response())["data"]["content"] == "recovered from 40043"
    assert inter.choices is None and inter.focused is None


async def test_drop_gateway_resumes_and_replays(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    await fake.drop_gateway()
    await fake.user_message(alice, fake.channel_id, "while you were away")  # buffered for RESUME
    await fake.wait_until_ready()
    assert fake.resume_count == 1 and fake.identify_count == 1
    await fake.wait_for(lambda: [m for m in bot.seen if m.content == "while you were away"])

    inter = await fake.slash_command(alice, "ping")
    assert (await inter.wait_response())["data"]["content"] == "pong"

    await fake.drop_gateway(resumable=False)  # invalid session: the client must identify again
    await fake.wait_for(lambda: fake.identify_count == 2)
    await fake.wait_until_ready()
    again = await fake.slash_command(alice, "ping")
    assert (await again.wait_response())["data"]["content"] == "pong"


async def test_fail_next_and_permissions_raise_discord_errors(fake: FakeDiscord, bot: FixtureBot) -> None:
    channel = text_channel(bot, fake.channel_id)
    route = rf"^/channels/{fake.channel_id}/messages$"
    fake.fail_next("POST", route, 403, code=50013, message="Missing Permissions")
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("hello")
    assert forbidden.value.code == 50013 and forbidden.value.text == "Missing Permissions"

    fake.fail_next("POST", route, 429, retry_after=0.05)
    sent = await channel.send("after a rate limit")  # discord.py sleeps retry_after, then retries
    assert fake.messages[sent.id]["content"] == "after a rate limit"
    assert [r.status for r in fake.requests_to("POST", route)] == [403, 429, 200]

    fake.set_everyone_permissions(Permissions.EVERYONE_DEFAULT & ~Permissions.ATTACH_FILES)
    fake.set_bot_permissions(Permissions.BOT_DEFAULT & ~Permissions.ATTACH_FILES)
    with pytest.raises(discord.Forbidden) as no_files:
        await channel.send(file=discord.File(io.BytesIO(PNG), filename="x.png"))
    assert no_files.value.code == 50013
    text_only = await channel.send("text still works")
    assert text_only.content == "text still works"
    with pytest.raises(discord.Forbidden) as no_files_on_edit:
        await text_only.edit(attachments=[discord.File(io.BytesIO(PNG), filename="x.png")])
    assert no_files_on_edit.value.code == 50013
    assert (await text_only.edit(content="edited without files")).content == "edited without files"


async def test_restarted_bot_sees_existing_thread_and_old_buttons(
    fake: FakeDiscord, start_bot: StartBot, alice: dict[str, Any]
) -> None:
    first = await start_bot()
    channel = text_channel(first, fake.channel_id)
    view = discord.ui.View(timeout=None)
    view.add_item(Reroll(7))
    starter = await channel.send("Prompt #7", view=view)
    thread = await channel.create_thread(name="Refine #7", message=starter)
    await first.close()
    await fake.wait_for(lambda: not any(s.live for s in fake._sessions.values()))

    second = await start_bot(sync=False)
    assert fake.identify_count == 2
    cached = second.get_channel(thread.id)
    assert isinstance(cached, discord.Thread) and cached.name == "Refine #7"
    click = await fake.click(alice, starter.id, "reroll:7")
    assert (await click.wait_response())["data"]["content"] == "Rerolling prompt 7"


async def test_session_without_message_content_gets_blank_content(
    fake: FakeDiscord, start_bot: StartBot, alice: dict[str, Any]
) -> None:
    bot = await start_bot(FixtureBot(message_content=False), sync=False)
    await fake.user_message(alice, fake.channel_id, "secret idea")
    (seen,) = await fake.wait_for(lambda: bot.seen)
    assert seen.content == ""


async def test_patched_context_manager_restores_urls() -> None:
    original = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as server:
        with server.patched():
            assert f"{server.http_url}/api/v10" == discord.http.Route.BASE
            assert f"{server.http_url}/api/v10" == discord.webhook.async_.Route.BASE
            assert yarl.URL(server.ws_url) == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    assert original == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


# ---------------------------------------------------------------- Components v2


def v2_files(*versions: str) -> list[discord.File]:
    return [discord.File(io.BytesIO(png(v)), filename=f"{v}.png") for v in versions]


async def raw_error(fake: FakeDiscord, method: str, path: str, payload: Any) -> dict[str, Any]:
    """Send a raw JSON request with the bot token; return the Discord error body (asserting a 400)."""
    headers = {"Authorization": f"Bot {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        url = f"{fake.http_url}/api/v10{path}"
        async with session.request(method, url, json=payload, headers=headers) as response:
            body = await response.json()
            assert response.status == 400, body
            return body


def inner_error(body: dict[str, Any]) -> tuple[str, str]:
    """The (dotted path, code) of the first error in a 50035 body."""
    assert body["code"] == 50035, body
    path: list[str] = []
    errors = body["errors"]
    while "_errors" not in errors:
        key = next(iter(errors))
        path.append(key)
        errors = errors[key]
    return ".".join(path), errors["_errors"][0]["code"]


async def test_layout_view_message_is_stored_resolved_and_clickable(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    card = PromptCard(1, ["v1", "v2"])
    sent = await text_channel(bot, fake.channel_id).send(view=card, files=v2_files("v1", "v2"))

    stored = fake.messages[sent.id]
    assert stored["flags"] & 32768 and sent.flags.components_v2 and stored["content"] == ""
    (container,) = stored["components"]
    assert container["type"] == 17 and container["accent_color"] == 0x5865F2
    heading, gallery, section, separator, row = container["components"]
    assert [c["type"] for c in (heading, gallery, section, separator, row)] == [10, 12, 9, 14, 1]
    ids = [container["id"], *(c["id"] for c in container["components"]), section["components"][0]["id"]]
    ids += [section["accessory"]["id"], *(c["id"] for c in row["components"])]
    assert sorted(ids) == list(range(1, 11))  # Discord numbers every component, depth first
    assert (section["id"], section["components"][0]["id"], section["accessory"]["id"]) == (4, 5, 6)
    # attachment:// media became the uploaded attachments, which then leave ``attachments``.
    v1, v2 = fake.attachments_of(sent)
    assert stored["attachments"] == [] and sent.attachments == []
    first = gallery["items"][0]["media"]
    assert first["url"] == v1["url"] and first["attachment_id"] == v1["id"]
    assert first["content_type"] == "image/png" and gallery["items"][1]["media"]["attachment_id"] == v2["id"]
    assert fake.attachment_bytes(first["attachment_id"]) == png("v1")
    parsed = sent.components[0]
    assert isinstance(parsed, discord.components.Container)
    media = parsed.children[1]
    assert isinstance(media, discord.components.MediaGalleryComponent)
    assert [item.media.attachment_id for item in media.items] == [int(v1["id"]), int(v2["id"])]

    assert fake.text_of(sent) == "# Prompt 1\nLatest: v2"
    assert fake.buttons_of(sent) == [
        {"label": "Edit", "custom_id": "edit:1", "disabled": False, "style": 2, "url": None, "id": 6},
        {"label": "Delete", "custom_id": "delete:1", "disabled": False, "style": 4, "url": None, "id": 9},
        {
            "label": "Guide",
            "custom_id": None,
            "disabled": False,
            "style": 5,
            "url": "https://example.com/guide",
            "id": 10,
        },
    ]

    click = await fake.click(alice, sent.id, label="Edit")  # the section accessory
    assert (await click.wait_response())["type"] == 7
    assert click.data == {"custom_id": "edit:1", "component_type": 2, "id": 6}
    assert card.edits == [int(alice["id"])]
    assert [b["disabled"] for b in fake.buttons_of(sent)] == [True, False, False]
    assert [a["id"] for a in fake.attachments_of(sent)] == [v1["id"], v2["id"]]  # kept by the edit
    with pytest.raises(ValueError, match="disabled"):
        await fake.click(alice, sent.id, label="Edit")
    with pytest.raises(ValueError, match="link"):
        await fake.click(alice, sent.id, label="Guide")
    with pytest.raises(LookupError, match="0 buttons labelled 'Share'"):
        await fake.click(alice, sent.id, label="Share")


async def test_components_v2_followup_replaces_the_thinking_message(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    inter = await fake.slash_command(alice, "card")
    (message,) = await inter.wait_followup()
    assert inter.original is not None and inter.original["id"] == message["id"]
    assert message["flags"] == 32768 and message["type"] == 20
    upload = fake.requests_to("POST", rf"^/webhooks/{fake.application_id}/")[-1]
    assert upload.query["with_components"] == "1" and "content" not in upload.json
    assert fake.text_of(message) == "# Prompt 9\nLatest: v1"
    (attachment,) = fake.attachments_of(message)
    assert attachment["filename"] == "v1.png" and message["attachments"] == []


async def test_components_v2_limits_are_refused_like_discord(fake: FakeDiscord, bot: FixtureBot) -> None:
    channel = text_channel(bot, fake.channel_id)

    async def refused(**kwargs: Any) -> str:
        with pytest.raises(discord.HTTPException) as info:
            await channel.send(**kwargs)
        assert (info.value.status, info.value.code) == (400, 50035)
        return info.value.text

    text = await refused(content="hello", view=PromptCard(1, ["v1"]), files=v2_files("v1"))
    assert "In content: The 'content' field cannot be used when using MessageFlags.IS_COMPONENTS_V2" in text
    embed = discord.Embed(title="old style")
    text = await refused(embed=embed, view=PromptCard(1, ["v1"]), files=v2_files("v1"))
    assert "In embeds: The 'embeds' field cannot be used" in text

    long = discord.ui.LayoutView()
    long.add_item(discord.ui.TextDisplay("x" * 2500)).add_item(discord.ui.TextDisplay("y" * 1501))
    assert "In components: The total length of all text displays must be 4000" in await refused(view=long)
    long.children[1].content = "y" * 1500  # type: ignore[attr-defined]  # 4,000 exactly is fine
    assert (await channel.send(view=long)).flags.components_v2

    gallery = discord.ui.LayoutView()
    items = [discord.MediaGalleryItem(f"https://example.com/{n}.png") for n in range(11)]
    gallery.add_item(discord.ui.MediaGallery(*items))
    assert "In components.0.items: Must be between 1 and 10 in length." in await refused(view=gallery)

    text = await refused(view=PromptCard(1, ["v1", "v2"]), files=v2_files("v1"))  # no v2.png uploaded
    assert "In components.0.components.1.items.1.media.url: Referenced attachment 'v2.png'" in text
    spaced = discord.File(io.BytesIO(png("s")), filename="my render.png")  # Discord renames such uploads
    shows_spaced = discord.ui.LayoutView()
    shows_spaced.add_item(discord.ui.MediaGallery(discord.MediaGalleryItem(spaced)))
    assert "Referenced attachment 'my render.png'" in await refused(view=shows_spaced, file=spaced)
    assert [m["content"] for m in fake.messages_in(fake.channel_id)] == [""]  # only the 4,000 one

    # The error codes inside the 50035 bodies, with raw payloads (discord.py itself refuses
    # more than 40 items in a LayoutView, and legacy Views cannot hold v2 components).
    path = f"/channels/{fake.channel_id}/messages"
    texts = [{"type": 10, "content": f"line {n}"} for n in range(40)]
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        (
            {"flags": 32768, "content": "hi", "components": texts[:1]},
            ("content", "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"),
        ),
        (
            {"flags": 32768, "components": [{"type": 17, "components": texts}]},  # 41 components
            ("components", "BASE_TYPE_MAX_LENGTH"),
        ),
        (
            {"flags": 32768, "components": [{"type": 10, "content": "x" * 4001}]},
            ("components", "BASE_TYPE_MAX_LENGTH"),
        ),
        (
            {
                "flags": 32768,
                "components": [{"type": 12, "items": [{"media": {"url": "attachment://a.png"}}]}],
            },
            ("components.0.items.0.media.url", "UNFURLED_MEDIA_ITEM_REFERENCED_ATTACHMENT_NOT_FOUND"),
        ),
        (
            {"flags": 32768, "components": [{"type": 13, "file": {"url": "https://example.com/a.zip"}}]},
            ("components.0.file.url", "URL_TYPE_INVALID_URL"),
        ),
        (
            {"flags": 32768, "components": [{"type": 11, "media": {"url": "https://example.com/a.png"}}]},
            ("components.0.type", "UNION_TYPE_CHOICES"),  # thumbnails only as a section accessory
        ),
        (
            {"flags": 32768, "components": [{"type": 9, "components": texts[:4], "accessory": texts[0]}]},
            ("components.0.components", "BASE_TYPE_BAD_LENGTH"),
        ),
        (
            {"content": "legacy", "components": [{"type": 17, "components": texts[:1]}]},  # no v2 flag
            ("components.0.type", "UNION_TYPE_CHOICES"),
        ),
    ]
    for payload, expected in cases:
        assert inner_error(await raw_error(fake, "POST", path, payload)) == expected, payload
    assert len(fake.messages_in(fake.channel_id)) == 1


async def test_editing_components_v2_messages_follows_discord(fake: FakeDiscord, bot: FixtureBot) -> None:
    channel = text_channel(bot, fake.channel_id)
    sent = await channel.send(view=PromptCard(2, ["v1"]), files=v2_files("v1"))
    (v1,) = fake.attachments_of(sent)

    # No ``attachments`` in the edit: every attachment stays and attachment:// still resolves.
    again = await sent.edit(view=PromptCard(2, ["v1"], edited=True))
    gallery = fake.messages[sent.id]["components"][0]["components"][1]
    assert gallery["items"][0]["media"]["attachment_id"] == v1["id"] and again.attachments == []
    # ``attachments=[new file]`` replaces the old ones, as discord.py documents.
    replaced = await again.edit(view=PromptCard(2, ["v2"]), attachments=v2_files("v2"))
    assert [a["filename"] for a in fake.attachments_of(replaced)] == ["v2.png"]
    # A referenced attachment is not in Message.attachments, so "keep the old ones" with
    # ``[*message.attachments, file]`` drops it, and naming it again is refused.
    with pytest.raises(discord.HTTPException) as dropped:
        await replaced.edit(
            view=PromptCard(2, ["v2", "v3"]), attachments=[*replaced.attachments, *v2_files("v3")]
        )
    assert dropped.value.code == 50035 and "Referenced attachment 'v2.png'" in dropped.value.text
    assert [a["filename"] for a in fake.attachments_of(replaced)] == ["v2.png"]  # unchanged

    # Once v2, always v2: content is refused, and so is clearing the flag.
    with pytest.raises(discord.HTTPException) as content:
        await replaced.edit(content="plain text again")
    assert "In content: The 'content' field cannot be used" in content.value.text
    path = f"/channels/{fake.channel_id}/messages/{sent.id}"
    body = await raw_error(fake, "PATCH", path, {"flags": 0})
    assert inner_error(body) == ("flags", "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG")
    assert fake.messages[sent.id]["flags"] & 32768

    # Upgrading a legacy message: content, embeds and attachments must be cleared in the edit.
    legacy_view = discord.ui.View(timeout=None)
    legacy_view.add_item(discord.ui.Button(label="Old", custom_id="old:3"))
    legacy = await channel.send("Prompt #3", view=legacy_view, file=v2_files("v0")[0])
    with pytest.raises(discord.HTTPException) as kept_content:
        await legacy.edit(view=PromptCard(3, ["v1"]), attachments=v2_files("v1"))
    assert "In content: The 'content' field cannot be used" in kept_content.value.text
    with pytest.raises(discord.HTTPException) as kept_files:
        await legacy.edit(content=None, view=PromptCard(3, ["v1"]))
    assert "In attachments: The 'attachments' field cannot be used" in kept_files.value.text
    upgraded = await legacy.edit(content=None, view=PromptCard(3, ["v1"]), attachments=v2_files("v1"))
    assert (
        upgraded.flags.components_v2
        and upgraded.content == ""
        and fake.text_of(upgraded) == ("# Prompt 3\nLatest: v1")
    )
    assert [a["filename"] for a in fake.attachments_of(upgraded)] == ["v1.png"]
    assert fake.buttons_of(upgraded)[0]["label"] == "Edit"


async def test_message_context_menu_receives_the_target_message(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    synced = {c["name"]: c for c in fake.registered_commands[None]}
    menu = synced["Edit with Mural"]
    assert (menu["type"], menu["description"], menu.get("options")) == (3, "", None)
    assert synced["Wave at"]["type"] == 2

    posted = await fake.user_message(alice, fake.channel_id, "my sketch", files={"sketch.png": png("sketch")})
    inter = await fake.message_command(alice, "Edit with Mural", int(posted["id"]))
    assert (await inter.wait_response())["type"] == 9  # it answers with the refine modal
    assert inter.payload["type"] == 2 and inter.target_id == int(posted["id"])
    assert inter.data["type"] == 3 and inter.data["id"] == menu["id"]
    assert inter.data["resolved"]["messages"][posted["id"]]["content"] == "my sketch"
    (seen,) = bot.targets
    assert seen["content"] == "my sketch" and seen["attachments"] == [("sketch.png", png("sketch"))]

    # On a v2 card the displayed attachments are in the components, not in message.attachments.
    card = await text_channel(bot, fake.channel_id).send(view=PromptCard(4, ["v1"]), files=v2_files("v1"))
    on_card = await fake.message_command(alice, "Edit with Mural", card.id)
    await on_card.wait_response()
    (v1,) = fake.attachments_of(card)
    assert bot.targets[-1]["components_v2"] and bot.targets[-1]["attachments"] == []
    assert bot.targets[-1]["media_ids"] == [int(v1["id"])]

    wave = await fake.user_command(alice, "Wave at", fake.owner_user)
    body = await wave.wait_response()
    assert body["data"]["content"] == "alice waves at owner"
    assert wave.original is not None and wave.original["type"] == 23  # CONTEXT_MENU_COMMAND
    assert wave.original["interaction_metadata"]["target_user"]["id"] == fake.owner_user["id"]

    with pytest.raises(LookupError, match="not a synced message command"):
        await fake.message_command(alice, "Wave at", int(posted["id"]))
    with pytest.raises(LookupError, match="does not exist"):
        await fake.message_command(alice, "Edit with Mural", 1234)


async def test_context_menu_definitions_follow_discord_naming(fake: FakeDiscord, bot: FixtureBot) -> None:
    path = f"/applications/{fake.application_id}/commands"
    slash_caps = [{"name": "Edit with Mural", "type": 1, "description": "no capitals or spaces"}]
    assert inner_error(await raw_error(fake, "PUT", path, slash_caps)) == (
        "0.name",
        "APPLICATION_COMMAND_INVALID_NAME",
    )
    described = [{"name": "Edit with Mural", "type": 3, "description": "not allowed"}]
    assert inner_error(await raw_error(fake, "PUT", path, described))[0] == "0.description"
    with_options = [{"name": "Edit", "type": 3, "options": [{"name": "x", "type": 3, "description": "x"}]}]
    assert inner_error(await raw_error(fake, "PUT", path, with_options))[0] == "0.options"
    too_many = [{"name": f"Menu {n}", "type": 3} for n in range(16)]
    assert (await raw_error(fake, "PUT", path, too_many))["code"] == 30032
    assert any(c["name"] == "Edit with Mural" for c in fake.registered_commands[None])  # unchanged


async def test_modal_file_upload_delivers_attachments(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    posted = await fake.user_message(alice, fake.channel_id, "my sketch")
    opener = await fake.message_command(alice, "Edit with Mural", int(posted["id"]))
    await opener.wait_response()
    assert opener.modal is not None
    label = opener.modal["components"][1]
    assert label["type"] == 18 and label["component"]["type"] == 19
    assert (label["component"]["max_values"], label["component"]["required"]) == (3, False)

    with pytest.raises(ValueError, match="takes 0 to 3 file"):
        await fake.submit_modal(
            alice,
            "refine-modal",
            {"change": "x"},
            files={"reference": [(f"{n}.png", b"x") for n in range(4)]},
        )
    with pytest.raises(TypeError, match="file upload"):
        await fake.submit_modal(alice, "refine-modal", {"change": "x", "reference": ["1"]})
    submit = await fake.submit_modal(
        alice,
        "refine-modal",
        {"change": "warmer light"},
        files={"reference": [("ref.png", png("ref")), ("notes.txt", b"more sun")]},
    )
    assert (await submit.wait_response())["data"]["content"] == "Refining with 2 reference(s)"
    upload = submit.data["components"][1]["component"]
    assert upload["type"] == 19 and upload["custom_id"] == "reference"
    assert sorted(upload["values"]) == sorted(submit.data["resolved"]["attachments"])
    (refined,) = bot.refined
    assert refined == {
        "change": "warmer light",
        "files": [("ref.png", "image/png", True, png("ref")), ("notes.txt", "text/plain", True, b"more sun")],
    }

    reopened = await fake.message_command(alice, "Edit with Mural", int(posted["id"]))
    await reopened.wait_response()  # a submitted modal is done; discord.py forgets it
    without = await fake.submit_modal(alice, "refine-modal", {"change": "nothing to add"})
    assert (await without.wait_response())["data"]["content"] == "Refining with 0 reference(s)"
    assert "resolved" not in without.data


async def test_an_action_row_of_six_buttons_is_refused_naming_the_field(fake: FakeDiscord) -> None:
    """Discord takes one to five components per action row; the sixth makes the whole message a 400."""
    path = f"/channels/{fake.channel_id}/messages"

    def card(buttons: int) -> dict[str, Any]:
        row = [
            {"type": 2, "style": 2, "label": f"Edit {n}", "custom_id": f"edit:{n}"} for n in range(buttons)
        ]
        return {"flags": 32768, "components": [{"type": 17, "components": [{"type": 1, "components": row}]}]}

    body = await raw_error(fake, "POST", path, card(6))
    assert inner_error(body) == ("components.0.components.0.components", "BASE_TYPE_BAD_LENGTH")
    assert "Must be between 1 and 5 in length." in str(body["errors"])
    assert inner_error(await raw_error(fake, "POST", path, card(0)))[1] == "BASE_TYPE_BAD_LENGTH"
    assert fake.messages_in(fake.channel_id) == []

    url, headers = f"{fake.http_url}/api/v10{path}", {"Authorization": f"Bot {TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=card(5), headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
    (posted,) = fake.messages_in(fake.channel_id)
    assert [b["label"] for b in fake.buttons_of(posted)] == [f"Edit {n}" for n in range(5)]
