"""Every card Mural builds fits Discord's limits, for every combination a member can ask for.

Discord refuses a whole message when one limit is broken, and by then the pictures are paid for. So the
builders are checked on what they serialize (`view.to_components()`), counted as Discord counts: one to five
children per action row, at most 40 components (nested ones included), 4,000 characters of text, 10 gallery
items, 25 select options, unique custom ids — at the largest inputs. Then the same through the real bot and
the loopback Discord: `/imagine count:4`, a long error, /help with everything set, a long audit line.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import discord
import pytest

from bot.core.errors import InvalidRequest, MuralError
from bot.core.images import ImageOptions, Picture, RenderedImages
from bot.core.prompt_templates import STYLES, TARGETS
from bot.core.prompt_text import MAX_IDEA_CHARS, MAX_INSTRUCTION_CHARS, MAX_PROMPT_CHARS
from bot.core.studio import HISTORY_LIMIT
from bot.models import Render, Session, SessionSummary, Version
from bot.ui import layouts
from bot.ui.delivery import PictureSource
from cogs.studio import _cards
from cogs.studio._buttons import EditModal, PictureEditModal, RefineModal
from loopback.fake_discord import Permissions
from loopback.fake_openai import ImageReply, make_png
from loopback.rig import EPHEMERAL, Rig

V1 = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."
FOUR_PICTURES = ["Edit 1", "Edit 2", "Edit 3", "Edit 4", "Reroll", "Copy"]
SNOWFLAKE = 1_234_567_890_123_456_789  # ids as long as Discord's get
ACTION_ROW, BUTTON, SELECT, TEXT_DISPLAY, MEDIA_GALLERY = 1, 2, 3, 10, 12

# The largest inputs: what quoting and escaping lengthen most (every character escaped, or one a line).
PROMPTS = {
    "words": ("a fox in the snow at dawn " * 2_000)[:MAX_PROMPT_CHARS],
    "markdown": ("*_~`|>#" * 5_000)[:MAX_PROMPT_CHARS],
    "lines": ("x\n" * 20_000)[:MAX_PROMPT_CHARS],
}
IDEA = ("*_" * MAX_IDEA_CHARS)[:MAX_IDEA_CHARS]
INSTRUCTION = ("_*" * MAX_INSTRUCTION_CHARS)[:MAX_INSTRUCTION_CHARS]
REVISED = "*" * 4_000  # shown clipped to 600 once escaped: a longer one changes only the time


def _kinds(kind: type[MuralError]) -> Iterator[type[MuralError]]:
    yield kind
    for subclass in kind.__subclasses__():
        yield from _kinds(subclass)


# The longest thing an error says of its own (the messages that echo a member's words are InvalidRequests).
LONGEST_ERROR = MuralError(user_message=max((kind.user_message for kind in _kinds(MuralError)), key=len))


def walk(components: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Every component of a payload, nested ones and section accessories included, as Discord counts."""
    for component in components:
        yield component
        yield from walk(component.get("components") or [])
        if component.get("accessory"):
            yield from walk([component["accessory"]])


def problems(components: Sequence[Any]) -> list[str]:
    """What Discord would refuse in a Components v2 message's `components`."""
    found = []
    every = list(walk(components))
    if len(every) > layouts.CARD_COMPONENTS_LIMIT:
        found.append(f"{len(every)} components")
    text = sum(len(c["content"]) for c in every if c["type"] == TEXT_DISPLAY)
    if text > layouts.CARD_TEXT_LIMIT:
        found.append(f"{text} characters of text")
    for component in every:
        if component["type"] == ACTION_ROW:
            children = component["components"]
            if not 1 <= len(children) <= layouts.ROW_WIDTH:
                found.append(f"an action row of {len(children)}")
            if len(children) > 1 and any(child["type"] != BUTTON for child in children):
                found.append("a select that shares its row")
        if component["type"] == MEDIA_GALLERY and not 1 <= len(component["items"]) <= layouts.GALLERY_LIMIT:
            found.append(f"a gallery of {len(component['items'])}")
        if component["type"] == SELECT:
            options = component["options"]
            if not 1 <= len(options) <= layouts.SELECT_OPTIONS_LIMIT:
                found.append(f"a select of {len(options)} options")
            if any(len(o["label"]) > 100 or len(o.get("description") or "") > 100 for o in options):
                found.append("a select option over 100 characters")
        if component["type"] == BUTTON and len(component.get("label") or "") > 80:
            found.append("a button label over 80 characters")
    ids = [c["custom_id"] for c in every if c.get("custom_id")]
    if len(ids) != len(set(ids)):
        found.append(f"repeated custom ids {ids}")
    return found


