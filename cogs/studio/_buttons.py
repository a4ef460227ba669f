"""The studio's components: restart-proof buttons and selects, and the modals they open.

Each button is a `DynamicItem` whose `custom_id` carries the ids it acts on — a session and version
(`mural:gen:<session>:<version>`) or a render and picture (`mural:edit:<render>:<picture>`) — so a
press reloads the rest from SQLite through the studio cog, which checks who pressed. Failures go to
the one error owner, so no press is left unanswered. Each press and each submitted modal is a member's
action (`bot.ui.actions`), named by its class (never its label) and ended here when it returns.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Protocol, cast

import discord
from discord.ext import commands

from bot.core.prompt_text import MAX_INSTRUCTION_CHARS
from bot.ui import actions
from bot.ui.delivery import PictureSource
from bot.ui.errors import send_error

STUDIO_COG = "Studio"

Interaction = discord.Interaction[Any]


class StudioActions(Protocol):
    """What a press asks of the studio cog; the cog implements it."""

    async def check_access(self, interaction: Interaction) -> None: ...

    async def generate_pressed(self, interaction: Interaction, session_id: int, version: int) -> None: ...

    async def refine_pressed(self, interaction: Interaction, session_id: int) -> None: ...

    async def undo_pressed(self, interaction: Interaction, session_id: int, version: int) -> None: ...

    async def copy_pressed(self, interaction: Interaction, session_id: int, version: int) -> None: ...

    async def refine_submitted(self, interaction: Interaction, session_id: int, instruction: str) -> None: ...

    async def edit_pressed(self, interaction: Interaction, render_id: int, picture: int) -> None: ...

    async def edit_submitted(
        self, interaction: Interaction, render_id: int, picture: int, change: str
    ) -> None: ...

    async def reroll_pressed(self, interaction: Interaction, render_id: int) -> None: ...

    async def copy_render_pressed(self, interaction: Interaction, render_id: int) -> None: ...

    async def thread_pressed(self, interaction: Interaction, render_id: int) -> None: ...

    async def rephrase_pressed(self, interaction: Interaction, render_id: int) -> None: ...

    async def cancel_pressed(self, interaction: Interaction, render_id: int) -> None: ...

    async def history_picked(self, interaction: Interaction, owner_id: int, session_id: int) -> None: ...

    async def picture_edit_submitted(
        self, interaction: Interaction, source: PictureSource, change: str
    ) -> None: ...


def studio_actions(interaction: Interaction) -> StudioActions:
    actions = cast(commands.Bot, interaction.client).get_cog(STUDIO_COG)
    if actions is None:
        raise RuntimeError("the studio extension is not loaded")
    return cast(StudioActions, actions)


def _template(action: str, ids: int) -> str:
    return rf"mural:{action}" + "".join(rf":(?P<id{n}>[0-9]+)" for n in range(ids))


# The shared base is never registered, so its template matches nothing.
class _StudioButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """What the studio's buttons share: `mural:<action>:<id>…` custom ids, parsing them back, errors."""

    action: ClassVar[str]
    label: ClassVar[str]
    emoji: ClassVar[str]
    # What pressing it does, in one line for /help.
    hint: ClassVar[str]
    style: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary
    # The action's name in the log when it differs from `action` (which custom ids keep for good).
    logged_as: ClassVar[str] = ""
    # Its ids are a session and version (else a render first).
    on_version: ClassVar[bool] = False

    def __init__(self, *ids: int, label: str | None = None, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or self.label,
                emoji=self.emoji,
                style=self.style,
                disabled=disabled,
                custom_id=":".join(["mural", self.action, *map(str, ids)]),
            )
        )
        self.ids = ids

    @classmethod
    async def from_custom_id(
        cls, interaction: Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> _StudioButton:
        return cls(*(int(value) for value in match.groups()))

    async def callback(self, interaction: Interaction) -> None:
        name = self.logged_as or self.action
        if self.on_version:
            action = actions.begin(interaction, "button", name, session=self.ids[0], version=self.ids[1])
        else:
            action = actions.begin(interaction, "button", name, render=self.ids[0])
        try:
            studio = studio_actions(interaction)
            await studio.check_access(interaction)
            await self.press(studio, interaction)
        except Exception as error:
            await send_error(interaction, error)
        else:
            actions.succeeded(action)

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        raise NotImplementedError


# -- on a version ---------------------------------------------------------------------------------


class GenerateButton(_StudioButton, template=_template("gen", 2)):
    action, label, emoji, style = "gen", "Generate", "🎨", discord.ButtonStyle.primary
    hint = "draw this version"
    logged_as, on_version = "generate", True

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.generate_pressed(interaction, *self.ids)


class RefineButton(_StudioButton, template=_template("refine", 2)):
    action, label, emoji = "refine", "Refine", "✏️"
    hint = "a box for what should change; the answer becomes the next version (works everywhere)"
    on_version = True

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.refine_pressed(interaction, self.ids[0])


class UndoButton(_StudioButton, template=_template("undo", 2)):
    action, label, emoji = "undo", "Undo", "↩️"
    hint = "back to the version before; the next refinement branches from it"
    on_version = True

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.undo_pressed(interaction, *self.ids)


class CopyButton(_StudioButton, template=_template("copy", 2)):
    action, label, emoji = "copy", "Copy", "📋"
    hint = "the bare prompt, privately (a file when it is long)"
    on_version = True

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.copy_pressed(interaction, *self.ids)


# -- on a picture ---------------------------------------------------------------------------------


class EditButton(_StudioButton, template=_template("edit", 2)):
    action, label, emoji, style = "edit", "Edit", "🖌️", discord.ButtonStyle.primary
    hint = "change this picture by an instruction (Edit 1…4 when there are several)"

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.edit_pressed(interaction, *self.ids)


class RerollButton(_StudioButton, template=_template("reroll", 1)):
    action, label, emoji = "reroll", "Reroll", "🎲"
    hint = "the same prompt drawn again (Retry after a failure)"

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.reroll_pressed(interaction, self.ids[0])


class CopyRenderButton(_StudioButton, template=_template("rcopy", 1)):
    action, label, emoji = "rcopy", "Copy", "📋"
    hint = "this picture's prompt, privately"
    logged_as = "copy"

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.copy_render_pressed(interaction, self.ids[0])


class ThreadButton(_StudioButton, template=_template("thread", 1)):
    """`Refine` on an /imagine picture: opens a session thread for it."""

    action, label, emoji = "thread", "Refine", "✏️"
    hint = "on an /imagine picture: a session for its prompt, to refine it"

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.thread_pressed(interaction, self.ids[0])


class CancelButton(_StudioButton, template=_template("cancel", 1)):
    """On a queued job's progress card: cancel it before it is sent (its owner only)."""

    action, label, emoji, style = "cancel", "Cancel", "✖️", discord.ButtonStyle.danger
    hint = "take your queued render off the queue before anything is spent"

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.cancel_pressed(interaction, self.ids[0])


class RephraseButton(_StudioButton, template=_template("rephrase", 1)):
    """On a picture the image model refused: a compliant variant of its prompt, as a new version."""

    action, label, emoji = "rephrase", "Rephrase safely", "🛟"
    hint = "after the image model refused, a compliant rewrite of the prompt as a new version"

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.rephrase_pressed(interaction, self.ids[0])


# -- /history -------------------------------------------------------------------------------------


class HistorySelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]], template=r"mural:history:(?P<owner>[0-9]+)"
):
    """Re-post one of a member's sessions here; the owner's id rides in the custom id."""

    def __init__(self, owner_id: int, options: list[discord.SelectOption] | None = None) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"mural:history:{owner_id}",
                placeholder="Post one here again, with its buttons",
                options=options or [discord.SelectOption(label="-", value="0")],
            )
        )
        self.owner_id = owner_id

    @classmethod
    async def from_custom_id(
        cls, interaction: Interaction, item: discord.ui.Select[Any], match: re.Match[str], /
    ) -> HistorySelect:
        return cls(int(match["owner"]), item.options)

    async def callback(self, interaction: Interaction) -> None:
        action = actions.begin(interaction, "select", "repost")
        try:
            await studio_actions(interaction).history_picked(
                interaction, self.owner_id, int(self.item.values[0])
            )
        except Exception as error:
            await send_error(interaction, error)
        else:
            actions.succeeded(action)


