"""The gallery's Discord half, as members and admins meet it: /gallery's private answer in every place,
/settings gallery:on|off, which pictures are kept (and as what), what a link's scope holds for members who
may or may not view a channel or a private thread, and pictures forgotten once their message is deleted.

The pages themselves are the web half's (tests/web/); here a link is read back as the page would read
it: its token checked against the deployment's secret, its scope and pictures asked of the store.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from typing import Any

import pytest
from PIL import Image

from bot.core.gallery import GalleryItem, GalleryScope, read_link
from cogs.gallery import posted_in_server as in_server
from loopback.fake_discord import FakeInteraction, Permissions
from loopback.fake_openai import ImageReply, make_png
from loopback.rig import EPHEMERAL, Rig, unused_port

pytestmark = pytest.mark.asyncio

PROMPT = "A red fox on a snowy hill at dawn, soft pink light, long shadows."
LINK = re.compile(r"<(https?://[^>\s]+/g/([A-Za-z0-9_-]+))>")


def serve_gallery(rig: Rig) -> None:
    rig.overrides["GALLERY_PORT"] = str(unused_port())


def kept_count(rig: Rig) -> int:
    return rig.query("SELECT COUNT(*) FROM gallery_pictures")[0][0]


async def until_kept(rig: Rig, count: int) -> None:
    await rig.discord.wait_for(lambda: kept_count(rig) == count, message=f"{count} kept picture(s)")


async def imagine(rig: Rig, member: dict[str, Any], channel_id: int | None = None, **options: Any) -> dict:
    """/imagine to the end: the card with its picture(s)."""
    rig.openai.script_chat(PROMPT)
    where = {} if channel_id is None else {"channel_id": channel_id}
    interaction = await rig.discord.slash_command(member, "imagine", {"idea": "a fox", **options}, **where)
    return await rig.discord.wait_for(
        lambda: (
            interaction.original
            if interaction.original
            and rig.discord.attachments_of(interaction.original)
            and any(b["label"].startswith("Edit") for b in rig.discord.buttons_of(interaction.original))
            else None
        ),
        message="the picture card",
    )


async def gallery_answer(rig: Rig, member: dict[str, Any], channel_id: int | None = None) -> str:
    """What /gallery answered, checked to be private."""
    where = {} if channel_id is None else {"channel_id": channel_id}
    interaction = await rig.discord.slash_command(member, "gallery", {}, **where)
    return await private_text(rig, interaction)


async def private_text(rig: Rig, interaction: FakeInteraction) -> str:
    first = await interaction.wait_response()
    if first["type"] == 4:  # answered at once
        data = first["data"]
        assert int(data.get("flags") or 0) & EPHEMERAL, data
        return data["content"]
    assert interaction.ephemeral
    (followup,) = await interaction.wait_followup()
    assert int(followup.get("flags") or 0) & EPHEMERAL
    return followup["content"]


async def settings(rig: Rig, state: str) -> str:
    answer = await rig.discord.slash_command(rig.discord.owner_user, "settings", {"gallery": state})
    return await private_text(rig, answer)


async def scope_of(rig: Rig, text: str) -> GalleryScope:
    """The scope a /gallery answer's link carries, read as the page reads it."""
    assert rig.bot is not None
    match = LINK.search(text)
    assert match, text
    claims = read_link(match[2], await rig.bot.store.gallery_secret(), now=time.time())
    assert claims is not None, "the link's token does not verify"
    scope = await rig.bot.store.gallery_scope(claims.scope_id)
    assert scope is not None
    assert (scope.user_id, scope.guild_id) == (claims.user_id, claims.guild_id)
    return scope


async def page(rig: Rig, scope: GalleryScope) -> list[GalleryItem]:
    assert rig.bot is not None
    return await rig.bot.store.gallery_page(scope)


# -- /gallery's answer in each place -------------------------------------------------------------------


async def test_without_a_gallery_port_gallery_says_privately_there_is_none_and_keeps_nothing(
    rig: Rig,
) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    dm = int(rig.discord.open_dm(alice)["id"])
    for where in (None, dm):
        assert "has not set one up" in await gallery_answer(rig, alice, where)
    await imagine(rig, alice, dm)
    await asyncio.sleep(0.3)
    assert kept_count(rig) == 0


