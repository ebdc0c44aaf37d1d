"""The full-size soak runs only when asked for: ``pytest tests/soak -m soak_full`` or ``tox -e soak``."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the ``soak_full`` runs out unless the marker expression selects them.

    They take several minutes per broker, too long for the default suite, which runs the
    same checks on a smaller workload (about 1,500 tasks, one of each fault). Deselected
    rather than skipped: nothing in the default suite reports as skipped.
    """
    if "soak_full" in (config.getoption("markexpr", "") or ""):
        return
    full = [item for item in items if item.get_closest_marker("soak_full") is not None]
    if full:
        config.hook.pytest_deselected(items=full)
        items[:] = [item for item in items if item.get_closest_marker("soak_full") is None]
