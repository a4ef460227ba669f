"""What members do, one line each: the one place where an action's outcome is recorded.

An action is one thing a member does: a slash command, the Edit with Mural menu, a button, a select,
a modal, or a message in a session (a refinement, or a reply that edits a picture). It records who
(the user id), what (the command, button or modal), where (the guild id and the kind of channel), on
which session, version, picture and job, and how it ended: `ok`, `cancelled`, or the code the member
was shown, also when that came after the acknowledgement (a render that failed). Never the member's
words: no idea, prompt or instruction passes through here.

An action begins where its interaction or message is first handled (`MuralTree.interaction_check`
for commands and menus, the studio's components and modals, the thread-message paths) and is the
current action of that task, so code further down says what it acts on (`note`) without passing it
along. It ends in `finish`, once: its log line, and its watcher told (metrics), when the bot has one
(`watch_actions`).
"""

from __future__ import annotations

import contextvars
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import discord

log = logging.getLogger(__name__)

Kind = Literal["command", "menu", "button", "select", "modal", "message"]

# Where an interaction keeps its action (`Interaction.extras`), for handlers that run in another task.
EXTRAS_KEY = "mural.action"

_VERBS: dict[str, str] = {
    "command": "ran /{}",
    "menu": "used the {} menu",
    "button": "pressed {}",
    "select": "picked {}",
    "modal": "submitted {}",
    "message": "sent a {}",
}

_THREADS = (
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
)


@dataclass
class Action:
    kind: Kind
    name: str
    user_id: int
    guild_id: int | None
    channel: str
    session_id: int | None = None
    version: int | None = None
    render_id: int | None = None  # the picture it acts on
    job_id: int | None = None  # the render job it queued
    # What the member was finally shown when that was no success, though nothing was raised: the code of
    # a render that failed after the answer, or "cancelled".
    shown: str | None = None
    outcome: str | None = None
    seconds: float | None = None
    # The gateway connection it came through: (guild id >> 22) % shard count; 0 outside servers.
    shard: int | None = None
    started: float = field(default_factory=time.monotonic, repr=False)
    watcher: ActionWatcher | None = field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def story(self) -> str:
        """Who did what, where and on what: "User 42 pressed generate (guild 7, thread) on session 3 v1, job 9"."""
        where = f"guild {self.guild_id}, {self.channel}" if self.guild_id else self.channel
        line = f"User {self.user_id} {_VERBS[self.kind].format(self.name)} ({where})"
        subject = []
        if self.session_id is not None:
            subject.append(f"session {self.session_id}" + (f" v{self.version}" if self.version else ""))
        if self.render_id is not None:
            subject.append(f"render {self.render_id}")
        if self.job_id is not None:
            subject.append(f"job {self.job_id}")
        return f"{line} on {', '.join(subject)}" if subject else line


class ActionWatcher(Protocol):
    def action_finished(self, action: Action) -> None:
        """An action ended (`outcome` and `seconds` set); quick, and never raising."""
        ...


_current: contextvars.ContextVar[Action | None] = contextvars.ContextVar("mural_action", default=None)
_watcher: contextvars.ContextVar[ActionWatcher | None] = contextvars.ContextVar("mural_watcher", default=None)


def watch_actions(watcher: ActionWatcher | None) -> None:
    """Report every action begun from now on in this task, and in every task it starts, to `watcher`.

    The bot calls it as it logs in, so all its work (the gateway's tasks, and the handlers they start)
    inherits it, while another bot in the same process (tests, benchmarks) keeps its own."""
    _watcher.set(watcher)


