"""What OpenAI charges, in one table (US dollars) that an operator can override with a TOML file.

Chat models and GPT Image 2.x models bill tokens; the legacy DALL-E models, still served by some
OpenAI-compatible servers, bill a flat price per picture. `PRICES_FILE` names a TOML file of the same
shape as `prices.example.toml` (which lists every model priced here); its entries replace or add to
these. A model missing everywhere is still used: its calls are recorded with their tokens and no cost.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PER_MILLION = 1_000_000


@dataclass(frozen=True)
class ChatPrices:
    input: float
    output: float


@dataclass(frozen=True)
class TokenPrices:
    text_input: float
    image_input: float
    image_output: float


GPT_IMAGE_TOKEN_PRICES = TokenPrices(text_input=5.00, image_input=8.00, image_output=30.00)

# When a server reports no usage for a GPT Image model, a 1024x1024 picture is estimated at about
# this much by quality (OpenAI's own rough figures), scaled by its area.
ESTIMATED_SQUARE_PICTURE = {"low": 0.02, "medium": 0.07, "high": 0.19}
_SQUARE_PIXELS = 1024 * 1024


@dataclass(frozen=True)
class PriceTable:
    # Per million tokens.
    chat: Mapping[str, ChatPrices] = field(default_factory=dict)
    image_tokens: Mapping[str, TokenPrices] = field(default_factory=dict)
    # Per picture, by model and "quality size" (e.g. "hd 1792x1024").
    image_pictures: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def chat_cost(self, model: str, *, input_tokens: int, output_tokens: int) -> float | None:
        """Dollar cost of one chat call; None for a model without a price (a local server, say)."""
        prices = self.chat.get(model)
        if prices is None:
            return None
        return (input_tokens * prices.input + output_tokens * prices.output) / PER_MILLION

    def _token_prices(self, model: str) -> TokenPrices | None:
        prices = self.image_tokens.get(model)
        if prices is None and model.startswith("gpt-image-"):
            # Dated snapshots and new variants bill like the family until the table says otherwise.
            prices = GPT_IMAGE_TOKEN_PRICES
        return prices

    def token_cost(self, model: str, *, text_input: int, image_input: int, image_output: int) -> float | None:
        """Dollar cost of one GPT Image call from its token usage; None for an unpriced model."""
        prices = self._token_prices(model)
        if prices is None:
            return None
        spent = text_input * prices.text_input + image_input * prices.image_input
        return (spent + image_output * prices.image_output) / PER_MILLION

    def picture_cost(self, model: str, quality: str, size: str, count: int = 1) -> float | None:
        """Dollar cost of pictures billed per picture (the legacy DALL-E models)."""
        price = self.image_pictures.get(model, {}).get(f"{quality} {size}")
        return None if price is None else price * count

    def estimated_picture_cost(self, model: str, quality: str, size: str, count: int = 1) -> float | None:
        """A rough cost for token-billed pictures whose usage the server did not report."""
        if self._token_prices(model) is None:
            return None
        per_square = ESTIMATED_SQUARE_PICTURE.get(quality, ESTIMATED_SQUARE_PICTURE["medium"])
        width, _, height = size.partition("x")
        area = int(width) * int(height) if width.isdigit() and height.isdigit() else _SQUARE_PIXELS
        return per_square * area / _SQUARE_PIXELS * count


DEFAULT_PRICES = PriceTable(
    chat={
        "gpt-5.4-mini": ChatPrices(input=0.75, output=4.50),
        "gpt-5.4-nano": ChatPrices(input=0.20, output=1.25),
    },
    image_tokens=dict.fromkeys(
        (
            "gpt-image-2",
            "gpt-image-2.5-flare",
            "gpt-image-2.5-sunburst",
            "gpt-image-2.6-flare",
            "gpt-image-2.6-sunburst",
        ),
        GPT_IMAGE_TOKEN_PRICES,
    ),
    image_pictures={
        "dall-e-2": {"standard 256x256": 0.016, "standard 512x512": 0.018, "standard 1024x1024": 0.020},
        "dall-e-3": {
            "standard 1024x1024": 0.040,
            "standard 1792x1024": 0.080,
            "standard 1024x1792": 0.080,
            "hd 1024x1024": 0.080,
            "hd 1792x1024": 0.120,
            "hd 1024x1792": 0.120,
        },
    },
)


class PricesFileError(ValueError):
    """A prices file that cannot be used; the message says where and why."""


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise PricesFileError(f"{where} is not a price; expected a number of dollars, 0 or more")
    return float(value)


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise PricesFileError(f"[{name}] is not a table of models")
    return section


def _prices(
    section: Mapping[str, Any], name: str, model: str, kind: type[ChatPrices] | type[TokenPrices]
) -> Any:
    entry = section[model]
    fields = tuple(kind.__dataclass_fields__)
    if not isinstance(entry, dict) or set(entry) != set(fields):
        raise PricesFileError(f'[{name}."{model}"] needs exactly {", ".join(fields)}')
    return kind(**{key: _number(entry[key], f'[{name}."{model}"].{key}') for key in fields})


def parse_prices(text: str, base: PriceTable = DEFAULT_PRICES) -> PriceTable:
    """The table in TOML `text` laid over `base`: its models replace or add to those."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PricesFileError(f"is not valid TOML ({error})") from None
    unknown = set(data) - {"chat", "image_tokens", "image_pictures"}
    if unknown:
        raise PricesFileError(
            f"has unknown section(s) {', '.join(sorted(unknown))}; expected chat, image_tokens, image_pictures"
        )
    chat = _table(data, "chat")
    tokens = _table(data, "image_tokens")
    pictures = _table(data, "image_pictures")
    per_picture: dict[str, Mapping[str, float]] = dict(base.image_pictures)
    for model, entry in pictures.items():
        if not isinstance(entry, dict):
            raise PricesFileError(f'[image_pictures."{model}"] is not a table of "quality size" = price')
        per_picture[model] = {
            key: _number(price, f'[image_pictures."{model}"]."{key}"') for key, price in entry.items()
        }
    return replace(
        base,
        chat={**base.chat, **{model: _prices(chat, "chat", model, ChatPrices) for model in chat}},
        image_tokens={
            **base.image_tokens,
            **{model: _prices(tokens, "image_tokens", model, TokenPrices) for model in tokens},
        },
        image_pictures=per_picture,
    )


def load_prices(path: Path) -> PriceTable:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PricesFileError(f"cannot be read ({error.strerror})") from None
    return parse_prices(text)


def prices_toml(table: PriceTable) -> str:
    """The table as a prices file (how `prices.example.toml` is made and kept complete)."""
    lines = [
        "# Prices in US dollars. Copy to a file of your own, change what differs, and point PRICES_FILE at it:",
        "# its models replace or add to the built-in table. Tokens are priced per million; pictures of the",
        '# per-picture models by "quality size".',
        "",
    ]
    for model, chat in table.chat.items():
        lines += [f'[chat."{model}"]', f"input = {chat.input:.2f}", f"output = {chat.output:.2f}", ""]
    for model, tokens in table.image_tokens.items():
        lines += [
            f'[image_tokens."{model}"]',
            f"text_input = {tokens.text_input:.2f}",
            f"image_input = {tokens.image_input:.2f}",
            f"image_output = {tokens.image_output:.2f}",
            "",
        ]
    for model, prices in table.image_pictures.items():
        lines.append(f'[image_pictures."{model}"]')
        lines += [f'"{key}" = {price:.3f}' for key, price in prices.items()]
        lines.append("")
    return "\n".join(lines)
