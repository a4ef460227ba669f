"""Text at the prompt writer's edges: a member's idea or instruction checked before it is used, and the
chat model's answer read into a bare prompt.
"""

from __future__ import annotations

import re
import unicodedata

from bot.core.errors import BadAnswer, ChatRefused, InvalidRequest

MAX_IDEA_CHARS = 1_000
MAX_INSTRUCTION_CHARS = 1_000
# Longer than any image model takes (GPT Image: 32,000): a runaway answer, refused rather than stored,
# because every later refinement would send it again.
MAX_PROMPT_CHARS = 32_000

_FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_LABEL = re.compile(
    r"^\s*(?:\*\*|__)?\s*(?:image\s+)?prompt\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*", re.IGNORECASE
)
_REFUSAL = re.compile(r"^(i'?m sorry|i am sorry|sorry,|i can(?:'|no)t|i am unable|i'm unable|i won'?t)", re.I)
_QUOTES = ('"', "“", "”", "'")


def parse_prompt(answer: str) -> str:
    """The bare prompt from a chat answer, without fences, labels or wrapping quotes."""
    text = answer.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    text = _LABEL.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    if not text:
        raise BadAnswer("chat: the model answered with an empty prompt")
    if _REFUSAL.match(text) and len(text) < 400:
        raise ChatRefused("chat: the model declined in words")
    if len(text) > MAX_PROMPT_CHARS:
        raise BadAnswer(f"chat: a prompt of {len(text):,} characters, longer than any image model takes")
    return text


def clean_user_text(text: str, *, limit: int, what: str) -> str:
    """Trimmed text from a member, refused with a clear message when empty or too long."""
    text = text.strip()
    if not any(ch.isprintable() and not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text):
        raise InvalidRequest(f"The {what} is empty. Describe what you want to see.")
    if len(text) > limit:
        raise InvalidRequest(f"The {what} is {len(text):,} characters; keep it under {limit:,}.")
    return text
