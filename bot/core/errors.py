"""The bot's own errors: each carries a short code and a message that is safe to show a member.

The OpenAI layer and the core raise these; `bot/ui/errors.py` shows `user_message` to the member
and logs `code` with the details, so a member's report ("it said E-BUSY") leads straight to the log.
"""

from __future__ import annotations


class MuralError(Exception):
    code = "E-MURAL"
    user_message = "Something went wrong on my side. Please try again."
    # True when an operator has to act (bad key, retired model, no credit): logged as an error once.
    operator_problem = False

    def __init__(self, detail: str | None = None, *, user_message: str | None = None) -> None:
        super().__init__(detail or self.user_message)
        self.detail = detail or self.user_message
        if user_message is not None:
            self.user_message = user_message


class InvalidRequest(MuralError):
    """The member asked for something that cannot be done; the detail is written for them."""

    code = "E-INPUT"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, user_message=detail)


class NotAllowed(InvalidRequest):
    code = "E-NOT-YOURS"


class SessionGone(MuralError):
    code = "E-GONE"
    user_message = "That prompt session no longer exists, so there is nothing to do here."


class ServiceBusy(MuralError):
    code = "E-BUSY"
    user_message = "OpenAI is busy right now (rate limited). Please try again in a minute."

    def __init__(self, detail: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class OutOfCredit(MuralError):
    code = "E-CREDIT"
    user_message = "This bot is out of OpenAI credit; the admins have been told."
    operator_problem = True


class Misconfigured(MuralError):
    code = "E-CONFIG"
    user_message = "The bot is misconfigured, so it cannot do that right now; the admins have been told."
    operator_problem = True


class VisionUnavailable(Misconfigured):
    code = "E-VISION"
    user_message = (
        "I can't read pictures with the model I'm set up with, so I can't describe this one. "
        "The admins have been told."
    )


class ServiceUnavailable(MuralError):
    code = "E-DOWN"
    user_message = "The OpenAI service cannot be reached right now. Please try again in a few minutes."


class StoreUnavailable(MuralError):
    """The database did not answer (PostgreSQL down or unreachable); nothing was changed."""

    code = "E-DB"
    user_message = (
        "I can't reach my database right now, so nothing was done. Please try again in a minute; "
        "the bot's operator has been told."
    )
    operator_problem = True


class ServiceTimeout(ServiceUnavailable):
    code = "E-TIMEOUT"
    user_message = "OpenAI took too long to answer, so I gave up on this one. Please try again."


class SafetyRejected(MuralError):
    code = "E-SAFETY"
    user_message = (
        "The image model declined this prompt under OpenAI's safety rules, and nothing was drawn. "
        "Try describing the scene differently: leave out real people's names, violence, or explicit "
        "details, and refine the prompt before generating again."
    )


class ChatRefused(MuralError):
    code = "E-REFUSED"
    user_message = (
        "The prompt writer declined this idea under OpenAI's safety rules. "
        "Try wording it differently, or describe the scene rather than the sensitive part."
    )


class BadAnswer(MuralError):
    code = "E-ANSWER"
    user_message = "The model answered with something I could not use. Please try again."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)


class ImageTooLarge(MuralError):
    code = "E-TOO-LARGE"
    user_message = "The picture is too large for this server's upload limit, even after compressing it."


# Failures worth a Retry button: waiting a little may be all it takes.
RETRYABLE: tuple[type[MuralError], ...] = (ServiceBusy, ServiceUnavailable)