# The buttons a member meets, in the order /help explains them.
VERSION_BUTTONS: tuple[type[_StudioButton], ...] = (GenerateButton, RefineButton, UndoButton, CopyButton)
PICTURE_BUTTONS: tuple[type[_StudioButton], ...] = (
    EditButton,
    RerollButton,
    CopyRenderButton,
    ThreadButton,
    CancelButton,
    RephraseButton,
)

# Every button is registered (Rephrase safely too), so each keeps working after a restart.
DYNAMIC_ITEMS = (*VERSION_BUTTONS, *PICTURE_BUTTONS, HistorySelect)


# -- modals ---------------------------------------------------------------------------------------


def _change_box(placeholder: str) -> discord.ui.TextInput[Any]:
    return discord.ui.TextInput(
        style=discord.TextStyle.paragraph,
        placeholder=placeholder,
        max_length=MAX_INSTRUCTION_CHARS,
        custom_id="instruction",
    )


class _ChangeModal(discord.ui.Modal):
    """One box, "What should change?"; what the answer does is up to the subclass."""

    # The action's name in the log.
    logged_as: ClassVar[str]

    def __init__(
        self, title: str, placeholder: str, *, session: int | None = None, render: int | None = None
    ) -> None:
        super().__init__(title=title, timeout=600)
        self.about = (session, render)  # what the action acts on, for the log
        self.change = _change_box(placeholder)
        self.add_item(discord.ui.Label(text="What should change?", component=self.change))

    async def on_submit(self, interaction: Interaction) -> None:
        session, render = self.about
        action = actions.begin(interaction, "modal", self.logged_as, session=session, render=render)
        await self.submitted(studio_actions(interaction), interaction, self.change.value)
        actions.succeeded(action)

    async def submitted(self, actions: StudioActions, interaction: Interaction, change: str) -> None:
        raise NotImplementedError

    async def on_error(self, interaction: Interaction, error: Exception) -> None:
        await send_error(interaction, error)


