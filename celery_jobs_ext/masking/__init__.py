"""Hide secrets in text, nested values, exceptions and log records.

Task arguments, results, tracebacks and log lines carry credentials (broker URLs, bearer tokens,
API keys, passwords on command lines). Masking hides them without destroying the text around
them: each rule keys on the secret's own shape (a vendor prefix, a URL's ``user:pass@``, a
secret-named key, a CLI option) and masks the whole value as its syntax delimits it. The rules,
their masks and their limits are listed in docs/security.md ("Secret masking").

Layout: :mod:`.text` (``mask_text``, built from :mod:`.keys`, :mod:`.rules`, :mod:`.elements`,
:mod:`.cli`, :mod:`.commands`, :mod:`.prose`, :mod:`.password_files`, :mod:`.urls`,
:mod:`.vendors` and :mod:`.generic` on :mod:`.engine` and :mod:`.fields`) imports nothing of
Celery; :mod:`.values` walks nested
values; :mod:`.exceptions` masks exceptions in place; :mod:`.log_filter` is the logging filter;
:mod:`.worker` is the Celery glue (argsrepr at publish, worker log handlers, events), loaded on
first use of one of its names so that ``from celery_jobs_ext.masking import mask_text`` leaves
Celery unimported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from celery_jobs_ext.masking.exceptions import mask_exception
from celery_jobs_ext.masking.keys import DEFAULT_MASK_KEYS
from celery_jobs_ext.masking.log_filter import MaskingFilter, add_masking_filter
from celery_jobs_ext.masking.text import mask_text
from celery_jobs_ext.masking.values import CYCLE_MARKER, DEPTH_MARKER, MAX_DEPTH, mask, mask_repr

if TYPE_CHECKING:
    from celery_jobs_ext.masking.worker import MaskingRequest, masked_reprs, masking_strategy

__all__ = [
    "CYCLE_MARKER",
    "DEFAULT_MASK_KEYS",
    "DEPTH_MARKER",
    "MAX_DEPTH",
    "MaskingFilter",
    "MaskingRequest",
    "add_masking_filter",
    "mask",
    "mask_exception",
    "mask_repr",
    "mask_text",
    "masked_reprs",
    "masking_strategy",
]

#: Names of the Celery glue, imported on first use (PEP 562).
_WORKER_NAMES = frozenset({"MaskingRequest", "masked_reprs", "masking_strategy"})


def __getattr__(name: str) -> Any:
    if name not in _WORKER_NAMES:
        raise AttributeError(f"module 'celery_jobs_ext.masking' has no attribute {name!r}")
    value = getattr(importlib.import_module("celery_jobs_ext.masking.worker"), name)
    globals()[name] = value
    return value