def payload(view: discord.ui.LayoutView) -> list[dict[str, Any]]:
    components = view.to_components()
    assert problems(components) == []
    return components


def texts(components: Sequence[Any]) -> list[str]:
    return [c["content"] for c in walk(components) if c["type"] == TEXT_DISPLAY]


def button_rows(components: Sequence[Any]) -> list[list[str]]:
    return [[b["label"] for b in c["components"]] for c in walk(components) if c["type"] == ACTION_ROW]


def session(*, origin: str = "imagine", thread: bool = False, dm: bool = False) -> Session:
    return Session(
        id=SNOWFLAKE,
        guild_id=None if dm else SNOWFLAKE,
        channel_id=SNOWFLAKE,
        thread_id=SNOWFLAKE if thread else None,
        owner_id=SNOWFLAKE,
        origin=origin,
        idea=IDEA,
        target=max(TARGETS, key=lambda key: len(TARGETS[key].label)),
        style=max(STYLES, key=len),
        head_version=999,
        aspect="landscape",
    )


def version(prompt: str = PROMPTS["words"], *, instruction: str | None = INSTRUCTION) -> Version:
    return Version(SNOWFLAKE, SNOWFLAKE, 999, 1, prompt, instruction, SNOWFLAKE, SNOWFLAKE)


def render(kind: str = "generate", count: int = 1) -> Render:
    return Render(
        id=SNOWFLAKE,
        session_id=SNOWFLAKE,
        version=999,
        requester_id=SNOWFLAKE,
        channel_id=SNOWFLAKE,
        status="done",
        model="gpt-image-2.6-sunburst",
        size="1536x1024",
        quality="xhigh",
        revised_prompt=REVISED,
        input_tokens=None,
        output_tokens=None,
        cost_usd=None,
        message_id=None,
        error_code=None,
        error=None,
        kind=kind,
        source_render_id=SNOWFLAKE if kind == "edit" else None,
        source_index=1 if kind == "edit" else None,
        instruction=INSTRUCTION if kind == "edit" else None,
        prompt=PROMPTS["markdown"],
        n=count,
    )


def rendered(count: int) -> RenderedImages:
    options = ImageOptions("gpt-image-2.6-sunburst", "1536x1024", "xhigh", count)
    return RenderedImages((Picture(b"", "png", "image/png"),) * count, options, REVISED, None, None, None)


def pictures(count: int) -> list[str]:
    return [f"mural-{SNOWFLAKE}-{SNOWFLAKE}-{index}.webp" for index in range(1, count + 1)]


