"""What /usage and /help say, each built in one function: a member's use against their limits, and
what Mural does here."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.budgets import UsageReport, dollars
from bot.core.images import ImageOptions, size_label
from bot.models import Limits
from bot.ui.layouts import MESSAGE_LIMIT, clip

# -- /usage -------------------------------------------------------------------------------------


def _against(used: str, allowed: str | None) -> str:
    return used if allowed is None else f"{used} of {allowed}"


def usage_text(report: UsageReport) -> str:
    """/usage: the member's pictures and spend against their limits; the server's when it is shown."""
    limits, window = report.limits, report.window
    pictures_limit = limits.member_daily_pictures
    lines = [
        "**Your use of Mural here**",
        f"Today: {_against(str(report.member_today.pictures), _count(pictures_limit))} pictures"
        f" · {_against(dollars(report.member_today.spend), _money(limits.member_daily_spend))}"
        f" (resets <t:{window.day_reset}:R>)",
        f"This month: {report.member_month.pictures} pictures · {dollars(report.member_month.spend)}",
    ]
    if report.server_today is not None and report.server_month is not None:
        lines += [
            "",
            "**This server**",
            f"Today: {report.server_today.pictures} pictures"
            f" · {_against(dollars(report.server_today.spend), _money(limits.server_daily_spend))}"
            f" (resets <t:{window.day_reset}:R>)",
            f"This month: {report.server_month.pictures} pictures"
            f" · {_against(dollars(report.server_month.spend), _money(limits.server_monthly_spend))}"
            f" (resets <t:{window.month_reset}:R>)",
        ]
        if report.top_members:
            lines.append("Top members this month:")
            lines += [
                f"{place}. <@{member.user_id}>: {member.pictures} pictures · {dollars(member.spend)}"
                for place, member in enumerate(report.top_members, start=1)
            ]
        lines.append("Limits are set with `/settings`.")
    return clip("\n".join(lines), MESSAGE_LIMIT)


def _count(amount: int | None) -> str | None:
    return None if amount is None else str(amount)


def _money(amount: float | None) -> str | None:
    return None if amount is None else dollars(amount)


# -- /help ------------------------------------------------------------------------------------------


def help_texts(
    *,
    commands: Sequence[tuple[str, str]],
    version_buttons: Sequence[tuple[str, str, str]],
    picture_buttons: Sequence[tuple[str, str, str]],
    defaults: Sequence[str],
    where: str,
    reads_messages: bool = True,
) -> list[str]:
    """/help as card text blocks: what Mural does, each command and button in a line, the defaults here,
    and how to report a problem. `commands` are (how to call it, what it does); buttons (emoji, label, what).
    """

    def button_lines(buttons: Sequence[tuple[str, str, str]]) -> str:
        return "\n".join(f"{emoji} **{label}** — {hint}" for emoji, label, hint in buttons)

    return [
        "## Mural\nI turn a short idea into a detailed image prompt, refine it with you version by version, "
        "and draw it with OpenAI's image models. Works in servers, in DMs with me, and as your own app.",
        "### Commands\n" + "\n".join(f"{call} — {what}" for call, what in commands),
        "### On a version\n" + button_lines(version_buttons),
        "### On a picture\n" + button_lines(picture_buttons),
        "### Talking to it\nIn a session's thread, your message becomes the next version. **Reply to a "
        "version** to refine it where there is no thread; **reply to a picture** to change that picture."
        + (
            ""
            if reads_messages
            else " In servers I only read replies to my messages (keep their @ on) and messages that mention me."
        ),
        f"### {where}\n" + "\n".join(f"• {line}" for line in defaults),
        "### Something wrong?\nEvery error I show ends with a code such as `E-BUSY` or `E-BUG-1a2b3c`. Send it "
        "to a server admin (or the bot's operator): the same code is in my log, next to the details.",
    ]


def help_defaults(
    options: ImageOptions, *, moderation: str, access: str, required_role_id: int | None
) -> list[str]:
    """The lines of /help that say what a render here uses and who may do what."""
    lines = [
        f"Pictures: {options.model} · {size_label(options.size)} · {options.quality} quality",
        f"Moderation: {moderation}",
        f"Who may refine a session: {access}",
    ]
    if required_role_id is not None:
        lines.append(f"Using Mural needs the <@&{required_role_id}> role")
    return lines


def help_limits(limits: Limits) -> list[str]:
    """/help: the budgets that apply to the member, in one line each (only those that are set)."""
    lines = []
    if limits.member_daily_pictures is not None:
        lines.append(f"Up to {limits.member_daily_pictures} pictures per member per day")
    if limits.member_daily_spend is not None:
        lines.append(f"Up to {dollars(limits.member_daily_spend)} per member per day")
    server = [
        f"{dollars(amount)} per {period}"
        for amount, period in ((limits.server_daily_spend, "day"), (limits.server_monthly_spend, "month"))
        if amount is not None
    ]
    if server:
        lines.append(f"The whole server: up to {' and '.join(server)}")
    if lines:
        lines.append("Days and months are UTC; `/usage` shows what you have used")
    return lines
