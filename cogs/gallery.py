"""/gallery, and keeping the gallery in step with Discord: pictures kept as they are posted, forgotten as
their messages, threads or channels are deleted. The decisions are in `bot.core.gallery_service`; this
reads Discord: where a picture was posted, and which channels and threads a member may view.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.gallery_service import PostedPictures
from bot.core.images import Picture
from bot.models import Render
from bot.ui import gallery_texts, layouts

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]


class Gallery(commands.Cog):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="gallery", description="A private link to the pictures you may see, on a web page"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def gallery(self, interaction: Interaction) -> None:
        gallery = self.bot.gallery
        guild_id = interaction.guild_id
        guild = self.bot.get_guild(guild_id) if guild_id is not None else None
        refusal = (
            gallery_texts.NOT_SET_UP
            if not gallery.enabled
            else gallery_texts.NO_SERVER_HERE
            if guild_id is not None and guild is None
            else gallery_texts.SERVER_OFF
            if guild_id is not None and not await gallery.server_on(guild_id)
            else None
        )
        if refusal is not None:
            await interaction.response.send_message(
                refusal, ephemeral=True, allowed_mentions=layouts.NO_PINGS
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        member = interaction.user
        if guild is None or not isinstance(member, discord.Member):
            link = await gallery.link(user_id=member.id, guild_id=None, channel_ids=())
        else:
            link = await gallery.link(
                user_id=member.id, guild_id=guild.id, channel_ids=await self.viewable(guild, member)
            )
        await interaction.followup.send(
            gallery_texts.link_text(link, server=guild is not None),
            ephemeral=True,
            allowed_mentions=layouts.NO_PINGS,
        )

    async def viewable(self, guild: discord.Guild, member: discord.Member) -> set[int]:
        """The channels `member` may view now, and the private threads with kept pictures they are in (or may
        manage). Public threads need no listing: whoever views a channel views its public threads."""
        channels = {
            channel.id
            for channel in guild.channels
            if not isinstance(channel, discord.CategoryChannel)
            and channel.permissions_for(member).view_channel
        }
        for thread_id, parent_id in await self.bot.gallery.private_threads(guild.id):
            if parent_id in channels and await self.in_private_thread(guild, member, thread_id, parent_id):
                channels.add(thread_id)
        return channels

    async def in_private_thread(
        self, guild: discord.Guild, member: discord.Member, thread_id: int, parent_id: int
    ) -> bool:
        """Whether `member` sees a private thread: they manage its channel's threads, or were added to it."""
        parent = guild.get_channel(parent_id)
        if parent is not None and parent.permissions_for(member).manage_threads:
            return True
        try:
            thread = guild.get_thread(thread_id) or await guild.fetch_channel(thread_id)
            if not isinstance(thread, discord.Thread):
                return False
            await thread.fetch_member(member.id)
        except discord.NotFound:
            return False
        except discord.HTTPException as error:
            log.info(
                "Could not tell whether %d is in thread %d (HTTP %s)", member.id, thread_id, error.status
            )
            return False
        return True

    # -- gone when removed ------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self.bot.gallery.forget([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self.bot.gallery.forget(payload.message_ids)

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        await self.bot.gallery.forget_channel(payload.thread_id)

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        await self.bot.gallery.forget_channel(channel.id)


def keep_posted(
    bot: MuralBot, message: discord.Message, record: Render, pictures: tuple[Picture, ...], prompt: str
) -> None:
    """Keep a finished render's pictures, as posted in `message`, for the gallery (in the background: the
    WebP copies take a moment), where a gallery can show them."""
    if not bot.gallery.enabled or message.flags.ephemeral:
        return  # an ephemeral answer is its member's alone: never on a page
    bot.spawn(_keep(bot, message, record, pictures, prompt), name=f"gallery-keep-{record.id}")


async def _keep(
    bot: MuralBot, message: discord.Message, record: Render, pictures: tuple[Picture, ...], prompt: str
) -> None:
    guild_id = record.guild_id or (message.guild.id if message.guild else None)
    guild = bot.get_guild(guild_id) if guild_id is not None else None
    in_server = await posted_in_server(bot, guild_id, guild)
    if in_server is None or not await bot.gallery.keeps(guild_id, in_server=in_server):
        return
    thread = await _thread_of(bot, message) if in_server else None
    kept = await bot.gallery.keep(
        PostedPictures(
            render_id=record.id,
            pictures=tuple(picture.data for picture in pictures),
            guild_id=guild_id,
            in_server=in_server,
            channel_id=message.channel.id,
            parent_id=thread.parent_id if thread else None,
            private_thread=thread is not None and thread.type is discord.ChannelType.private_thread,
            message_id=message.id,
            owner_id=record.requester_id,
            owner_name=await _display_name(bot, guild, message, record.requester_id),
            prompt=prompt,
            model=record.model,
            size=record.size,
        )
    )
    log.debug("Kept %d picture(s) of render %d for the gallery", len(kept), record.id)


async def posted_in_server(bot: MuralBot, guild_id: int | None, guild: discord.Guild | None) -> bool | None:
    """Whether a picture was posted in a server Mural is in (its gallery may show it); False for a DM, a group
    DM or a user install in a server without Mural; None when this process cannot tell: a server of another
    process's shards (a job finished here for it) whose gallery is off, which keeps nothing either way."""
    if guild_id is None:
        return False
    if guild is not None or await bot.gallery.server_on(guild_id):
        return True  # its gallery can only have been turned on where Mural is installed (/settings)
    shards = bot.shard_ids
    if shards is None or (guild_id >> 22) % (bot.shard_count or 1) in shards:
        return False  # this process would know the server if Mural were in it: a user install
    return None


async def _thread_of(bot: MuralBot, message: discord.Message) -> discord.Thread | None:
    """The thread a picture was posted in, read from Discord when this process does not have it cached."""
    channel = bot.get_channel(message.channel.id) or message.channel
    if isinstance(channel, discord.PartialMessageable) and channel.guild_id is not None:
        with contextlib.suppress(discord.HTTPException):
            channel = await bot.fetch_channel(message.channel.id)
    return channel if isinstance(channel, discord.Thread) else None


async def _display_name(
    bot: MuralBot, guild: discord.Guild | None, message: discord.Message, user_id: int
) -> str:
    """How the gallery names a picture's owner: their name on the server, else their Discord name."""
    if guild is not None:
        member = guild.get_member(user_id)
        if member is None:
            with contextlib.suppress(discord.HTTPException):
                member = await guild.fetch_member(user_id)
        if member is not None:
            return member.display_name
    metadata = message.interaction_metadata
    if metadata is not None and metadata.user.id == user_id:
        return metadata.user.display_name
    user = bot.get_user(user_id)
    if user is None:
        with contextlib.suppress(discord.HTTPException):
            user = await bot.fetch_user(user_id)
    return user.display_name if user is not None else "a member"


async def setup(bot: MuralBot) -> None:
    await bot.add_cog(Gallery(bot))
