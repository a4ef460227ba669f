"""What OpenAI charges, in one editable table (US dollars).

Chat models and GPT Image 2.x models bill tokens; the legacy DALL-E models, still served by some
OpenAI-compatible servers, bill a flat price per picture. Update this file when the price list
changes. A model missing here is still used; its calls are recorded with their tokens and no cost.
"""

from __future__ import annotations

from dataclasses import dataclass

PER_MILLION = 1_000_000


@dataclass(frozen=True)
class TokenPrices:
    text_input: float
    image_input: float
    image_output: float


GPT_IMAGE_TOKEN_PRICES = TokenPrices(text_input=5.00, image_input=8.00, image_output=30.00)

# Exact model ids first; any other `gpt-image-*` id falls back to GPT_IMAGE_TOKEN_PRICES.
TOKEN_PRICES: dict[str, TokenPrices] = {
    "gpt-image-2": GPT_IMAGE_TOKEN_PRICES,
    "gpt-image-2.5-flare": GPT_IMAGE_TOKEN_PRICES,
    "gpt-image-2.5-sunburst": GPT_IMAGE_TOKEN_PRICES,
    "gpt-image-2.6-flare": GPT_IMAGE_TOKEN_PRICES,
    "gpt-image-2.6-sunburst": GPT_IMAGE_TOKEN_PRICES,
}

# (model, quality, size) -> dollars per picture.
LEGACY_IMAGE_PRICES: dict[tuple[str, str, str], float] = {
    ("dall-e-2", "standard", "256x256"): 0.016,
    ("dall-e-2", "standard", "512x512"): 0.018,
    ("dall-e-2", "standard", "1024x1024"): 0.020,
    ("dall-e-3", "standard", "1024x1024"): 0.040,
    ("dall-e-3", "standard", "1792x1024"): 0.080,
    ("dall-e-3", "standard", "1024x1792"): 0.080,
    ("dall-e-3", "hd", "1024x1024"): 0.080,
    ("dall-e-3", "hd", "1792x1024"): 0.120,
    ("dall-e-3", "hd", "1024x1792"): 0.120,
}


@dataclass(frozen=True)
class ChatPrices:
    input: float
    output: float


# Per million tokens, from OpenAI's price list.
CHAT_PRICES: dict[str, ChatPrices] = {
    "gpt-5.4-mini": ChatPrices(input=0.75, output=4.50),
    "gpt-5.4-nano": ChatPrices(input=0.20, output=1.25),
}


def chat_cost(model: str, *, input_tokens: int, output_tokens: int) -> float | None:
    """Dollar cost of one chat call; None for a model without a price (a local server, say)."""
    prices = CHAT_PRICES.get(model)
    if prices is None:
        return None
    return (input_tokens * prices.input + output_tokens * prices.output) / PER_MILLION


def token_cost(model: str, *, text_input: int, image_input: int, image_output: int) -> float | None:
    """Dollar cost of one GPT Image call from its token usage; None for an unpriced model."""
    prices = TOKEN_PRICES.get(model)
    if prices is None and model.startswith("gpt-image-"):
        prices = GPT_IMAGE_TOKEN_PRICES
    if prices is None:
        return None
    return (
        text_input * prices.text_input + image_input * prices.image_input + image_output * prices.image_output
    ) / PER_MILLION


def legacy_cost(model: str, quality: str, size: str, count: int = 1) -> float | None:
    price = LEGACY_IMAGE_PRICES.get((model, quality, size))
    return None if price is None else price * count