# -- the builders ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", range(13))
def test_action_rows_hold_at_most_five_buttons_in_order(width: int) -> None:
    buttons = [discord.ui.Button(label=str(n), custom_id=str(n)) for n in range(width)]
    rows = layouts.action_rows(buttons)
    assert [button for row in rows for button in row] == buttons
    assert all(1 <= len(row) <= layouts.ROW_WIDTH for row in rows)
    assert len(rows) == -(-width // layouts.ROW_WIDTH)


def test_a_select_takes_a_row_of_its_own() -> None:
    select = discord.ui.Select(custom_id="s", options=[discord.SelectOption(label="a")])
    first, second = discord.ui.Button(label="1", custom_id="1"), discord.ui.Button(label="2", custom_id="2")
    assert layouts.action_rows([first, select, second]) == [[first], [select], [second]]


def test_a_card_never_holds_more_text_than_discord_shows() -> None:
    """A builder's slip is shortened, not refused after the pictures were paid for."""
    shown = texts(payload(layouts.card(["a" * 3_000, "b" * 3_000, "c" * 10])))
    assert sum(map(len, shown)) <= layouts.CARD_TEXT_LIMIT and shown[2] == "c" * 10


@pytest.mark.parametrize(
    ("count", "origin", "thread", "dm", "kind", "compressed"),
    [
        (count, origin, thread, dm, kind, compressed)
        for count, origin, thread, dm, kind, compressed in itertools.product(
            (1, 2, 3, 4, layouts.GALLERY_LIMIT),
            ("imagine", "prompt"),
            (False, True),
            (False, True),
            ("generate", "edit"),
            (False, True),
        )
        if not (dm and thread)  # a DM has no threads
    ],
)
def test_a_picture_card_fits_for_every_count_and_place(
    count: int, origin: str, thread: bool, dm: bool, kind: str, compressed: bool
) -> None:
    where, record, image = session(origin=origin, thread=thread, dm=dm), render(kind, count), rendered(count)
    with_prompt = origin == "imagine" and kind == "generate"  # as post_pictures decides
    for prompt in PROMPTS.values():
        drawn = version(prompt)
        card = _cards.picture_card(
            where, drawn, record, image, pictures(count), with_prompt=with_prompt, compressed=compressed
        )
        shown = payload(card)
        written = layouts.picture_texts(
            where, drawn, record, image, with_prompt=with_prompt, compressed=compressed
        )
        assert texts(shown) == written, "the caption fits as written, nothing cut by the card"
    edits = ["Edit"] if count == 1 else [f"Edit {n}" for n in range(1, count + 1)]
    going_on = ["Reroll", "Copy", *(["Refine"] if origin == "imagine" and not thread else [])]
    rows = button_rows(shown)
    assert [label for row in rows for label in row] == [*edits, *going_on]
    if count > 1:
        assert rows[-1] == going_on, "Edit 1…n on their own rows, the rest below"
    (gallery,) = [c for c in walk(shown) if c["type"] == MEDIA_GALLERY]
    assert len(gallery["items"]) == count


@pytest.mark.parametrize("prompt", PROMPTS, ids=str)
@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
@pytest.mark.parametrize("dm", [False, True])
def test_a_version_card_fits_the_longest_prompt(prompt: str, instruction: str | None, dm: bool) -> None:
    where, shown_version = session(origin="prompt", dm=dm), version(PROMPTS[prompt], instruction=instruction)
    shown = payload(_cards.version_card(where, shown_version))
    assert texts(shown) == layouts.version_texts(where, shown_version)
    assert button_rows(shown) == [["Generate", "Refine", "Undo", "Copy"]]


@pytest.mark.parametrize("prompt", PROMPTS, ids=str)
@pytest.mark.parametrize(("retry", "copy", "rephrase"), list(itertools.product((False, True), repeat=3)))
@pytest.mark.parametrize("error", [LONGEST_ERROR, InvalidRequest("x" * 6_000)], ids=["longest", "echoed"])
@pytest.mark.parametrize("editing", [False, True])
def test_a_failure_card_fits_with_the_prompt_and_every_button(
    prompt: str, retry: bool, copy: bool, rephrase: bool, error: MuralError, editing: bool
) -> None:
    where, failed = session(), version(PROMPTS[prompt])
    written = layouts.render_failure_texts(where, failed, error, with_prompt=not editing, editing=editing)
    shown = payload(
        _cards.failure_card(where, failed, render(), written, retry=retry, copy=copy, rephrase=rephrase)
    )
    assert texts(shown) == written
    wanted = ["Retry"] * retry + ["Rephrase safely"] * rephrase + ["Copy"] * copy
    assert button_rows(shown) == ([wanted] if wanted else [])


@pytest.mark.parametrize("preview", [None, "preview-1.png"])
@pytest.mark.parametrize("cancel", [None, SNOWFLAKE])
def test_progress_cancelled_and_retry_cards_fit(preview: str | None, cancel: int | None) -> None:
    shown = payload(_cards.progress_card("⏳ v999 is queued (#999 in the queue).", preview, cancel=cancel))
    assert button_rows(shown) == ([["Cancel"]] if cancel else [])
    assert button_rows(payload(_cards.retry_card(render(), layouts.upload_refused_text(version())))) == [
        ["Retry"]
    ]
    payload(_cards.cancelled_card(999))


@pytest.mark.parametrize("sessions", [1, HISTORY_LIMIT, layouts.SELECT_OPTIONS_LIMIT + 5])
@pytest.mark.parametrize("dm", [False, True])
def test_the_history_card_fits_however_many_sessions_with_the_longest_ideas(
    sessions: int, dm: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How a time is stored is not this test's business; as shown, it is always this long.
    monkeypatch.setattr(layouts, "when", lambda moment: "<t:1777777777:R>")
    summary = SessionSummary(session(dm=dm), 10**9, 10**9, None, SNOWFLAKE, SNOWFLAKE)  # type: ignore[arg-type]
    shown = payload(_cards.history_card(SNOWFLAKE, [summary] * sessions, None if dm else SNOWFLAKE))
    (select,) = [c for c in walk(shown) if c["type"] == SELECT]
    (listed,) = texts(shown)
    assert len(select["options"]) == listed.count("[open]"), "the menu offers what the card lists"
    assert min(sessions, HISTORY_LIMIT) <= len(select["options"]) <= layouts.SELECT_OPTIONS_LIMIT


def test_an_error_echoing_a_long_value_fits_one_message_with_its_code() -> None:
    shown = layouts.error_text(InvalidRequest("Size " + "9" * 6_000 + " is not a size."))
    assert len(shown) <= layouts.MESSAGE_LIMIT and shown.endswith("`E-INPUT`")
    assert problems(payload(layouts.notice_card(shown))) == []


@pytest.mark.parametrize(
    "modal",
    [
        RefineModal(SNOWFLAKE),
        EditModal(SNOWFLAKE, 4),
        PictureEditModal(PictureSource("x" * 1_024 + ".png", "https://cdn.example/x.png")),
    ],
    ids=lambda modal: type(modal).__name__,
)
def test_every_modal_fits_discords_limits(modal: discord.ui.Modal) -> None:
    """At most five top-level components, a title and labels of at most 45 characters, placeholders of 100."""
    shown = modal.to_dict()
    assert 1 <= len(shown["title"]) <= 45 and 1 <= len(shown["components"]) <= 5
    for label in shown["components"]:
        assert label["type"] == 18 and 1 <= len(label["label"]) <= 45
        box = label["component"]
        assert len(box.get("placeholder") or "") <= 100 and box["max_length"] <= 4_000


# -- end to end -----------------------------------------------------------------------------------


def labels(rig: Rig, message: dict[str, Any]) -> list[str]:
    return [b["label"] for b in rig.discord.buttons_of(message)]


def admin(rig: Rig) -> dict[str, Any]:
    return rig.discord.add_member(
        "admin", permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_GUILD
    )


async def settings(rig: Rig, member: dict[str, Any], **options: object) -> str:
    answer = await (await rig.discord.slash_command(member, "settings", options)).wait_response()
    assert "✅ Changed" in answer["data"]["content"], answer["data"]["content"]
    return answer["data"]["content"]


@pytest.mark.asyncio
@pytest.mark.parametrize("place", ["channel", "dm"])
async def test_imagine_count_4_delivers_four_pictures_with_an_edit_button_each(rig: Rig, place: str) -> None:
    """Four Edit buttons, Reroll, Copy and Refine used to share one action row (Discord allows five): E-BUG,
    after the pictures were paid for."""
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    where = {"channel_id": int(rig.discord.open_dm(alice)["id"])} if place == "dm" else {}
    pngs = [make_png(32, 32, (60 * n, 20, 20)) for n in range(1, 5)]
    rig.openai.script_chat(V1)
    rig.openai.script_images(ImageReply(png=pngs))

    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "count": 4}, **where)
    card = await rig.discord.wait_for(
        lambda: next(
            (
                m
                for m in [imagine.original]
                if m and ("Reroll" in labels(rig, m) or "E-" in rig.discord.text_of(m))
            ),
            None,
        ),
        message="the four pictures, or an error",
    )

    assert "E-" not in rig.discord.text_of(card)
    assert [rig.discord.attachment_bytes(a["url"]) for a in rig.discord.attachments_of(card)] == pngs
    assert rig.openai.image_requests[0].json["n"] == 4
    assert button_rows(card["components"]) == [FOUR_PICTURES[:4], [*FOUR_PICTURES[4:], "Refine"]]
    assert problems(card["components"]) == []


