"""``celery -A proj jobs-…`` sub-commands, registered through the ``celery.commands`` entry point."""

from __future__ import annotations

import click


@click.group(name="jobs-dlq")
def dlq_command() -> None:
    """Inspect and replay the dead-letter queue (in progress)."""
