"""The app the plugin mounts: imported on its first request, and the API server's start-up objects frozen
out of the cyclic GC then (``TIDBOPS_UI_GC_FREEZE=0`` turns that off)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tidbops_airflow.ui import LazyApp

pytestmark = pytest.mark.operators


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_first_request_imports_the_app_and_freezes_what_the_server_holds(unfrozen: None) -> None:
    from tidbops_airflow.ui.app import app

    lazy = LazyApp()
    assert gc.get_freeze_count() == 0
    assert lazy.app is app
    assert gc.get_freeze_count() > 0
    frozen = gc.get_freeze_count()
    assert lazy.app is app and gc.get_freeze_count() == frozen  # once


def test_the_freeze_can_be_turned_off(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDBOPS_UI_GC_FREEZE", "0")
    assert LazyApp().app is not None
    assert gc.get_freeze_count() == 0
