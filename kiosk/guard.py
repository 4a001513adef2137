"""API failures as words on the kiosk's screen: a worker's call never ends in a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from kiosk.errors import ApiError, DaemonUnreachableError, KioskError, NotAuthorizedError
from kiosk.strings import t

if TYPE_CHECKING:
    from kiosk.app import KioskApp

__all__ = ["guard"]

log = logging.getLogger(__name__)
T = TypeVar("T")
API_ERRORS = {400: "app.card_unknown", 422: "app.card_code_wrong", 429: "app.too_many_cards"}


async def guard(app: KioskApp, call: Callable[[], Awaitable[T]], *, retry_forever: bool = False) -> T | None:
    """Run an API call for `app`; on failure say so on screen (or end a refused session), return None."""
    while True:
        try:
            return await call()
        except DaemonUnreachableError:
            if retry_forever:
                continue
            app.notify(t("app.not_answering"), severity="error")
        except NotAuthorizedError as exc:
            if app.session is not None:
                log.info("session_refused", extra={"error": exc.message})
                app.end_session(t("app.expired"))
            else:
                app.attract.notice = t("app.kiosk_refused")
        except ApiError as exc:
            log.warning("api_error", extra={"status": exc.status, "error": exc.message})
            app.notify(t(API_ERRORS.get(exc.status, "app.went_wrong")), severity="error")
        except KioskError as exc:
            log.warning("kiosk_error", extra={"error": str(exc)})
            app.notify(t("app.went_wrong"), severity="error")
        return None
