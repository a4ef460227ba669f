"""What a member reads for one of the core's errors, with the Discord markup the core leaves out.

The core writes no mentions or timestamps: an error that names a member, a role or a moment carries
it as data, with a message complete without it. Here such an error becomes the sentence a member
reads in Discord (a mention, a live "in 3 hours"); every other error reads as its own message.
"""

from __future__ import annotations

from bot.core.access import MissingRole, NotTheOwner
from bot.core.budgets import BudgetExceeded
from bot.core.errors import MuralError


def member_message(error: MuralError) -> str:
    if isinstance(error, NotTheOwner):
        return (
            f"Only <@{error.owner_id}>, who started this prompt, can {error.what}. "
            "Start your own with `/prompt` or `/imagine`."
        )
    if isinstance(error, MissingRole):
        return f"This server lets members with the <@&{error.role_id}> role use Mural."
    if isinstance(error, BudgetExceeded):
        return (
            f"That would go over {error.what}: {error.used} used. It resets <t:{error.resets_at}:R>. "
            "Nothing was drawn or charged."
        )
    return error.user_message
