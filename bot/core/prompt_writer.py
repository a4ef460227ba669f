"""The chat model writing prompts for the studio, with what comes before and after each call.

Before: the call waits for the acknowledgements still owed (`AcknowledgementsFirst`), what a member
asks for is screened by moderation, and a used-up budget refuses it. After: what the call cost is
recorded, and the answer is read into a bare prompt.
"""

from __future__ import annotations

from bot.core.access import Place
from bot.core.ai import ChatAnswer, InputImage, OpenAIService
from bot.core.budget_checks import Budgets
from bot.core.moderation import Moderator
from bot.core.pacing import AcknowledgementsFirst
from bot.core.pricing import DEFAULT_PRICES, PriceTable
from bot.core.prompt_templates import DESCRIBE_RULES
from bot.core.prompt_text import parse_prompt
from bot.core.watching import NOBODY, Watcher
from bot.store import Store


class PromptWriter:
    def __init__(
        self,
        store: Store,
        ai: OpenAIService,
        *,
        ahead: AcknowledgementsFirst | None = None,
        prices: PriceTable = DEFAULT_PRICES,
        moderator: Moderator | None = None,
        budgets: Budgets | None = None,
        watcher: Watcher = NOBODY,
    ) -> None:
        self._store = store
        self._ai = ai
        self._prices = prices
        self._watcher = watcher  # hears what each call cost
        # Screens what members ask for, and refuses what is over budget, before anything is spent;
        # None in narrow tests.
        self._moderator = moderator
        self._budgets = budgets
        # Model calls wait for the acknowledgements still owed (see AcknowledgementsFirst).
        self._ahead = ahead

    async def screen(
        self,
        guild_id: int | None,
        user_id: int,
        channel_id: int | None,
        texts: list[str],
        image: InputImage | None = None,
    ) -> None:
        """Moderation's verdict on what a member asks for (Flagged when it stops it)."""
        if self._moderator is not None:
            await self._my_turn()  # a moderation call is work like any other: acknowledgements go first
            await self._moderator.screen(
                guild_id, user_id=user_id, channel_id=channel_id, texts=texts, image=image
            )

    async def write(
        self,
        messages: list[dict[str, str]],
        *,
        purpose: str,
        user_id: int,
        guild_id: int | None,
        session_id: int | None,
    ) -> tuple[str, int]:
        """Ask the chat model for a prompt and record what the call cost: the prompt and its usage row."""
        await self._my_turn()
        if self._budgets is not None:
            # Chat costs little and its cost is known only afterwards: refused once a budget is used up.
            await self._budgets.check(Place(guild_id, None), user_id)
        answer = await self._ai.chat(messages, user_hash=self._ai.user_hash(user_id))
        usage_id = await self._record_usage(
            answer, purpose=purpose, user_id=user_id, guild_id=guild_id, session_id=session_id
        )
        return parse_prompt(answer.text), usage_id

    async def describe(self, image: InputImage, *, user_id: int, guild_id: int | None) -> tuple[str, int]:
        """A vision model writes the prompt that would reproduce a picture: the prompt and its usage row."""
        await self._my_turn()
        answer = await self._ai.describe_image(DESCRIBE_RULES, image, user_hash=self._ai.user_hash(user_id))
        usage_id = await self._record_usage(answer, purpose="describe", user_id=user_id, guild_id=guild_id)
        return parse_prompt(answer.text), usage_id

    async def _my_turn(self) -> None:
        if self._ahead is not None:
            await self._ahead.turn()

    async def _record_usage(
        self,
        answer: ChatAnswer,
        *,
        purpose: str,
        user_id: int,
        guild_id: int | None,
        session_id: int | None = None,
    ) -> int:
        cost = self._prices.chat_cost(
            answer.model, input_tokens=answer.input_tokens, output_tokens=answer.output_tokens
        )
        usage_id = await self._store.record_chat_usage(
            session_id=session_id,
            guild_id=guild_id,
            user_id=user_id,
            purpose=purpose,
            model=answer.model,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            estimated=answer.estimated,
            cost_usd=cost,
        )
        if cost:
            self._watcher.spent("chat", cost)
        return usage_id
