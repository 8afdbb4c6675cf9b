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


def test_the_first_request_imports_the_app_and_freezes_what_the_server_holds(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tidbops_airflow.ui.app import app

    freezes: list[int] = []
    real_freeze = gc.freeze

    def counted_freeze() -> None:  # the stdlib's, counted: the global freeze count is not ours alone (a thread of
        freezes.append(1)  # another test, or Airflow's supervisor before a fork, may freeze too)
        real_freeze()

    monkeypatch.setattr(gc, "freeze", counted_freeze)
    lazy = LazyApp()
    assert gc.get_freeze_count() == 0
    assert lazy.app is app
    assert gc.get_freeze_count() > 0 and freezes == [1]
    assert lazy.app is app and freezes == [1]  # once


def test_the_freeze_can_be_turned_off(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDBOPS_UI_GC_FREEZE", "0")
    assert LazyApp().app is not None
    assert gc.get_freeze_count() == 0
