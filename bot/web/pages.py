"""The gallery's HTML, one function per page.

Every text a member wrote (prompts, names) and every value from a request goes through `html.escape`
before it reaches a page: a prompt such as `<img src=x onerror=alert(1)>` is shown as text. Pages carry
no inline script or style (the Content-Security-Policy forbids both); their CSS and JS are files the
gallery serves itself.

Links are relative (`../static/gallery.css`, `<token>/p/7`), so the gallery works the same behind a reverse
proxy that serves it under a path of its own (`GALLERY_URL=https://example.org/mural`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from urllib.parse import urlencode

from bot.core.gallery import GalleryItem, jump_url

# How much of a prompt a picture in the grid shows.
SHORT_PROMPT = 140


def shorten(prompt: str, limit: int = SHORT_PROMPT) -> str:
    """The prompt on one line, cut at a word near `limit` characters with an ellipsis."""
    line = " ".join(prompt.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"


def when(moment: datetime) -> str:
    """A picture's time as the page shows it before the script puts it in the reader's own time zone."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def grid_page(
    *,
    token: str,
    items: list[GalleryItem],
    search: str,
    only_mine: bool,
    can_filter_mine: bool,
    next_before: int | None,
) -> str:
    """`/g/<token>`: the pictures newest first, a search box, "only mine", and "More" when there are more."""
    root = "../"  # from /g/<token> to the gallery's root
    cards = "\n".join(_card(token, item) for item in items)
    if not items:
        empty = "Nothing matches that search." if search or only_mine else "No pictures here yet."
        cards = f'<p class="empty">{empty}</p>'
    more = ""
    if next_before is not None:
        query: dict[str, str | int] = {"before": next_before}
        if search:
            query["q"] = search
        if only_mine:
            query["mine"] = 1
        more = f'<nav class="more"><a id="more" href="?{escape(urlencode(query))}">More</a></nav>'
    mine_switch = ""
    if can_filter_mine:
        checked = " checked" if only_mine else ""
        mine_switch = (
            '<label class="switch"><input type="checkbox" name="mine" value="1" id="mine"'
            f"{checked}> Only mine</label>"
        )
    clear = f'<a class="clear" href="{escape(token)}">Show all</a>' if search or only_mine else ""
    body = f"""<header>
<h1>Mural gallery</h1>
<form class="filters" method="get" action="{escape(token)}" role="search">
<input type="search" name="q" id="q" value="{escape(search)}" placeholder="Words in the prompt" maxlength="200">
{mine_switch}
<button type="submit">Search</button>
{clear}
</form>
</header>
<main>
<section class="grid" id="grid">
{cards}
</section>
{more}
</main>"""
    return _document("Mural gallery", root, body)


def detail_page(*, token: str, item: GalleryItem) -> str:
    """`/g/<token>/p/<id>`: the picture larger, the whole prompt, Copy prompt and Open in Discord."""
    root = "../../../"  # from /g/<token>/p/<id> to the gallery's root
    picture = f"{root}g/{escape(token)}/img/{item.id}.webp"
    body = f"""<header>
<a class="back" id="back" href="../../{escape(token)}">← All pictures</a>
</header>
<main class="detail">
<figure>
<img id="picture" src="{picture}" width="{item.width}" height="{item.height}" alt="{escape(shorten(item.prompt))}">
</figure>
<section class="about">
<p class="meta">{_meta(item)}</p>
<h2>Prompt</h2>
<div class="prompt" id="prompt">{escape(item.prompt)}</div>
<p class="actions">
<button type="button" id="copy" data-copy="prompt">Copy prompt</button>
<a class="button" id="discord" href="{escape(jump_url(item))}" target="_blank" rel="noopener noreferrer">Open in Discord</a>
</p>
<p class="status" id="copy-status" role="status" aria-live="polite"></p>
</section>
</main>"""
    return _document("A picture · Mural gallery", root, body)


def refused_page() -> str:
    """The one answer to a link that is missing, altered, expired or no longer shows anything."""
    return plain_page("403 Forbidden", "This link is not valid. Ask Mural for a new one with /gallery.")


def not_found_page() -> str:
    return plain_page("404 Not Found", "There is nothing here.")


def _card(token: str, item: GalleryItem) -> str:
    short = escape(shorten(item.prompt))
    link = f"{escape(token)}/p/{item.id}"
    return f"""<article class="card">
<a href="{link}"><img src="{escape(token)}/img/{item.id}.webp" width="{item.width}" height="{item.height}" loading="lazy" alt="{short}"></a>
<p class="prompt-short"><a href="{link}">{short}</a></p>
<p class="meta">{_meta(item)}</p>
</article>"""


def _meta(item: GalleryItem) -> str:
    moment = item.created_at.astimezone(UTC)
    return (
        f'<span class="who">{escape(item.owner_name)}</span> · '
        f'<time datetime="{moment.isoformat()}">{when(moment)}</time> · '
        f'<span class="model">{escape(item.model)}</span> · <span class="size">{escape(item.size)}</span>'
    )


def _document(title: str, root: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
<link rel="icon" href="{root}static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{root}static/gallery.css">
<script src="{root}static/gallery.js" defer></script>
</head>
<body>
{body}
</body>
</html>
"""


def plain_page(title: str, text: str) -> str:
    """A page of a title and one line, for refusals and errors."""
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title></head>
<body><h1>{escape(title)}</h1><p>{escape(text)}</p></body>
</html>
"""
