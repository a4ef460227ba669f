"""The studio: writing, refining and rendering prompts (`/prompt`, `/imagine`, replies, buttons).

`_cog.py` is the thin cog, `_versions.py` and `_pictures.py` what each action does, `_buttons.py` the restart-proof
components.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.studio._cog import StudioCog

if TYPE_CHECKING:
    from bot.app import MuralBot


async def setup(bot: MuralBot) -> None:
    await bot.add_cog(StudioCog(bot))
