"""Vendor token formats: each starts with its vendor's prefix, so it is found by that literal.

Designed after gitleaks' rules (config/gitleaks.toml) and the vendors' token documentation,
lengths loosened where vendors have changed them. The gated rules run only where the text has
a long run holding an uppercase letter (see :mod:`.generic`); the literal rules run whenever
their prefix occurs, for formats that may be all lowercase or split into short runs.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from celery_jobs_ext.masking.engine import fixed, keep_group, literal_rule, mixed, span
from celery_jobs_ext.masking.keys import API_KEY, AWS_KEY, SECRET


def azure_secret(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    """Mask a match that mixes digits and both cases, as generated secrets do."""
    body = span(text, match)
    if sum(char.isdigit() for char in body) < 2 or body.lower() == body:
        return None
    return SECRET, match.end()


def twilio_pair(text: str, match: re.Match[str]) -> tuple[str, int]:
    return API_KEY + span(text, match, "between") + API_KEY, match.end()


# Vendor formats, after gitleaks' rules (config/gitleaks.toml), lengths loosened where vendors
# have changed them. Each starts with a literal and checks the boundary behind it.
#: Slack and GitLab tokens: random parts with an uppercase letter (gated) or 32+ hex digits (hex
#: gate) in practice, so neither needs its prefix looked for in every text.
LOWERCASE_VENDOR_RULES: Final = (
    # Red-team round 2: ReadMe API keys (rdme_ + 70 lowercase letters and digits) and NuGet API
    # keys (oy2 + 43): all lowercase, so not gated on a capital or a hex run; their prefixes are
    # rare, so they run on every text.
    literal_rule(
        "readme",
        "rdme_",
        r"rdme_(?<![A-Za-z0-9_]rdme_)[a-z0-9]{70}(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    literal_rule(
        "nuget",
        "oy2",
        r"oy2(?<![A-Za-z0-9_]oy2)[a-z0-9]{43}(?![A-Za-z0-9])",
        mixed(fixed(API_KEY), classes=2),
    ),
)

_SLACK_AND_GITLAB: Final = (
    # Slack: xoxb- bot, xoxp- user, xoxa-/xoxr-/xoxs-/xoxe-/xoxo- legacy and refresh tokens;
    # legacy ones end in lowercase hex. (xapp- app tokens hold an uppercase app id: gated.)
    literal_rule(
        "slack",
        "xox",
        r"xox(?<![A-Za-z0-9_-]xox)[abeoprs]-[A-Za-z0-9-]{10,255}",
        fixed(API_KEY),
    ),
    # GitLab tokens: personal (glpat-), pipeline trigger (glptt-), deploy (gldt-), runner (glrt-),
    # CI job (glcbt-<prefix>_), SCIM, feature flag, agent, OAuth, incoming mail, feed tokens.
    literal_rule(
        "gitlab",
        "gl",
        r"gl(?<![A-Za-z0-9_-]gl)(?:pat|ptt|dt|rt|soat|ffct|agent|oas|imt|ft|cbt-[A-Za-z0-9]{1,5}_?)"
        r"-?[A-Za-z0-9_.-]{20,255}",
        mixed(fixed(API_KEY), classes=2),
    ),
)


GATED_VENDOR_RULES: Final = (
    # Alibaba Cloud AccessKey IDs: LTAI + 12 to 20 letters and digits.
    literal_rule(
        "alibaba",
        "ltai",
        r"LTAI(?<![A-Za-z0-9_]LTAI)[A-Za-z0-9]{12,20}(?![A-Za-z0-9])",
        mixed(fixed(API_KEY), classes=2),
    ),
    # Square access tokens and OAuth secrets (gitleaks' square rules).
    literal_rule(
        "square",
        "sq0",
        r"sq0(?<![A-Za-z0-9_-]sq0)(?:atp-[A-Za-z0-9_-]{22}|csp-[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])",
        fixed(API_KEY),
    ),
    # Telegram bot tokens, <bot id>:<35 characters starting with A>: the part after the colon.
    literal_rule(
        "telegram-bot",
        ":a",
        r"(:)A(?<=[0-9]:A)[A-Za-z0-9_-]{34}(?![A-Za-z0-9_-])",
        keep_group(API_KEY),
    ),
    # Twilio: an account SID (AC + 32 hex) beside a 32-hex auth token, as SDK calls and configs
    # write them: Client("AC…", "…"). The token alone is hex, which the generic rule leaves.
    literal_rule(
        "twilio-pair",
        "ac",
        r"AC(?<![A-Za-z0-9]AC)[a-f0-9]{32}(?P<between>(?:\\?['\"])?[ \t]*[,:][ \t]*(?:\\?['\"])?)"
        r"(?P<token>[a-f0-9]{32})(?![A-Za-z0-9])",
        twilio_pair,
    ),
    literal_rule(
        "github",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"g(?<![A-Za-z0-9_]g)(?:h[pousr]_[A-Za-z0-9]{30,255}|ithub_pat_[A-Za-z0-9_]{40,255})",
        fixed(API_KEY),
    ),
    # GitLab runner registration tokens (deprecated, still in configs): GR1348941 + 20.
    literal_rule(
        "gitlab-runner",
        "gr1348941",
        r"GR1348941(?<![A-Za-z0-9_-]GR1348941)[A-Za-z0-9_-]{20,255}",
        fixed(API_KEY),
    ),
    literal_rule(
        "slack-webhook",
        "hooks.slack.com",
        r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_+-]{8,255}",
        keep_group(API_KEY),
    ),
    # A class first (not a literal) costs a slower scan, paid only when a trigger is present.
    literal_rule(
        "stripe",
        ("k_live_", "k_test_", "k_prod_"),
        r"[rs]k_(?<![A-Za-z0-9_][rs]k_)(?:live|test|prod)_[A-Za-z0-9]{10,255}",
        mixed(fixed(API_KEY), classes=2),
    ),
    literal_rule(
        "stripe-webhook",
        "whsec_",
        r"whsec_(?<![A-Za-z0-9_]whsec_)[A-Za-z0-9]{24,255}",
        mixed(fixed(API_KEY), classes=2),
    ),
    literal_rule("google", "aiza", r"AIza(?<![A-Za-z0-9_-]AIza)[A-Za-z0-9_-]{35}", fixed(API_KEY)),
    # OpenAI (sk-…, sk-proj-…, sk-svcacct-…) and Anthropic (sk-ant-…). Random keys mix upper,
    # lower and digits; "sk-learn-compatible-estimator" does not.
    literal_rule(
        "openai-anthropic",
        "sk-",
        r"sk-(?<![A-Za-z0-9_-]sk-)[A-Za-z0-9_-]{20,255}",
        mixed(fixed(API_KEY), classes=3),
    ),
    literal_rule(
        "sendgrid",
        "sg.",
        r"SG\.(?<![A-Za-z0-9_-]SG\.)[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}",
        fixed(API_KEY),
    ),
    literal_rule(
        "npm",
        "npm_",
        r"npm_(?<![A-Za-z0-9_]npm_)[A-Za-z0-9]{36,64}",
        mixed(fixed(API_KEY), classes=2),
    ),
    literal_rule("pypi", "pypi-age", r"pypi-AgE[A-Za-z0-9_-]{50,}", fixed(API_KEY)),
    literal_rule(
        "huggingface",
        "hf_",
        r"hf_(?<![A-Za-z0-9_]hf_)[A-Za-z0-9]{30,40}(?![A-Za-z0-9])",
        mixed(fixed(API_KEY), classes=2),
    ),
    literal_rule("slack-app", "xapp-", r"xapp-(?<![A-Za-z0-9_-]xapp-)[A-Za-z0-9-]{10,255}", fixed(API_KEY)),
    literal_rule(
        "aws-key-id",
        ("akia", "asia", "abia", "acca", "a3t"),
        r"A(?<![A-Za-z0-9]A)(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        fixed(AWS_KEY),
    ),
    # Azure AD (Entra ID) client secrets: 3 characters, a digit, "Q~", then 31-34 more.
    literal_rule(
        "azure-client-secret",
        "q~",
        r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
        azure_secret,
    ),
    # HashiCorp Vault service and batch tokens; age secret keys; Doppler, Linear, Postman,
    # Pulumi, Grafana, Sentry, Groq, Replicate, Supabase, New Relic tokens: all prefixed.
    literal_rule(
        "vault",
        ("hvs.", "hvb.", "hvr."),
        r"hv(?<![A-Za-z0-9_.-]hv)[sbr]\.[A-Za-z0-9_-]{24,255}",
        fixed(API_KEY),
    ),
    literal_rule(
        "prefixed-tokens",
        (
            "dp.pt.",
            "dp.st.",
            "lin_api_",
            "pmak-",
            "glc_",
            "glsa_",
            "sntrys_",
            "sntryu_",
            "gsk_",
            "r8_",
            "nrak-",
            "age-secret-key-1",
        ),
        r"(?<![A-Za-z0-9_.-])(?:dp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,64}"
        r"|lin_api_[A-Za-z0-9]{40}|PMAK-[a-f0-9]{24}-[a-f0-9]{34}"
        r"|glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}"
        r"|sntry[su]_[A-Za-z0-9+/=_-]{40,}|gsk_[A-Za-z0-9]{48,52}|r8_[A-Za-z0-9]{37}"
        r"|NRAK-[A-Z0-9]{27}|AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})"
        r"(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    *_SLACK_AND_GITLAB,
)


#: Formats made of a prefix and 32 or more hex digits: run only where the text has such a run
#: (see :func:`has_hex_run`), which ordinary text rarely has (UUIDs are cut by dashes).
HEX_VENDOR_RULES: Final = (
    # Red-team round 2, from the vendors' documentation: RubyGems API keys (rubygems_ + 48 hex),
    # Shippo live and test tokens (+ 40 hex), Airtable personal access tokens (pat + 14, ".", 64
    # hex).
    literal_rule(
        "rubygems",
        "rubygems_",
        r"rubygems_(?<![A-Za-z0-9_]rubygems_)[a-f0-9]{48}(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    literal_rule(
        "shippo",
        "shippo_",
        r"shippo_(?<![A-Za-z0-9_]shippo_)(?:live|test)_[a-f0-9]{40}(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    literal_rule(
        "airtable-pat",
        "pat",
        r"pat(?<![A-Za-z0-9_]pat)[A-Za-z0-9]{14}\.[a-f0-9]{64}(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    # Shopify: shpat_ (admin API), shpca_ (custom app), shppa_ (private app), shpss_ (shared secret).
    literal_rule(
        "shopify",
        ("shpat_", "shpca_", "shppa_", "shpss_"),
        r"shp(?<![A-Za-z0-9_]shp)(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    # Databricks personal access tokens: dapi + 32 hex, with an optional -N suffix.
    literal_rule(
        "databricks",
        "dapi",
        r"dapi(?<![A-Za-z0-9_]dapi)[a-f0-9]{32}(?:-[0-9]{1,2})?(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    # Mailgun: key- (private API key) and pubkey- followed by 32 hex digits.
    literal_rule(
        "mailgun",
        "key-",
        r"key-(?<![A-Za-z0-9_-]key-)[a-f0-9]{32}(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    literal_rule(
        "digitalocean",
        "_v1_",
        r"do(?<![A-Za-z0-9_]do)[opr]_v1_[a-f0-9]{64}",
        fixed(API_KEY),
    ),
    # Mailchimp API keys: 32 hex and the data centre (-us14).
    literal_rule(
        "mailchimp",
        "-us",
        r"(?<![A-Za-z0-9_-])[a-f0-9]{32}-us[0-9]{1,2}(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    # A token as a URL's user, with no password (git's https://<token>@github.com/...): an old
    # 40-hex GitHub OAuth token.
    literal_rule(
        "url-token-user",
        ":/",
        r"(:(?:\\{0,7}/){2})[a-f0-9]{40}(?=@)",
        keep_group(API_KEY),
    ),
    # Pulumi (pul-) and Supabase (sbp_) access tokens: 40 lowercase hex.
    literal_rule(
        "hex-prefixed",
        ("pul-", "sbp_"),
        r"(?:pul-(?<![A-Za-z0-9_-]pul-)|sbp_(?<![A-Za-z0-9_]sbp_))[a-f0-9]{40}(?![A-Za-z0-9])",
        fixed(API_KEY),
    ),
    *_SLACK_AND_GITLAB,
)

_HEX_TABLE: Final = bytes(
    ord("h") if chr(code) in "0123456789abcdefABCDEF" else ord(" ") for code in range(256)
)
_HEX_RUN: Final = b"h" * 32


def has_hex_run(text: str) -> bool:
    """Whether ``text`` has 32 hex digits in a row (found with one translate and one find)."""
    return text.encode("latin-1", "replace").translate(_HEX_TABLE).find(_HEX_RUN) >= 0


#: A Discord bot token: the base64 of the bot's numeric user id, a dot, six characters of
#: timestamp, a dot, the HMAC (detect-secrets' Discord plugin; Discord's developer docs).
_DISCORD = re.compile(r"[MNO][A-Za-z0-9_-]{22,26}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}(?![A-Za-z0-9_-])")
_DISCORD_ID_SIZES: Final = range(23, 28)


def mask_discord_tokens(text: str, runs: list[tuple[int, int]]) -> str:
    """Mask the Discord bot tokens that start at one of ``runs`` (runs holding a capital): each
    part is too short for the generic rule, and the first decodes to the digits of a user id."""
    pieces: list[str] = []
    end = 0
    for start, run_end in runs:
        if run_end - start not in _DISCORD_ID_SIZES or text[start] not in "MNO" or start < end:
            continue
        found = _DISCORD.match(text, start)
        if found is None or (start and (text[start - 1].isalnum() or text[start - 1] in "_-")):
            continue
        head = text[start : text.index(".", start)]
        try:
            user_id = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        except (binascii.Error, ValueError):
            continue
        if user_id.isdigit():
            pieces += (text[end:start], API_KEY)
            end = found.end()
    if not pieces:
        return text
    pieces.append(text[end:])
    return "".join(pieces)
