"""Secrets cut short by a repr: ``'ghp_aB3dE5fG7hJ9kL1mN3p...'``, judged by what is left.

Celery cuts the result repr (``resultrepr_maxsize``, 1024 characters) before our log filter and
event masking see it, so a token can end in the ellipsis below its rule's minimum length and no
rule matches. A run that ends in the ellipsis is masked whole when its start is a known vendor
prefix; a cut value under a secret-named key is masked by the key rules already (an unterminated
quote is a value too).
"""

from __future__ import annotations

import re
from typing import Final

from celery_jobs_ext.masking.engine import char_classes
from celery_jobs_ext.masking.keys import API_KEY, JWT

#: The prefixes of the vendor formats in :mod:`vendors` (and JWT's ``eyJ``), case-sensitive as
#: the vendors write them. Kept to prefixes with a separator or a capital, so that a cut word of
#: prose does not start with one.
VENDOR_PREFIXES: Final = (
    # GitHub, GitLab
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",
    "glpat-", "glptt-", "gldt-", "glrt-", "glsoat-", "glffct-", "glagent-", "gloas-", "glimt-",
    "glft-", "glcbt-", "GR1348941",
    # Slack, Stripe, Google, OpenAI and co., SendGrid, npm, PyPI, Hugging Face
    "xoxa-", "xoxb-", "xoxe-", "xoxo-", "xoxp-", "xoxr-", "xoxs-", "xapp-",
    "sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_", "whsec_",
    "AIza", "sk-", "SG.", "npm_", "pypi-AgE", "hf_",
    # AWS access key ids, Vault, Doppler, Linear, Postman, Grafana, Sentry, Groq, Replicate,
    # New Relic, age, Shopify, Databricks, DigitalOcean, Pulumi, Supabase, Square
    "AKIA", "ASIA", "ABIA", "ACCA", "A3T",
    "hvs.", "hvb.", "hvr.", "dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "lin_api_", "PMAK-",
    "glc_", "glsa_", "sntrys_", "sntryu_", "gsk_", "r8_", "NRAK-", "AGE-SECRET-KEY-1",
    "shpat_", "shpca_", "shppa_", "shpss_", "dapi", "dop_v1_", "doo_v1_", "dor_v1_",
    "pul-", "sbp_", "sq0atp-", "sq0csp-", "EAAA",
)  # fmt: skip
_ELLIPSIS = re.compile(r"\.\.\.|…")
#: Characters of a token (vendor tokens are base64url-like, with the odd ``.``).
_RUN_CHARACTERS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/=."
_MAX_TOKEN: Final = 512
_MIN_REST: Final = 4


def mask_truncated(text: str) -> str:
    """Mask every run ending in an ellipsis that starts with a vendor prefix (or is a JWT)."""
    pieces: list[str] = []
    end = 0
    for found in _ELLIPSIS.finditer(text):
        start = found.start()
        if start < end:
            continue
        window = text[max(end, start - _MAX_TOKEN) : start]
        token = window[len(window.rstrip(_RUN_CHARACTERS)) :].lstrip(".")
        label = _label(token)
        if label is None:
            continue
        token_start = start - len(token)
        pieces += (text[end:token_start], label)
        end = start
    if not pieces:
        return text
    pieces.append(text[end:])
    return "".join(pieces)


def _label(token: str) -> str | None:
    if token.startswith("eyJ") and len(token) > len("eyJ") + _MIN_REST:
        return JWT
    if not token.startswith(VENDOR_PREFIXES):
        return None
    prefix = next(prefix for prefix in VENDOR_PREFIXES if token.startswith(prefix))
    rest = token[len(prefix) :]
    # A random tail mixes character classes or holds digits ("AKIA" keys are capitals and
    # digits); "sk-learn..." and "dapianos..." are words.
    random = char_classes(rest) >= 2 or any(char.isdigit() for char in rest) or (prefix + rest).isupper()
    return API_KEY if len(rest) >= _MIN_REST and random else None
