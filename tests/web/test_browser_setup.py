"""Where the browser tests find Chromium, and what they do without it."""

from __future__ import annotations

import pytest

from tests.web import browser


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MURAL_CHROMIUM", raising=False)
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)


def test_without_chromium_the_browser_tests_skip_with_one_reason(
    no_chromium: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        browser.require_browser()


def test_where_the_browser_is_required_its_absence_fails(
    no_chromium: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser, "REQUIRED", True)
    with pytest.raises(pytest.fail.Exception, match="MURAL_REQUIRE_BROWSER=1"):
        browser.require_browser()


def test_mural_chromium_names_the_browser(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    binary = tmp_path / "my-chromium"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("MURAL_CHROMIUM", str(binary))
    assert browser.chromium_path() == str(binary)
