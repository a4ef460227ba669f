"""The studio's buttons and modal: restart-proof components that hand every press to the studio cog.

Each button is a `DynamicItem` whose `custom_id` carries the session and version
(`mural:<action>:<session>:<version>`); a press reloads the rest from SQLite through the cog, which
checks who pressed. Failures go to the one error owner, so no press is left unanswered.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Protocol, cast

import discord
from discord.ext import commands

from bot.core.studio import MAX_INSTRUCTION_CHARS
from bot.ui.errors import send_error

STUDIO_COG = "Studio"

Interaction = discord.Interaction[Any]


class StudioActions(Protocol):
    """What a press asks of the studio cog; the cog implements it."""

    async def generate_pressed(self, interaction: Interaction, session_id: int, version: int) -> None: ...

    async def refine_pressed(self, interaction: Interaction, session_id: int) -> None: ...

    async def copy_pressed(self, interaction: Interaction, session_id: int, version: int) -> None: ...

    async def refine_submitted(self, interaction: Interaction, session_id: int, instruction: str) -> None: ...


def studio_actions(interaction: Interaction) -> StudioActions:
    actions = cast(commands.Bot, interaction.client).get_cog(STUDIO_COG)
    if actions is None:
        raise RuntimeError("the studio extension is not loaded")
    return cast(StudioActions, actions)


# The shared base is never registered, so its template matches nothing.
class _VersionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """What the version buttons share: the custom_id format, parsing it back, and error handling."""

    action: ClassVar[str]
    label: ClassVar[str]
    emoji: ClassVar[str]
    style: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary

    def __init__(self, session_id: int, version: int, *, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or self.label,
                emoji=self.emoji,
                style=self.style,
                custom_id=f"mural:{self.action}:{session_id}:{version}",
            )
        )
        self.session_id = session_id
        self.version = version

    @classmethod
    async def from_custom_id(
        cls, interaction: Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> _VersionButton:
        return cls(int(match["session"]), int(match["version"]))

    async def callback(self, interaction: Interaction) -> None:
        try:
            await self.press(studio_actions(interaction), interaction)
        except Exception as error:
            await send_error(interaction, error)

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        raise NotImplementedError


def _template(action: str) -> str:
    return rf"mural:{action}:(?P<session>[0-9]+):(?P<version>[0-9]+)"


class GenerateButton(_VersionButton, template=_template("gen")):
    action, label, emoji, style = "gen", "Generate", "🎨", discord.ButtonStyle.primary

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.generate_pressed(interaction, self.session_id, self.version)


class RefineButton(_VersionButton, template=_template("refine")):
    action, label, emoji = "refine", "Refine", "✏️"

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.refine_pressed(interaction, self.session_id)


class CopyButton(_VersionButton, template=_template("copy")):
    action, label, emoji = "copy", "Copy", "📋"

    async def press(self, actions: StudioActions, interaction: Interaction) -> None:
        await actions.copy_pressed(interaction, self.session_id, self.version)


DYNAMIC_ITEMS = (GenerateButton, RefineButton, CopyButton)


def version_view(session_id: int, version: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(GenerateButton(session_id, version))
    view.add_item(RefineButton(session_id, version))
    view.add_item(CopyButton(session_id, version))
    return view


def result_view(
    session_id: int, version: int, *, generate: str | None = "Reroll", copy: bool = True
) -> discord.ui.View | None:
    """Buttons under a picture or a failed render: render again (labelled `generate`) and Copy."""
    view = discord.ui.View(timeout=None)
    if generate is not None:
        view.add_item(GenerateButton(session_id, version, label=generate))
    if copy:
        view.add_item(CopyButton(session_id, version))
    return view if view.children else None


class RefineModal(discord.ui.Modal):
    def __init__(self, session_id: int) -> None:
        super().__init__(title="Refine the prompt", timeout=600)
        self.session_id = session_id
        self.instruction: discord.ui.TextInput[RefineModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            placeholder="make it night, add a fox, less busy…",
            max_length=MAX_INSTRUCTION_CHARS,
            custom_id="instruction",
        )
        self.add_item(discord.ui.Label(text="What should change?", component=self.instruction))

    async def on_submit(self, interaction: Interaction) -> None:
        await studio_actions(interaction).refine_submitted(
            interaction, self.session_id, self.instruction.value
        )

    async def on_error(self, interaction: Interaction, error: Exception) -> None:
        await send_error(interaction, error)
