"""ImageMagick: file names that open a pipe to a command or run a script.

ImageMagick opens a file name starting with ``|`` as a pipe to that command, reads ``@file``
as a list of further names, and runs MSL scripts (``msl:``); ``ephemeral:`` deletes the file
after reading it.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

_CODERS = ("msl:", "ephemeral:", "mvg:", "text:", "label:@", "caption:@", "url:", "http:", "https:", "ftp:")


def check_magick(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse ``|command`` and ``@list`` file names and coders that run scripts or touch other files."""
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        lowered = argument.lower()
        if argument.startswith(("|", "@")) or lowered.startswith(_CODERS):
            refuse(
                f"argument {argument!r} of {program!r} opens a pipe to a command, reads a list of "
                "other files, or uses a coder that runs a script or reaches other files"
            )
