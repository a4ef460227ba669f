"""Who may use Mural on a server, and who may act on a session.

A server may require a role to use Mural at all. A session is its owner's; a server may let anyone
in the session's thread refine it and render its versions too.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.errors import NotAllowed
from bot.core.server_rules import ServerRules
from bot.models import ServerSettings, Session

SESSION_ACCESS = {"owner": "the session's owner", "thread": "anyone in the thread"}
DEFAULT_ACCESS = "owner"


@dataclass(frozen=True)
class Place:
    """Where a member acts: the server (None in a DM), the channel, and their role ids there."""

    guild_id: int | None
    channel_id: int | None
    role_ids: frozenset[int] = frozenset()


# The two refusals carry whom they name as data: the member reads a mention (bot/ui/error_wording.py),
# since the core writes no Discord markup; their own messages are complete without it.


class MissingRole(NotAllowed):
    code = "E-ROLE"

    def __init__(self, role_id: int) -> None:
        super().__init__("This server lets only members with a certain role use Mural.")
        self.role_id = role_id


class NotTheOwner(NotAllowed):
    def __init__(self, owner_id: int, what: str) -> None:
        super().__init__(
            f"Only the member who started this prompt can {what}. Start your own with `/prompt` or `/imagine`."
        )
        self.owner_id = owner_id
        self.what = what


def check_owner(session: Session, user_id: int, what: str) -> None:
    """Only the member who started a session may act on it."""
    if user_id != session.owner_id:
        raise NotTheOwner(session.owner_id, what)


class Access:
    """Checks, before anything runs, that a member may do what they ask where they ask it."""

    def __init__(self, rules: ServerRules) -> None:
        self._rules = rules

    async def check_may_use(self, place: Place) -> ServerSettings:
        """Refuse a member without the role a server requires for Mural."""
        settings = await self._rules.settings(place.guild_id)
        if settings.required_role_id is not None and settings.required_role_id not in place.role_ids:
            raise MissingRole(settings.required_role_id)
        return settings

    async def check_may_act(self, session: Session, user_id: int, place: Place, what: str) -> None:
        """The owner always; anyone in the session's thread when the server says so."""
        if user_id == session.owner_id:
            return
        settings = await self._rules.settings(session.guild_id)
        shared = (settings.session_access or DEFAULT_ACCESS) == "thread"
        if shared and session.thread_id is not None and place.channel_id == session.thread_id:
            return
        check_owner(session, user_id, what)
