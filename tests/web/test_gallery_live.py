"""The gallery end to end, in a real headless Chromium: the real bot (its gallery on GALLERY_PORT), the
loopback Discord and OpenAI, a real SQLite file. Members make pictures with /imagine, ask /gallery for
their link, and open it as they would."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import bot.app
from loopback.fake_discord import FakeInteraction, Permissions
from loopback.rig import Rig, loopback_rig, unused_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

LINK = re.compile(r"<(https?://[^>\s]+/g/[A-Za-z0-9_-]+)>")
EXPIRES = re.compile(r"<t:(\d+):f>")
SCRIPT_PROMPT = '<img src=x onerror=alert(1)></script><script>alert("boom")</script>'


@pytest_asyncio.fixture(loop_scope="module")
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    """The fakes and a database, the gallery served on a free port; the test starts the bot."""
    monkeypatch.setattr(bot.app, "freeze_startup_heap", lambda: None)
    async with loopback_rig(
        tmp_path, monkeypatch=monkeypatch, overrides={"GALLERY_PORT": str(unused_port())}
    ) as harness:
        yield harness


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser_context: Any) -> AsyncIterator[Any]:
    tab = await browser_context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: dialogs.append(dialog.message))
    yield tab
    assert dialogs == [], "a page ran a script it should not have"


async def started(rig: Rig, *, gallery_on: bool = True) -> None:
    await rig.start_bot()
    if gallery_on:
        await private_text(
            await rig.discord.slash_command(rig.discord.owner_user, "settings", {"gallery": "on"})
        )


async def imagine(rig: Rig, member: dict[str, Any], idea: str, **where: Any) -> dict[str, Any]:
    """`/imagine idea raw:true` (the prompt is the idea, word for word) to its finished card, and the
    picture kept for the gallery."""
    kept = kept_count(rig)
    interaction = await rig.discord.slash_command(member, "imagine", {"idea": idea, "raw": True}, **where)
    card = await rig.discord.wait_for(
        lambda: (
            interaction.original
            if interaction.original and rig.discord.attachments_of(interaction.original)
            else None
        ),
        message="the picture card",
    )
    await rig.discord.wait_for(lambda: kept_count(rig) > kept, message="the picture kept")
    return card


def kept_count(rig: Rig) -> int:
    return rig.query("SELECT COUNT(*) FROM gallery_pictures")[0][0]


async def private_text(interaction: FakeInteraction) -> str:
    first = await interaction.wait_response()
    if first["type"] == 4:
        return first["data"]["content"]
    (followup,) = await interaction.wait_followup()
    return followup["content"]


async def gallery_link(rig: Rig, member: dict[str, Any], **where: Any) -> str:
    """The link /gallery hands `member`, privately."""
    answer = await private_text(await rig.discord.slash_command(member, "gallery", {}, **where))
    found = LINK.search(answer)
    assert found, answer
    return found[1]


async def prompts_on(page: Any) -> list[str]:
    return await page.locator(".card .prompt-short").all_inner_texts()


async def test_three_pictures_appear_newest_first_with_who_made_them(rig: Rig, page: Any) -> None:
    await started(rig)
    alice = rig.discord.add_member("alice")
    for idea in ("a red fox at dawn", "a lighthouse in a storm", "a bowl of ramen, top view"):
        await imagine(rig, alice, idea)
    await page.goto(await gallery_link(rig, alice))
    assert await prompts_on(page) == [
        "a bowl of ramen, top view",
        "a lighthouse in a storm",
        "a red fox at dawn",
    ]
    metas = await page.locator(".card .meta").all_inner_texts()
    assert all("Alice" in meta and "gpt-image-2" in meta and "1024x1024" in meta for meta in metas), metas
    images = page.locator(".card img")
    for index in range(3):
        await images.nth(index).scroll_into_view_if_needed()
        assert await images.nth(index).evaluate("img => img.complete && img.naturalWidth > 0")
        assert "/img/" in (await images.nth(index).get_attribute("src") or "")


async def test_search_finds_a_picture_by_words_of_its_prompt(rig: Rig, page: Any) -> None:
    await started(rig)
    alice = rig.discord.add_member("alice")
    for idea in ("a red fox at dawn", "a blue whale at dusk", "a fox and a whale, friends"):
        await imagine(rig, alice, idea)
    await page.goto(await gallery_link(rig, alice))
    await page.fill("#q", "WHALE fox")
    await page.press("#q", "Enter")
    await page.wait_for_url("**?q=*")
    assert await prompts_on(page) == ["a fox and a whale, friends"]


async def test_the_detail_copies_the_prompt_and_opens_the_message_in_discord(rig: Rig, page: Any) -> None:
    await started(rig)
    alice = rig.discord.add_member("alice")
    prompt = "A lighthouse on a cliff at dusk, waves below, in the style of an old woodcut print"
    card = await imagine(rig, alice, prompt)
    await page.goto(await gallery_link(rig, alice))
    await page.click(".card a >> nth=0")
    await page.wait_for_url("**/p/*")
    assert await page.inner_text("#prompt") == prompt
    await page.click("#copy")
    await page.wait_for_function("document.getElementById('copy-status').textContent !== ''")
    assert await page.evaluate("navigator.clipboard.readText()") == prompt
    jump = f"https://discord.com/channels/{rig.discord.guild_id}/{card['channel_id']}/{card['id']}"
    assert await page.get_attribute("#discord", "href") == jump


async def test_a_private_channels_picture_is_hidden_from_a_member_who_cannot_view_it(
    rig: Rig, page: Any
) -> None:
    await started(rig)
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    secret = int(rig.discord.add_private_channel("secret", alice)["id"])
    await rig.discord.wait_for(lambda: rig.bot and rig.bot.get_channel(secret), message="the private channel")
    await imagine(rig, alice, "the secret plans", channel_id=secret)
    await imagine(rig, alice, "the public picture")
    await page.goto(await gallery_link(rig, bob))
    assert await prompts_on(page) == ["the public picture"]
    assert "secret plans" not in await page.content()
    hidden = rig.query("SELECT id FROM gallery_pictures WHERE channel_id = ?", (secret,))[0][0]
    bobs = page.url
    assert (await page.goto(f"{bobs}/p/{hidden}")).status == 404
    assert (await page.goto(f"{bobs}/img/{hidden}.webp")).status == 404
    await page.goto(await gallery_link(rig, alice))
    assert await prompts_on(page) == ["the public picture", "the secret plans"]


async def test_a_deleted_messages_picture_is_gone_from_the_page(rig: Rig, page: Any) -> None:
    await started(rig)
    alice = rig.discord.add_member("alice")
    moderator = rig.discord.add_member(
        "mod", permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_MESSAGES
    )
    doomed = await imagine(rig, alice, "soon deleted")
    await imagine(rig, alice, "staying")
    link = await gallery_link(rig, alice)
    await page.goto(link)
    assert await prompts_on(page) == ["staying", "soon deleted"]
    picture = await page.locator(".card img").nth(1).get_attribute("src")
    await rig.discord.delete_message(moderator, int(doomed["id"]))
    await rig.discord.wait_for(lambda: kept_count(rig) == 1, 3, message="the deleted picture forgotten")
    await page.goto(link)
    assert await prompts_on(page) == ["staying"]
    assert (await page.goto(f"{link.rsplit('/g/', 1)[0]}/g/{picture}")).status == 404


async def test_an_altered_link_is_refused(rig: Rig, page: Any) -> None:
    await started(rig)
    alice = rig.discord.add_member("alice")
    await imagine(rig, alice, "a private matter")
    link = await gallery_link(rig, alice)
    cut = len(link) - 12
    altered = link[:cut] + ("A" if link[cut] != "A" else "B") + link[cut + 1 :]
    response = await page.goto(altered)
    assert response.status == 403
    assert await page.inner_text("h1") == "403 Forbidden"
    assert "private matter" not in await page.content()
    assert (await page.goto(link)).status == 200


async def test_an_expired_link_is_refused(rig: Rig, page: Any) -> None:
    rig.overrides["GALLERY_LINK_SECONDS"] = "3"
    await started(rig)
    alice = rig.discord.add_member("alice")
    await imagine(rig, alice, "a fleeting thing")
    answer = await private_text(await rig.discord.slash_command(alice, "gallery", {}))
    link, expires = LINK.search(answer), EXPIRES.search(answer)
    assert link and expires, answer
    await asyncio.sleep(max(0.0, int(expires[1]) - time.time()) + 0.2)
    response = await page.goto(link[1])
    assert response.status == 403
    assert "fleeting" not in await page.content()


async def test_turning_the_gallery_off_refuses_an_old_link(rig: Rig, page: Any) -> None:
    await started(rig)
    alice = rig.discord.add_member("alice")
    await imagine(rig, alice, "now you see me")
    link = await gallery_link(rig, alice)
    assert (await page.goto(link)).status == 200
    await private_text(
        await rig.discord.slash_command(rig.discord.owner_user, "settings", {"gallery": "off"})
    )
    response = await page.goto(link)
    assert response.status == 403
    assert "now you see me" not in await page.content()


async def test_a_script_shaped_prompt_is_shown_as_text_and_runs_nothing(rig: Rig, page: Any) -> None:
    await started(rig)
    alice = rig.discord.add_member("alice")
    await imagine(rig, alice, SCRIPT_PROMPT)
    await page.goto(await gallery_link(rig, alice))
    assert await prompts_on(page) == [SCRIPT_PROMPT]
    await page.click(".card a >> nth=0")
    await page.wait_for_url("**/p/*")
    assert await page.inner_text("#prompt") == SCRIPT_PROMPT
    assert await page.locator("#prompt img, #prompt script").count() == 0
    await page.wait_for_timeout(200)  # any dialog would have fired by now (checked at teardown)