def shard_of(guild_id: int | None, shard_count: int | None) -> int:
    """The shard Discord delivers a server's events on; DMs and user installs come to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % (shard_count or 1)


def channel_kind(channel: Any) -> str:
    """`text`, `thread`, `dm`, `group-dm`, `voice`, `forum`…: the kind of place, never its name."""
    kind = getattr(channel, "type", None)
    if not isinstance(kind, discord.ChannelType):
        return "unknown channel"
    if kind in _THREADS:
        return "thread"
    if kind is discord.ChannelType.private:
        return "dm"
    if kind is discord.ChannelType.group:
        return "group-dm"
    return kind.name


def begin(
    interaction: discord.Interaction[Any],
    kind: Kind | None = None,
    name: str | None = None,
    *,
    session: int | None = None,
    version: int | None = None,
    render: int | None = None,
) -> Action:
    """The action an interaction starts (its kind and name read off the interaction unless given);
    it becomes the current action of this task. Begun once: a second call returns the first."""
    action = interaction.extras.get(EXTRAS_KEY)
    if not isinstance(action, Action):
        derived_kind, derived_name = _what(interaction)
        action = Action(
            kind=kind or derived_kind,
            name=name or derived_name,
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel=channel_kind(interaction.channel),
            shard=shard_of(interaction.guild_id, interaction.client.shard_count),
            watcher=_watcher.get(),
        )
        interaction.extras[EXTRAS_KEY] = action
    _current.set(action)
    note(session=session, version=version, render=render)
    return action


def begin_message(
    message: discord.Message,
    name: str,
    *,
    session: int | None = None,
    version: int | None = None,
    render: int | None = None,
) -> Action:
    """The action a member's message in a session starts (`reply`: a refinement, `reply-edit`: a
    change to a picture); it becomes the current action of this task."""
    action = Action(
        kind="message",
        name=name,
        user_id=message.author.id,
        guild_id=message.guild.id if message.guild else None,
        channel=channel_kind(message.channel),
        shard=message.guild.shard_id if message.guild else 0,
        watcher=_watcher.get(),
    )
    _current.set(action)
    note(session=session, version=version, render=render)
    return action


def of(interaction: discord.Interaction[Any]) -> Action:
    """The interaction's action, begun now if nothing began it (an error before any handler ran)."""
    action = interaction.extras.get(EXTRAS_KEY)
    return action if isinstance(action, Action) else begin(interaction)


def current() -> Action | None:
    """The action this task is handling, if it still runs."""
    action = _current.get()
    return action if action is not None and not action.finished else None


def note(
    *,
    session: int | None = None,
    version: int | None = None,
    render: int | None = None,
    job: int | None = None,
    name: str | None = None,
    shown: str | None = None,
) -> None:
    """Say what the current action acts on, or what its member was shown; nothing when there is none
    (a render resumed after a restart)."""
    action = current()
    if action is None:
        return
    if session is not None:
        action.session_id = session
    if version is not None:
        action.version = version
    if render is not None:
        action.render_id = render
    if job is not None:
        action.job_id = job
    if name is not None:
        action.name = name
    if shown is not None:
        action.shown = shown


def succeeded(action: Action) -> None:
    """The action's handler returned: `ok`, unless the member was shown a failure or a cancellation."""
    finish(action, action.shown or "ok")


def finish(
    action: Action,
    outcome: str,
    *,
    level: int = logging.INFO,
    reason: str | None = None,
    error: BaseException | None = None,
) -> None:
    """Record how an action ended, once: the one place, for the log and for its watcher (metrics).

    `reason` is a refusal's explanation (written for the member, never their words); `error` an
    unexpected failure, whose traceback goes with the line.
    """
    if action.finished:
        return
    action.outcome = outcome
    action.seconds = time.monotonic() - action.started
    because = f" ({reason})" if reason else ""
    log.log(
        level,
        "%s: %s in %.2fs%s",
        action.story(),
        outcome,
        action.seconds,
        because,
        exc_info=error,
        extra={"mural_action": action, "shard": action.shard},
    )
    if action.watcher is not None:
        action.watcher.action_finished(action)


def _what(interaction: discord.Interaction[Any]) -> tuple[Kind, str]:
    """An interaction's kind and name when its handler did not say: the command's name, or the action
    in a `mural:<action>:…` custom id."""
    data: Any = interaction.data or {}
    if interaction.type is discord.InteractionType.application_command:
        command = interaction.command
        name = command.name if command is not None else str(data.get("name", "unknown"))
        kind: Kind = "command" if data.get("type", 1) == 1 else "menu"
        return kind, name.lower().replace(" ", "-")
    custom_id = str(data.get("custom_id", ""))
    parts = custom_id.split(":")
    name = parts[1] if len(parts) > 1 and parts[0] == "mural" else "unknown"
    if interaction.type is discord.InteractionType.modal_submit:
        return "modal", name
    return ("select" if data.get("component_type") == discord.ComponentType.select.value else "button"), name
