"""mask_text: every rule for one set of key names, compiled once and cached."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from functools import lru_cache

from celery_jobs_ext.errors import ImproperlyConfigured
from celery_jobs_ext.masking.calls import call_rules
from celery_jobs_ext.masking.cli import option_rule, tool_rule
from celery_jobs_ext.masking.commands import command_rules
from celery_jobs_ext.masking.elements import attribute_named_element_rule, element_rule, named_element_rule
from celery_jobs_ext.masking.engine import Rule, RuleSet, apply_rules, literal_rule
from celery_jobs_ext.masking.generic import (
    _MIN_CANDIDATE,
    _MIN_GENERIC,
    _TRIGGER_MARGIN,
    _mask_long_runs,
    _upper_runs,
)
from celery_jobs_ext.masking.keys import DEFAULT_MASK_KEYS, KeyMatcher, is_filler
from celery_jobs_ext.masking.password_files import HASH_RULES, directive_line_rules
from celery_jobs_ext.masking.prose import prose_hex_rules, prose_rules
from celery_jobs_ext.masking.rules import (
    AUTH_RULES,
    JWT_PATTERN,
    PEM,
    assignment_rules,
    replace_jwt,
    reversed_comparison_rule,
)
from celery_jobs_ext.masking.sql import sql_rules
from celery_jobs_ext.masking.truncated import mask_truncated
from celery_jobs_ext.masking.urls import URL_RULES
from celery_jobs_ext.masking.vendors import (
    GATED_VENDOR_RULES,
    HEX_VENDOR_RULES,
    LOWERCASE_VENDOR_RULES,
    has_hex_run,
    mask_discord_tokens,
)

# ---------------------------------------------------------------------------------------------
# Putting the rules together
# ---------------------------------------------------------------------------------------------


_MIN_HEX = 32


class Masker:
    """All the rules for one set of secret key names, compiled once.

    The always-on rules are literal-first scans (about half a microsecond per kilobyte each). The
    vendor rules, JWTs and the generic rule run only when :func:`_upper_runs` finds a run that
    could be a key, which text of words, names, paths and ids rarely has.
    """

    def __init__(self, keys: frozenset[str]) -> None:
        self.keys = KeyMatcher(keys)
        # Order matters: a URL or an auth scheme inside a secret-named key's value is masked by
        # its own rule first, and the key's rule then leaves the masked value alone.
        self.always = RuleSet(
            (
                PEM,
                *URL_RULES,
                *AUTH_RULES,
                *HASH_RULES,
                *map(_no_filler, LOWERCASE_VENDOR_RULES),
                *assignment_rules(self.keys),
                reversed_comparison_rule(self.keys),
                element_rule(self.keys),
                named_element_rule(self.keys),
                attribute_named_element_rule(self.keys),
                option_rule(self.keys),
                tool_rule(),
                *command_rules(self.keys),
                *prose_rules(self.keys),
                *sql_rules(),
                *call_rules(),
                *directive_line_rules(self.keys),
            )
        )
        self.hex = RuleSet((*map(_no_filler, HEX_VENDOR_RULES), *prose_hex_rules(self.keys)))
        self.gated = RuleSet(
            (literal_rule("jwt", "eyj", JWT_PATTERN, replace_jwt), *map(_no_filler, GATED_VENDOR_RULES))
        )

    def mask_text(self, text: str) -> str:
        if len(text) < 6:
            return text
        lowered = text.lower()
        masked = apply_rules(self.always, text, lowered)
        if "..." in masked or "…" in masked:
            masked = mask_truncated(masked)
        if len(masked) >= _MIN_HEX and has_hex_run(masked):
            masked = apply_rules(self.hex, masked, lowered if masked is text else None)
        if masked is text and lowered == text:
            return text  # no uppercase letter: no run the gated rules could match
        runs = _upper_runs(masked) if len(masked) >= _MIN_CANDIDATE else []
        if runs:
            # A gated secret lies in a run, or starts shortly before one (its prefix, or the
            # earlier parts of a JWT, a SendGrid key, a Slack webhook URL): look for the
            # triggers there rather than in the whole text, which is most of the cost.
            scope = " ".join(masked[max(0, start - _TRIGGER_MARGIN) : end] for start, end in runs).lower()
            gated = apply_rules(self.gated, masked, lowered if masked is text else None, scope)
            if gated is not masked:
                # A mask only splits runs (it starts and ends with "*"), so runs long enough for
                # the generic rule exist after it only if they did before.
                long = any(end - start >= _MIN_GENERIC for start, end in runs)
                runs = _upper_runs(gated) if long else []
            masked = _mask_long_runs(gated, runs)
            if "." in masked and masked is not text:
                masked = mask_discord_tokens(masked, _upper_runs(masked))
            elif "." in masked:
                masked = mask_discord_tokens(masked, runs)
        return masked


def _no_filler(rule: Rule) -> Rule:
    """``rule`` leaving a format's example alone (``glpat-XXXX-XXXX``, ``hf_xxxxxxxx``)."""

    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        return None if is_filler(text[match.start() : match.end()]) else rule.replace(text, match)

    return dataclasses.replace(rule, replace=replace)


def _normalize_keys(keys: Iterable[str] | None) -> frozenset[str]:
    if keys is None:
        return DEFAULT_MASK_KEYS
    if isinstance(keys, (str, bytes)):
        raise ImproperlyConfigured(
            f"jobs_mask_keys (the keys argument) must be a list of key names, not the string {keys!r}: "
            f"write [{keys!r}]."
        )
    names = frozenset(keys)
    for name in names:
        if not isinstance(name, str):
            raise ImproperlyConfigured(f"jobs_mask_keys must hold key names as strings, got {name!r}.")
    return names


@lru_cache(maxsize=32)
def _masker_for(keys: frozenset[str]) -> Masker:
    return Masker(keys)


def masker_for_keys(keys: Iterable[str] | None) -> Masker:
    return _masker_for(_normalize_keys(keys))


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def mask_text(text: str, keys: Iterable[str] | None = None) -> str:
    """Return ``text`` with every secret replaced by a mask that names it.

    Text without secrets comes back as the very same object, cheaply: that is the common case and
    it must not cost a copy.

    Arguments:
        text: any text: a log line, a repr, a traceback, a URL.
        keys: secret key names for ``key=value`` assignments in the text; None means
            :data:`DEFAULT_MASK_KEYS`. The full set, not an addition to the defaults.

    Returns:
        The masked text.

    Raises:
        ImproperlyConfigured: ``keys`` is a string or holds non-strings.
    """
    return masker_for_keys(keys).mask_text(text)