@pytest.mark.asyncio
async def test_an_error_echoing_a_long_option_still_reaches_the_member(rig: Rig) -> None:
    """`size` is free text (autocomplete only suggests): its refusal quotes it, and must still fit a message."""
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    refused = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "size": "9" * 5_000})
    answer = await refused.wait_response()
    assert answer["data"]["flags"] & EPHEMERAL and "`E-INPUT`" in answer["data"]["content"]
    assert rig.openai.calls("/chat/completions") == 0 and rig.openai.calls("/images/generations") == 0


@pytest.mark.asyncio
async def test_help_fits_with_every_setting_and_limit_shown(rig: Rig) -> None:
    await rig.start_bot()
    boss = admin(rig)
    role = rig.discord.members[int(boss["id"])]["roles"][0]
    await settings(
        rig,
        boss,
        required_role=str(role),
        daily_pictures=100_000,
        daily_spend=999_999.99,
        server_daily_spend=999_999.99,
        server_monthly_spend=999_999.99,
        moderation="strict",
    )
    answer = await rig.discord.slash_command(boss, "help")
    await answer.wait_response()
    assert answer.ephemeral and problems(answer.original["components"]) == []
    assert "$999,999.99 per month" in rig.discord.text_of(answer.original)


@pytest.mark.asyncio
async def test_a_strict_audit_line_quoting_the_longest_idea_fits_one_message(rig: Rig) -> None:
    """At `strict` the audit channel quotes what was refused; escaped, an idea can double in length."""
    await rig.start_bot()
    boss, alice = admin(rig), rig.discord.add_member("alice")
    audit = rig.discord.add_text_channel("mural-audit")
    await settings(rig, boss, audit_channel=audit["id"], moderation="strict")
    idea = ("FLAG:violence " + "*" * MAX_IDEA_CHARS)[:MAX_IDEA_CHARS]
    refused = await rig.discord.slash_command(alice, "prompt", {"idea": idea})
    await rig.answer_containing(refused, "E-FLAGGED")
    line = await rig.wait_for_bot_message(int(audit["id"]), "Moderation stopped")
    assert len(line["content"]) <= layouts.MESSAGE_LIMIT and "FLAG:violence" in line["content"]