async def test_in_a_server_with_the_gallery_off_one_line_says_who_can_turn_it_on(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    answer = await gallery_answer(rig, alice)
    assert "\n" not in answer and "off" in answer
    assert "Manage Server" in answer and "/settings gallery:on" in answer
    assert not LINK.search(answer)


async def test_settings_gallery_on_gives_links_and_off_hides_at_once(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    await imagine(rig, alice)
    await asyncio.sleep(0.3)
    assert kept_count(rig) == 0, "kept while the server's gallery was off"

    assert "Gallery: `on`" in await settings(rig, "on")
    await imagine(rig, alice)
    await until_kept(rig, 1)
    answer = await gallery_answer(rig, alice)
    assert "this server's pictures" in answer
    scope = await scope_of(rig, answer)
    assert scope.guild_id == rig.discord.guild_id and rig.discord.channel_id in scope.channel_ids
    (item,) = await page(rig, scope)
    assert (item.owner_name, item.prompt, item.channel_id) == ("Alice", PROMPT, rig.discord.channel_id)

    assert "Gallery: `off`" in await settings(rig, "off")
    assert await page(rig, scope) == [], "an old link must show nothing once the gallery is off"
    assert "off" in await gallery_answer(rig, alice)
    await settings(rig, "on")
    assert [i.id for i in await page(rig, scope)] == [item.id]


async def test_in_a_dm_the_link_shows_the_members_own_pictures_from_dms_and_servers_whose_gallery_is_on(
    rig: Rig,
) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    dm = int(rig.discord.open_dm(alice)["id"])
    await imagine(rig, alice, dm)
    await until_kept(rig, 1)
    await imagine(rig, alice)  # the server's gallery is off: not kept
    await settings(rig, "on")
    await imagine(rig, alice)
    await imagine(rig, bob)
    await until_kept(rig, 3)

    answer = await gallery_answer(rig, alice, dm)
    assert "your own pictures" in answer
    scope = await scope_of(rig, answer)
    assert scope.guild_id is None and scope.channel_ids == frozenset()
    shown = await page(rig, scope)
    assert [(i.guild_id, i.owner_id) for i in shown] == [
        (rig.discord.guild_id, int(alice["id"])),
        (None, int(alice["id"])),
    ]


async def test_a_user_install_in_a_server_without_mural_links_to_the_dm_gallery_instead(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    elsewhere = int(rig.discord.add_foreign_channel("their-server")["id"])
    await imagine(rig, alice, elsewhere)
    await until_kept(rig, 1)  # a user install's picture: its owner's own
    answer = await gallery_answer(rig, alice, elsewhere)
    assert "not a member of this server" in answer and not LINK.search(answer)
    dm = int(rig.discord.open_dm(alice)["id"])
    (item,) = await page(rig, await scope_of(rig, await gallery_answer(rig, alice, dm)))
    assert item.guild_id == rig.discord.foreign_guild_id and item.channel_id == elsewhere


# -- what a member's link may show -------------------------------------------------------------------------


async def test_a_member_without_access_to_a_private_channel_gets_a_scope_without_it(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    secret = int(rig.discord.add_private_channel("secret", alice)["id"])
    await rig.discord.wait_for(lambda: rig.bot and rig.bot.get_channel(secret), message="the private channel")
    await settings(rig, "on")
    await imagine(rig, alice, secret)
    await imagine(rig, alice)
    await until_kept(rig, 2)

    bobs = await scope_of(rig, await gallery_answer(rig, bob))
    assert secret not in bobs.channel_ids and rig.discord.channel_id in bobs.channel_ids
    assert [i.channel_id for i in await page(rig, bobs)] == [rig.discord.channel_id]
    alices = await scope_of(rig, await gallery_answer(rig, alice))
    assert secret in alices.channel_ids
    assert [i.channel_id for i in await page(rig, alices)] == [rig.discord.channel_id, secret]


async def test_a_private_threads_pictures_reach_only_its_members_and_moderators(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    may_start = Permissions.EVERYONE_DEFAULT | Permissions.CREATE_PRIVATE_THREADS
    alice, bob = rig.discord.add_member("alice", permissions=may_start), rig.discord.add_member("bob")
    moderator = rig.discord.add_member(
        "mod", permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_THREADS
    )
    await settings(rig, "on")
    thread = int(
        (await rig.discord.create_thread(alice, rig.discord.channel_id, "just us", private=True))["id"]
    )
    await rig.discord.wait_for(lambda: rig.bot and rig.bot.get_channel(thread), message="the thread")
    await imagine(rig, alice, thread)
    await until_kept(rig, 1)
    assert rig.query("SELECT channel_id, parent_id, private_thread FROM gallery_pictures") == [
        (thread, rig.discord.channel_id, 1)
    ]

    outside = await scope_of(rig, await gallery_answer(rig, bob))
    assert thread not in outside.channel_ids and await page(rig, outside) == []
    for member in (alice, moderator):
        inside = await scope_of(rig, await gallery_answer(rig, member))
        assert [i.channel_id for i in await page(rig, inside)] == [thread], member["username"]
    await rig.discord.add_thread_member(thread, bob)
    invited = await scope_of(rig, await gallery_answer(rig, bob))
    assert [i.channel_id for i in await page(rig, invited)] == [thread]


async def test_a_public_threads_pictures_follow_its_channel(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    await settings(rig, "on")
    thread = int((await rig.discord.create_thread(alice, rig.discord.channel_id, "ours"))["id"])
    await rig.discord.wait_for(lambda: rig.bot and rig.bot.get_channel(thread), message="the thread")
    await imagine(rig, alice, thread)
    await until_kept(rig, 1)
    scope = await scope_of(rig, await gallery_answer(rig, rig.discord.add_member("bob")))
    assert [i.channel_id for i in await page(rig, scope)] == [thread]


# -- kept as what, and forgotten when deleted ------------------------------------------------------------


async def test_each_picture_is_kept_as_webp_within_1024_px(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    await settings(rig, "on")
    rig.openai.script_images(
        ImageReply(png=[make_png(1536, 1024, (200, 40, 40)), make_png(64, 96, (0, 90, 0))])
    )
    card = await imagine(rig, alice, count=2)
    await until_kept(rig, 2)
    rows = rig.query(
        "SELECT p.message_id, p.picture_index, p.width, p.height, i.webp FROM gallery_pictures p"
        " JOIN gallery_images i ON i.picture_id = p.id ORDER BY p.picture_index"
    )
    assert [(message, index, width, height) for message, index, width, height, _ in rows] == [
        (int(card["id"]), 0, 1024, 683),
        (int(card["id"]), 1, 64, 96),
    ]
    for *_, webp in rows:
        with Image.open(io.BytesIO(webp)) as picture:
            assert picture.format == "WEBP" and max(picture.size) <= 1024


async def test_a_deleted_picture_message_is_forgotten_within_seconds(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    moderator = rig.discord.add_member(
        "mod", permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_MESSAGES
    )
    await settings(rig, "on")
    doomed, kept = await imagine(rig, alice), await imagine(rig, alice)
    await until_kept(rig, 2)
    await rig.discord.delete_message(moderator, int(doomed["id"]))
    await rig.discord.wait_for(lambda: kept_count(rig) == 1, 3, message="the deleted picture forgotten")
    assert rig.query("SELECT message_id FROM gallery_pictures") == [(int(kept["id"]),)]
    assert rig.query("SELECT COUNT(*) FROM gallery_images") == [(1,)]


async def test_a_moderators_bulk_deletion_forgets_every_picture_in_it(rig: Rig) -> None:
    serve_gallery(rig)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    moderator = rig.discord.add_member(
        "mod", permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_MESSAGES
    )
    await settings(rig, "on")
    cards = [await imagine(rig, alice) for _ in range(3)]
    await until_kept(rig, 3)
    await rig.discord.delete_messages(moderator, rig.discord.channel_id, [int(c["id"]) for c in cards[:2]])
    await rig.discord.wait_for(lambda: kept_count(rig) == 1, 3, message="the purged pictures forgotten")
    assert rig.query("SELECT message_id FROM gallery_pictures") == [(int(cards[2]["id"]),)]


async def test_a_link_made_before_a_restart_still_verifies_after_it(rig: Rig) -> None:
    serve_gallery(rig)
    bot = await rig.start_bot()
    secret = await bot.store.gallery_secret()
    alice = rig.discord.add_member("alice")
    dm = int(rig.discord.open_dm(alice)["id"])
    answer = await gallery_answer(rig, alice, dm)
    await rig.restart()
    assert rig.bot is not None and await rig.bot.store.gallery_secret() == secret
    scope = await scope_of(rig, answer)
    assert scope.user_id == int(alice["id"])


async def test_a_picture_for_another_processs_server_is_kept_only_when_its_gallery_is_on(rig: Rig) -> None:
    """With several processes, a job may finish in one that does not hold the server's shard: it cannot tell
    a server without its gallery from a user install there, so it keeps nothing unless the gallery is on."""
    serve_gallery(rig)
    bot = await rig.start_bot()
    elsewhere = (rig.discord.guild_id >> 22 | 1) << 22  # an id that shard 1 of 2 holds, in no cache here
    assert (elsewhere >> 22) % 2 == 1 and bot.get_guild(elsewhere) is None
    assert await in_server(bot, elsewhere, None) is False  # this process holds every shard: a user install
    bot.shard_ids, bot.shard_count = [0], 2
    assert await in_server(bot, elsewhere, None) is None
    await bot.store.change_server_settings(elsewhere, {"gallery": True})
    assert await in_server(bot, elsewhere, None) is True
    assert await in_server(bot, None, None) is False
