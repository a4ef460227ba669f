"""The studio cog: /prompt, /imagine, replies that refine, and every version and picture button.

Thin on purpose: parse options, check them through the core, then hand over to `_versions` (prompts)
or `_pictures`. The cog registers its own restart-proof buttons and reports work a stop interrupted
when it loads.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import InvalidRequest, NotAllowed
from bot.core.images import ASPECTS, capabilities_for, check_options, quality_choices, size_label
from bot.core.picture_files import check_reference_size, input_image, read_reference
from bot.core.prompt_templates import STYLES, TARGETS
from bot.core.prompt_text import MAX_IDEA_CHARS
from bot.models import Reference, Session
from bot.ui.context import place_of, place_of_message
from bot.ui.delivery import PictureSource
from bot.ui.errors import report_error
from cogs.studio import _edits, _pictures, _restart, _versions
from cogs.studio._buttons import DYNAMIC_ITEMS, STUDIO_COG

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]

TARGET_CHOICES = [app_commands.Choice(name=target.label, value=key) for key, target in TARGETS.items()]
STYLE_CHOICES = [app_commands.Choice(name=key.replace("-", " ").title(), value=key) for key in STYLES]
ASPECT_CHOICES = [app_commands.Choice(name=aspect.title(), value=aspect) for aspect in ASPECTS]
REFINABLE_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)
EDIT_MENU = "Edit with Mural"
MAX_COUNT = 4
AUTOCOMPLETE_LIMIT = 25
# The studio works wherever a member is: servers, DMs with the bot, group DMs, and as a user-installed app.
EVERY_INSTALL = app_commands.AppInstallationType(guild=True, user=True)
EVERY_CONTEXT = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)


class StudioCog(commands.Cog, name=STUDIO_COG):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot
        self.edit_menu = app_commands.ContextMenu(
            name=EDIT_MENU,
            callback=self.edit_with_mural,
            allowed_installs=EVERY_INSTALL,
            allowed_contexts=EVERY_CONTEXT,
        )

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)
        self.bot.tree.add_command(self.edit_menu)
        if self.bot.sync_only:
            return
        await self.recover_what_stops_left()
        self.bot.render_queue.keep_leases(self.recover_what_stops_left)

    async def recover_what_stops_left(self) -> None:
        """At start, what the last stop left; later, where processes share the database, what a process
        that died left (once its leases lapsed): instructions and renders cut off are reported with
        Retry, renders still queued run here in their turn."""
        cut_off = await self.bot.studio.interrupted_by_last_stop()
        if cut_off:
            log.warning("%d refinement(s) were interrupted by a stop; telling their authors", len(cut_off))
            self.bot.spawn(
                _versions.report_interrupted_refinements(self.bot, cut_off),
                name="report-interrupted-refinements",
            )
        interrupted = await self.bot.render_queue.interrupted_by_last_stop()
        if interrupted:
            log.warning("%d render(s) were interrupted by a stop; telling their owners", len(interrupted))
            self.bot.spawn(
                _restart.report_interrupted_renders(self.bot, interrupted), name="report-interrupted-renders"
            )
        waiting = await self.bot.render_queue.waiting_since_last_stop()
        if waiting:
            log.info("%d queued render(s) left by a stop run here now", len(waiting))
            self.bot.spawn(_restart.resume_waiting_renders(self.bot, waiting), name="resume-waiting-renders")

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)
        self.bot.tree.remove_command(EDIT_MENU, type=discord.AppCommandType.message)

    # -- commands -----------------------------------------------------------------------------

    @app_commands.command(
        name="prompt", description="Turn an idea into a detailed image prompt, refined in a thread"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(
        idea="What you want to see, in your own words",
        target="Where you will use the prompt (default: OpenAI images)",
        style="A style preset to steer the look",
        aspect="The shape of the pictures (default: the server's size)",
        reference="Your own picture (PNG, JPEG or WebP) that every picture of this session starts from",
    )
    @app_commands.choices(target=TARGET_CHOICES, style=STYLE_CHOICES, aspect=ASPECT_CHOICES)
    async def prompt(
        self,
        interaction: Interaction,
        idea: app_commands.Range[str, 1, MAX_IDEA_CHARS],
        target: str | None = None,
        style: str | None = None,
        aspect: str | None = None,
        reference: discord.Attachment | None = None,
    ) -> None:
        # Checked before anything is posted or spent: a refusal stays private.
        request = self.bot.studio.new_session_request(
            idea=idea,
            owner_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id or 0,
            target=target,
            style=style,
            aspect=aspect,
            reference=await _reference(reference),
        )
        await _pictures.check_budget(self.bot, interaction)
        await _versions.start_prompt(self.bot, interaction, request)

    @app_commands.command(
        name="imagine", description="Turn an idea into a picture: I write the prompt, then draw it"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(
        idea="What you want to see, in your own words",
        size="Picture size (default: the server's)",
        quality="Higher quality takes longer and costs more (default: the server's)",
        count="How many pictures to draw at once (1–4)",
        review="Show me the prompt first; draw only when I press Generate",
        raw="Draw my words exactly as written, without writing a prompt from them",
        reference="Your own picture (PNG, JPEG or WebP) to start from",
    )
    async def imagine(
        self,
        interaction: Interaction,
        idea: app_commands.Range[str, 1, MAX_IDEA_CHARS],
        size: str | None = None,
        quality: str | None = None,
        count: app_commands.Range[int, 1, MAX_COUNT] = 1,
        review: bool = False,
        raw: bool = False,
        reference: discord.Attachment | None = None,
    ) -> None:
        # Checked before anything is posted or spent: a refusal stays private.
        options = await self.bot.render_options.choose(
            interaction.guild_id, size=size, quality=quality, count=count
        )
        request = self.bot.studio.new_session_request(
            idea=idea,
            owner_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id or 0,
            origin="imagine",
            raw=raw,
            reference=await _reference(reference),
        )
        if request.reference is not None:
            check_options(options, editing=True)
        await _pictures.start_imagine(self.bot, interaction, request, options, review=review)

    @imagine.autocomplete("size")
    async def size_choices(self, interaction: Interaction, typed: str) -> list[app_commands.Choice[str]]:
        """The sizes of the model this render will use, so a server's own model can drop in."""
        defaults = self.bot.render_options.defaults_for(
            await self.bot.server_rules.settings(interaction.guild_id)
        )
        sizes = capabilities_for(defaults.model).sizes
        return _matching([(size_label(size), size) for size in sizes], typed, default=defaults.size)

    @imagine.autocomplete("quality")
    async def quality_choices(self, interaction: Interaction, typed: str) -> list[app_commands.Choice[str]]:
        defaults = self.bot.render_options.defaults_for(
            await self.bot.server_rules.settings(interaction.guild_id)
        )
        qualities = quality_choices(capabilities_for(defaults.model))
        return _matching(
            [(quality.title(), quality) for quality in qualities], typed, default=defaults.quality
        )

    @app_commands.command(name="describe", description="Turn a picture into the prompt that would make it")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(image="The picture to describe (PNG, JPEG or WebP)")
    async def describe(self, interaction: Interaction, image: discord.Attachment) -> None:
        reference = await _reference(image)
        assert reference is not None
        await _pictures.check_budget(self.bot, interaction)
        await _versions.start_describe(self.bot, interaction, input_image(reference))

    @app_commands.command(
        name="history", description="Your latest sessions, to jump back in or post one here again"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def history(self, interaction: Interaction) -> None:
        await _versions.history(self.bot, interaction)

    async def edit_with_mural(self, interaction: Interaction, message: discord.Message) -> None:
        """The message menu **Edit with Mural**: change the picture on any message."""
        await _edits.open_picture_edit(interaction, message)

    # -- replies --------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """The owner's words in a session: a reply to a picture edits it; anything else refines the prompt.

        In a server without the Message Content intent, only replies to the bot and messages that
        mention it arrive with their text; the others arrive empty and are passed over.
        """
        if message.author.bot or message.type not in REFINABLE_MESSAGE_TYPES:
            return
        instruction = self._instruction(message)
        if not instruction:
            return
        replied_to = message.reference.message_id if message.reference else None
        studio = self.bot.studio
        if replied_to is not None:
            picture = await self.bot.render_queue.render_for_message(replied_to)
            if picture is not None:
                session = await studio.session(picture.session_id)
                if await self._may_act(message, session, replied=True):
                    await _edits.edit_from_reply(self.bot, message, picture, instruction)
                return
            # A reply to a version refines its session wherever it is written; with a thread, the new
            # version goes there and the member is pointed to it.
            session = await studio.session_for_message(replied_to)
            if session is not None:
                if await self._may_act(message, session, replied=True):
                    await _versions.refine_from_message(self.bot, message, session, instruction)
                return
        if not isinstance(message.channel, discord.Thread):
            return
        session = await studio.session_for_thread(message.channel.id)
        if session is None or not await self._may_act(message, session):
            return
        await _versions.refine_from_message(self.bot, message, session, instruction)

    def _instruction(self, message: discord.Message) -> str:
        """The message's words without the bot's mention (how members reach it without the intent)."""
        text = message.content
        if self.bot.user is not None:
            text = re.sub(rf"<@!?{self.bot.user.id}>", " ", text)
        return text.strip()

    async def _may_act(self, message: discord.Message, session: Session, *, replied: bool = False) -> bool:
        """Whether a message in a session is an instruction (others' messages are just conversation).

        A reply to one of Mural's own messages is addressed to it, so a refusal is said, not kept silent.
        """
        place = place_of_message(message)
        try:
            await self.bot.access.check_may_use(place)
            await self.bot.access.check_may_act(session, message.author.id, place, "refine it")
        except NotAllowed as refusal:
            if replied:
                await report_error(
                    self.bot,
                    message.channel,
                    refusal,
                    where=f"Reply in session {session.id}",
                    reply_to=message,
                )
            return False
        return True

    async def check_access(self, interaction: Interaction) -> None:
        """A server may require a role to use Mural; buttons check it like commands do."""
        await self.bot.access.check_may_use(place_of(interaction))

    # -- buttons, selects and modals (StudioActions) --------------------------------------------

    async def generate_pressed(self, interaction: Interaction, session_id: int, version: int) -> None:
        await _pictures.generate(self.bot, interaction, session_id, version)

    async def refine_pressed(self, interaction: Interaction, session_id: int) -> None:
        await _versions.open_refine_modal(self.bot, interaction, session_id)

    async def undo_pressed(self, interaction: Interaction, session_id: int, version: int) -> None:
        await _versions.undo(self.bot, interaction, session_id, version)

    async def copy_pressed(self, interaction: Interaction, session_id: int, version: int) -> None:
        await _versions.copy_version(self.bot, interaction, session_id, version)

    async def refine_submitted(self, interaction: Interaction, session_id: int, instruction: str) -> None:
        await _versions.refine_from_modal(self.bot, interaction, session_id, instruction)

    async def edit_pressed(self, interaction: Interaction, render_id: int, picture: int) -> None:
        await _edits.open_edit_modal(self.bot, interaction, render_id, picture)

    async def edit_submitted(
        self, interaction: Interaction, render_id: int, picture: int, change: str
    ) -> None:
        await _edits.edit_submitted(self.bot, interaction, render_id, picture, change)

    async def reroll_pressed(self, interaction: Interaction, render_id: int) -> None:
        await _pictures.reroll(self.bot, interaction, render_id)

    async def copy_render_pressed(self, interaction: Interaction, render_id: int) -> None:
        await _pictures.copy_render(self.bot, interaction, render_id)

    async def thread_pressed(self, interaction: Interaction, render_id: int) -> None:
        await _pictures.open_session_thread(self.bot, interaction, render_id)

    async def cancel_pressed(self, interaction: Interaction, render_id: int) -> None:
        await _pictures.cancel_render(self.bot, interaction, render_id)

    async def rephrase_pressed(self, interaction: Interaction, render_id: int) -> None:
        await _pictures.rephrase(self.bot, interaction, render_id)

    async def history_picked(self, interaction: Interaction, owner_id: int, session_id: int) -> None:
        await _versions.repost(self.bot, interaction, owner_id, session_id)

    async def picture_edit_submitted(
        self, interaction: Interaction, source: PictureSource, change: str
    ) -> None:
        await _edits.picture_edit_submitted(self.bot, interaction, source, change)


async def _reference(attachment: discord.Attachment | None) -> Reference | None:
    """A member's attached picture, checked before anything is posted or spent."""
    if attachment is None:
        return None
    check_reference_size(attachment.filename, attachment.size)
    if attachment.content_type and not attachment.content_type.startswith("image/"):
        raise InvalidRequest(f"{attachment.filename} is not a picture. Attach a PNG, JPEG or WebP image.")
    try:
        data = await attachment.read()
    except discord.HTTPException as error:
        raise InvalidRequest(
            f"I couldn't download {attachment.filename} from Discord; please attach it again."
        ) from error
    return read_reference(attachment.filename, data)


def _matching(choices: list[tuple[str, str]], typed: str, *, default: str) -> list[app_commands.Choice[str]]:
    """Choices whose label or value contains what was typed; the default first."""
    typed = typed.strip().lower()
    ordered = sorted(choices, key=lambda choice: choice[1] != default)
    return [
        app_commands.Choice(name=label, value=value)
        for label, value in ordered
        if typed in label.lower() or typed in value.lower()
    ][:AUTOCOMPLETE_LIMIT]