@pytest.mark.asyncio
async def test_history_of_the_longest_ideas_fits_with_its_menu(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    for _ in range(HISTORY_LIMIT + 1):  # raw and reviewed: a session each, nothing sent to OpenAI
        started = await rig.discord.slash_command(
            alice, "imagine", {"idea": IDEA, "raw": True, "review": True}
        )
        await rig.answer_containing(started, "### v1")
    history = await rig.discord.slash_command(alice, "history")
    await history.wait_response()
    shown = history.original["components"]
    assert problems(shown) == []
    (select,) = [c for c in walk(shown) if c["type"] == SELECT]
    assert len(select["options"]) == HISTORY_LIMIT == "".join(texts(shown)).count("[open]")


@pytest.mark.parametrize(
    "prompt",
    [
        ("A red fox, *soft* light_ on **snow**. " * 1000)[:32000],
        "\n".join(["line"] * 8000),
        "x" * 32000,
    ],
    ids=["markdown", "many-lines", "plain"],
)
def test_a_long_prompt_keeps_most_of_the_room_it_is_given(prompt: str) -> None:
    """Shortened in proportion: a 32,000-character prompt fills its room, not a fraction of it."""
    block = layouts.prompt_block(prompt)
    room = layouts.CARD_TEXT_LIMIT - layouts._CARD_RESERVE
    assert room * 0.9 <= len(block) <= room
    assert block.endswith(layouts.SHORTENED_NOTE)
