"""A real headless browser for tests: Debian's Chromium, driven by Playwright (never a downloaded browser).

The browser is `MURAL_CHROMIUM` (default: `chromium` on the PATH). Without it, or without Playwright, the
tests that need one skip with one reason, unless `MURAL_REQUIRE_BROWSER=1` (`.ci/run` sets it), when they
fail instead: CI must never pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

REQUIRED = os.environ.get("MURAL_REQUIRE_BROWSER") == "1"
SKIP_REASON = (
    "Browser tests need Chromium and Playwright: apt-get install chromium (or set MURAL_CHROMIUM to a "
    "Chromium binary) and pip install -e '.[test]'"
)
# A name only this browser resolves (to loopback): a page there is not a secure context, as on a LAN
# address without TLS, so the clipboard is not offered.
INSECURE_HOST = "gallery.invalid"


def chromium_path() -> str | None:
    found = os.environ.get("MURAL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and os.access(found, os.X_OK) else None


def require_browser() -> str:
    """Chromium's path, once both it and Playwright are here; else skip (or fail where required)."""
    found = chromium_path()
    if found is not None and importlib.util.find_spec("playwright") is not None:
        return found
    if REQUIRED:
        pytest.fail(SKIP_REASON + ", and MURAL_REQUIRE_BROWSER=1 says they must run")
    pytest.skip(SKIP_REASON)


def launch_arguments() -> list[str]:
    return [f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1", "--disable-gpu", "--no-first-run"]