class RefineModal(_ChangeModal):
    logged_as = "refine"

    def __init__(self, session_id: int) -> None:
        super().__init__("Refine the prompt", "make it night, add a fox, less busy…", session=session_id)
        self.session_id = session_id

    async def submitted(self, actions: StudioActions, interaction: Interaction, change: str) -> None:
        await actions.refine_submitted(interaction, self.session_id, change)


class EditModal(_ChangeModal):
    logged_as = "edit"

    def __init__(self, render_id: int, picture: int) -> None:
        super().__init__("Edit the picture", "make the sky darker, remove the boat…", render=render_id)
        self.render_id = render_id
        self.picture = picture

    async def submitted(self, actions: StudioActions, interaction: Interaction, change: str) -> None:
        await actions.edit_submitted(interaction, self.render_id, self.picture, change)


class PictureEditModal(_ChangeModal):
    """**Edit with Mural** on any message with a picture; it is downloaded once the change is known."""

    logged_as = "edit-with-mural"

    def __init__(self, source: PictureSource) -> None:
        super().__init__("Edit with Mural", "turn it into a watercolour, add snow…")
        self.source = source

    async def submitted(self, actions: StudioActions, interaction: Interaction, change: str) -> None:
        await actions.picture_edit_submitted(interaction, self.source, change)
