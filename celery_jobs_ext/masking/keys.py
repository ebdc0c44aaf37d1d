"""Secret-named keys: which keys hide their value, the mask it gets, and values that hide nothing.

A key is split into lowercase words at separators and camelCase humps (``X-Api-Key`` → x, api,
key), accents dropped (``contraseña`` → contrasena); trailing numbers and words that describe a
form of the value (value, hash, b64, header, …) are dropped. Then:

- a *name* (``password``, ``token``, ``secret``, ``apikey``, …) matches when the joined words
  *end* with it, optionally followed by ``id``, ``key`` or a plural ``s``: ``db_password``,
  ``sessionid``, ``csrftoken``, ``SECRET_KEY``;
- a *short name* (``pw``, ``pwd``, ``pass``, ``pin``, ``otp``, ``sig``, ``jwt``) matches only as
  the last whole word, so ``DB_PASS`` and ``MYSQL_PWD`` are secret and ``bypass`` and ``OLDPWD``
  are not;
- a *bare name* (``key``, ``appid``) matches only as the whole key: ``key=`` hides its value,
  ``routing_key``, ``cache_key`` and ``sort_key`` do not.

Values that hide nothing are kept whatever the key: empty values, placeholders and masks
(``<token>``, ``****``, ``${DB_PASSWORD}``, ``[REDACTED]``), and status words (``auth: failed``,
``cookie: enabled``). Under a key that is not a password, so are small numbers (``session: 4``),
versions and package coordinates (``"jsonwebtoken": "^9.0.2"``), file paths
(``--key /etc/ssl/k.pem``) and resource names (``secret: prod/db-credentials``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from typing import Final

from celery_jobs_ext.masking.words import STATUS_WORDS

#: Key names whose values are masked whole (see the module docstring for how keys are matched).
DEFAULT_MASK_KEYS: Final[frozenset[str]] = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pw",
        "pwd",
        "pass",
        "pin",
        "otp",
        "secret",
        "token",
        "jwt",
        "api_key",
        "apikey",
        "appid",
        "authorization",
        "auth",
        "credentials",
        "cookie",
        "session",
        "key",
        "sig",
        "signature",
        "signing_key",
        "master_key",
        "encryption_key",
        "account_key",
        "hmac_key",
        "private_key",
        "client_secret",
        "access_key",
        # The keywords of gitleaks' generic-api-key rule (access, auth, api, credential, creds,
        # key, passwd/password, secret, token) and detect-secrets' keyword plugin (api_key,
        # auth_key, service_key, account_key, db_key, database_key, priv_key, private_key,
        # client_key, db_pass, database_pass, key_pass, password, passwd, pwd, secret), with the
        # names vendors give their keys (app, admin, license and subscription keys) and server
        # configuration directives (redis.conf requirepass and masterauth).
        "credential",
        "creds",
        "passcode",
        "auth_key",
        "service_key",
        "db_key",
        "database_key",
        "priv_key",
        "privkey",
        "client_key",
        "app_key",
        "admin_key",
        "license_key",
        "subscription_key",
        "requirepass",
        "masterauth",
        # Red-team round 2: a Wi-Fi or IPsec pre-shared key, a bare bearer or refresh token, an
        # Azure shared access signature, bitcoind's rpcpassword spelt short.
        "psk",
        "bearer",
        "refresh",
        "sas",
        "rpcpass",
        # Password in other languages: German, Spanish, French (add your own to jobs_mask_keys).
        "passwort",
        "contraseña",
        "mot_de_passe",
    }
)

JWT: Final = "***JWT***"
TOKEN: Final = "***TOKEN***"  # noqa: S105 - a mask, not a token
PASSWORD: Final = "***PASSWORD***"  # noqa: S105 - a mask, not a password
PRIVATE_KEY: Final = "***PRIVATE_KEY***"
AWS_KEY: Final = "***AWS_KEY***"
API_KEY: Final = "***API_KEY***"
SECRET: Final = "***SECRET***"  # noqa: S105 - a mask, not a secret

#: Words of an identifier: ALLCAPS runs (not eating the capital of a following camelCase word),
#: Capitalised or lowercase words, and numbers.
WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

#: Trailing words that say which form a secret is in, not what it is: ``password_hash``,
#: ``token_b64`` (b, 64) and ``auth_header`` still hold the secret.
_FORM_WORDS: Final = frozenset(
    {
        "b",
        "base",
        "confirm",
        "confirmation",
        "encoded",
        "hash",
        "hashed",
        "header",
        "pem",
        "plain",
        "plaintext",
        "raw",
        "str",
        "value",
    }
)

#: Short names: secret only as the last whole word of a key.
_LAST_WORD_NAMES: Final = frozenset({"pw", "pwd", "pass", "pin", "otp", "sig", "jwt", "psk", "bearer", "sas"})
#: Bare names: secret only as the whole key; ``key`` ends far too many harmless names.
_WHOLE_KEY_NAMES: Final = frozenset({"key", "appid", "refresh"})
#: Names whose values are passwords: every value but an empty one, a placeholder or a status word
#: is masked (a password may well be ``4821`` or ``correct-horse-battery-staple``).
_PASSWORD_PARTS: Final = (
    "pass",
    "wort",
    "contrasena",
    "senha",
    "losenord",
    "salasana",
    "wachtwoord",
    "parool",
)
_PASSWORD_NAMES: Final = frozenset({"pw", "pwd", "pin", "otp", "masterauth", "psk"})

#: Names whose ``…id`` is the secret itself (a session id), not a reference to one.
_ID_NAMES: Final = frozenset({"session"})
_PUBLIC_WORDS: Final = frozenset({"public", "publishable"})
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
#: Longest key considered; longer keys are judged on their end, which is where the name is.
MAX_KEY_CHARS: Final = 128


def _ascii(key: str) -> str:
    if key.isascii():
        return key
    return unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")


def key_words(key: str) -> list[str]:
    """Lowercase words of ``key``, with trailing numbers and form words dropped."""
    words = [word.lower() for word in WORD.findall(_ascii(key[-MAX_KEY_CHARS:]))]
    while words and (words[-1].isdigit() or words[-1] in _FORM_WORDS):
        words.pop()
    return words


def _label_for_name(name: str) -> str:
    """The mask for values under a key whose secret name (compacted) is ``name``."""
    if name == "jwt":
        return JWT
    if name in _PASSWORD_NAMES or any(part in name for part in _PASSWORD_PARTS):
        return PASSWORD
    if "privatekey" in name:
        return PRIVATE_KEY
    if name.endswith(("apikey", "accesskey", "appid")):
        return API_KEY
    if any(part in name for part in ("token", "auth", "cookie", "session", "bearer", "refresh", "sas")):
        return TOKEN
    return SECRET


class KeyMatcher:
    """Decides whether a key is secret-named, and which mask its value gets."""

    def __init__(self, keys: frozenset[str]) -> None:
        names = {"".join(key_words(key)) for key in keys}
        names.discard("")
        self.last_word_names = frozenset(names & _LAST_WORD_NAMES)
        self.whole_key_names = frozenset(names & _WHOLE_KEY_NAMES)
        self.names = frozenset(names - _LAST_WORD_NAMES - _WHOLE_KEY_NAMES)
        #: The last word of each name: it appears, in some case, in any spelling of the key
        #: (``api_key``, ``ApiKey``, ``API-KEY`` all contain ``key``), so it finds keys in text.
        self.last_words = frozenset(
            words[-1] for words in (key_words(_ascii(key)) for key in keys) if words
        ) | frozenset(name for name in names if len(key_words(name)) == 1)
        # A key written with accents is found in text by its own spelling too ("contraseña").
        accented = [re.split(r"[\W_]+", key.lower())[-1] for key in keys if not key.isascii() and key.strip()]
        escaped = {
            json.dumps(spelling)[1:-1].lower() for word in accented for spelling in (word, word.upper())
        }
        self.last_words |= frozenset(accented) | frozenset(escaped)
        alternation = "|".join(re.escape(name) for name in sorted(self.names, key=len, reverse=True))
        self._tail = re.compile(f"(?P<name>{alternation})(?P<suffix>id|key|s)?$") if self.names else None
        #: Keys repeat from call to call (the same kwargs, the same log fields): judge each once.
        #: Callers pass at most the last :data:`MAX_KEY_CHARS` characters (all that decides), and
        #: trailing digits are stripped first, so ``password1`` … ``password99999`` share an entry.
        self._label_for = lru_cache(maxsize=4096)(self._judge)

    def label_for(self, key: str) -> str | None:
        """The mask for values under ``key``, or None when ``key`` is not secret-named."""
        return self._label_for(key[-MAX_KEY_CHARS:].rstrip("0123456789"))

    def _judge(self, key: str) -> str | None:
        if "\\u" in key:  # a JSON-escaped key: "contrase\u00f1a"
            key = _JSON_ESCAPE.sub(lambda found: chr(int(found.group(1), 16)), key)
        words = key_words(key)
        if not words:
            return None
        compact = "".join(words)
        if len(words) == 1 and compact in self.whole_key_names:
            return _label_for_name(compact)
        if words[-1] in self.last_word_names:
            return _label_for_name(words[-1])
        if self._tail is None:
            return None
        match = self._tail.search(compact)
        if match is None:
            return None
        name = match.group("name")
        if name == "token" and match.group("suffix") == "s":
            return None  # max_tokens, num_tokens: counts, not credentials
        if match.group("suffix") == "id" and name not in _ID_NAMES:
            return None  # credentialsId names a stored credential; a session id is one
        if _PUBLIC_WORDS.intersection(words[:-1]):
            return None  # public_key, publicToken, publishable_key: public by name
        if "aws" in words or compact.endswith("secretaccesskey"):
            return AWS_KEY
        return _label_for_name(name)


# ---------------------------------------------------------------------------------------------
# Values that hide nothing
# ---------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"""
      [*xX•#._~-]{3,}                       # ****, xxxx, ..., ###
    | \*{3}[A-Z_]{1,20}\*{3}                # already masked
    | <[^<>\n]{1,64}>                       # <token>, <your password>
    | [\[(](?i:redacted|filtered|hidden|masked|removed|secure|sensitive|omitted|secret|not[ _]set|none)[\])]
    | \{\{[^{}\n]{1,64}\}\}                 # {{ secret }}
    | \$\{[^{}\n]{1,64}\}                   # ${DB_PASSWORD}
    | \$[A-Z_][A-Z0-9_]{0,63} | \$[0-9@*]     # $PASSWORD, a shell script's $1
    | \$\{\{[^\n]{1,128}\}\}                # ${{ secrets.TOKEN }} (GitHub Actions)
    | \$\([^\n]{0,256} | `[^`\n]{1,256}`?   # a command substitution: $(gcloud auth print-…)
    | \[[A-Z][A-Z _-]{1,31}\]               # [PASSWORD], [API KEY]
    | %\([a-z_]{1,32}\)s | %s | \{[\w.\[\]!:]{0,40}\} | \#
    | [@:][A-Za-z_]\w{0,63} | \?                 # bind parameters: @key, :password, ?
    | (?i:redacted|filtered|hidden|masked|omitted|placeholder)
    | (?i:your[-_ ]?[a-z_ -]{1,40})         # your_password_here, YOUR-API-KEY
    | [A-Za-z_-]{0,40}[-_](?i:here)
    """,
    re.VERBOSE,
)
#: Values that are versions or end in one: ``^9.0.2``, ``java-jwt:4.4.0``, ``v1.2``.
_VERSION = re.compile(r"(?:[\w.-]*[:@-])?[~^<>=!]{0,2}v?\d{1,6}(?:\.\d{1,6}){1,3}(?:[-+.][\w.]{1,16})?")
#: A call or subscript of a number only: ``Welcome(2024)``, not code under a password key.
_LITERAL_ARGUMENT = re.compile(r"[(\[]\d{1,8}[)\]]$")
#: File paths: absolute, relative, home, Windows, or a bare file name with a key-file extension.
_PATH = re.compile(
    r"(?:/|\./|\.\./|~/|[A-Za-z]:\\)[^\s]{0,512}"
    r"|[\w.-]{1,128}\.(?:pem|key|crt|cer|der|p12|pfx|jks|json|txt|env|ya?ml|ini|cfg|conf|toml|gpg|asc)"
)
#: Resource names: lowercase words and numbers in a hierarchy (``prod/db-credentials``,
#: ``arn:aws:secretsmanager:…``, ``projects/p/secrets/s``, ``secret/data/app``).
_RESOURCE = re.compile(r"arn:[\w:/+=,.@-]{1,512}|[a-z][a-z0-9_.-]{0,63}(?:[/:][a-z0-9_.-]{1,64}){1,16}")
_ABSOLUTE_PATH = re.compile(r"(?:/[\w.-]{1,255}){2,64}/?")
_LETTER_DIGIT = re.compile(r"[a-z][0-9]|[0-9][a-z]")
_MAX_SMALL_NUMBER: Final = 6
#: Resource names in kebab case (words then a version, or an environment then words) and
#: PascalCase words.
_KEBAB_NAME = re.compile(
    r"(?:[a-z]{2,20}-){2,8}v[0-9]{1,3}|(?:prod|production|dev|staging|stage|test|qa|uat)(?:-[a-z0-9]{2,20}){2,8}"
)
_PASCAL_WORDS = re.compile(r"(?:[A-Z][a-z]{1,15}){1,4}")


#: Code, not a value: a call or subscript of a dotted name, a snake_case function or a class
#: (``inspect.signature(f)``, ``get_token()``, ``requests.Session()``, ``os.environ["PW"]``).
_CODE = re.compile(
    r"\(?[a-z]\w*_\w*[(\[].*|\(?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+[(\[].*"  # snake_case or dotted call
    r"|\(?[A-Za-z_][A-Za-z_]{2,}\w*(?:\(.*[)=,'\"].*|\[.*\].*)"  # a call with its arguments
    r"|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_]\w*)+"  # an attribute: config.password, Ed25519.Key
    r"|\([A-Za-z_][\w.]*(?:,.*)?"  # a tuple: (self.username, self.password)
    r"|lambda\b.*"  # key=lambda item: item.priority
    r"|[A-Z]\w*(?:\[[\w., \[\]|]*\])?[ \t]=[ \t].*"  # an annotation: AsyncSession = Depends(…)
    r"|[\[{(][\]})]?|`.*|#[ \t].*",  # a literal opened or empty, inline code, a comment
    re.DOTALL,
)


_MAX_CACHED_VALUE: Final = 64
_MIN_PLACEHOLDER: Final = 3
#: Shorter values under keys that are not passwords are not keys (``key=a``, ``sig=S``).
_MIN_SECRET: Final = 4
#: A word of lowercase letters under a key that is not a password is a variable or a name
#: (``aws_access_key_id = username``, ``key=id``), never a generated key.
_LOWERCASE_WORD = re.compile(r"[a-z]{1,32}_[a-z_]{1,32}|user|username|name|login|email|host|hostname")
_USAGE_CHARACTERS: Final = frozenset("[]<>=|")
_PLACEHOLDER_WORDS: Final = frozenset(
    {"redacted", "filtered", "hidden", "masked", "omitted", "placeholder", "value", "values"}
)
#: Documentation's stand-ins, in capitals: ``AccountKey=SECRET``, ``sig=VALUE``.
_CAPITAL_PLACEHOLDERS: Final = frozenset(
    {"SECRET", "PASSWORD", "TOKEN", "VALUE", "KEY", "XXX", "REDACTED", "CHANGEME"}
)


def is_placeholder(value: str) -> bool:
    """Whether ``value`` stands for a secret rather than being one (or is already masked)."""
    return _PLACEHOLDER.fullmatch(value) is not None


def hides_nothing(value: str, label: str, structured: bool = False) -> bool:
    """Whether the value ``value`` of a key with mask ``label`` should be left as it is.

    ``structured``: the value of a dict key or field, where it is surely a value: only empty
    values, placeholders, masks, status words and small counts are kept, not the shapes that
    in text are code, prose, paths or names.
    """
    if structured:
        stripped = value.strip()
        return (
            not stripped
            or stripped.startswith("***")
            or stripped.lower() in STATUS_WORDS
            or is_placeholder(stripped)
            or is_filler(stripped)
            or (label == TOKEN and stripped.isdigit() and len(stripped) <= _MAX_SMALL_NUMBER)
        )
    if len(value) > _MAX_CACHED_VALUE:
        return _hides_nothing(value, label)
    return _hides_nothing_cached(value, label)


_CAPITAL_NAME = re.compile(r"[A-Z]+(?:_[A-Z]+)*")
_NAME_WORDS: Final = frozenset({"TOKEN", "PASSWORD", "SECRET", "KEY", "PASS", "PWD", "PASSPHRASE"})
_FILLER_SEPARATORS = re.compile(r"[-_.~]")
_MIN_FILLER: Final = 4
#: What documentation fills an example with (not a random letter repeated: AKIAZZZZ… is a key).
_FILLER_CHARACTERS: Final = frozenset("xX0*#.aA1")
_REPEATED_TAIL = re.compile(r"([xX0*#.aA1])\1{11,}$")


def is_filler(value: str) -> bool:
    """Whether ``value`` is a format's example rather than a key: its parts after the first
    (a vendor prefix) are one filler character repeated (``glpat-XXXX-XXXX``, ``hf_xxxxxxxx``,
    ``glc_111111``), or it asks for one (``…_PUT_YOUR_TOKEN_HERE``), or it names what it stands
    for in capitals (``ACCESS_TOKEN``)."""
    if _CAPITAL_NAME.fullmatch(value) and _NAME_WORDS.intersection(value.split("_")):
        return True
    lowered = value.lower()
    if "your" in lowered and "here" in lowered:
        return True
    parts = [part for part in _FILLER_SEPARATORS.split(value)[1:] if len(part) >= _MIN_FILLER]
    if parts and all(len(set(part)) == 1 and part[0] in _FILLER_CHARACTERS for part in parts):
        return True
    tail = _REPEATED_TAIL.search(value)  # GR1348941XXXXXXXXXXXXXXXX
    return tail is not None and "/" not in value and 2 * len(tail.group()) >= len(value)


def _hides_nothing(value: str, label: str) -> bool:
    if value in _CAPITAL_PLACEHOLDERS or is_filler(value):
        return True
    if value.isalnum():  # the common case, decided without a regex
        lowered = value.lower()
        if lowered in STATUS_WORDS or lowered in _PLACEHOLDER_WORDS or lowered.startswith("your"):
            return True
        if len(value) >= _MIN_PLACEHOLDER and not lowered.strip("x"):
            return True  # xxxx
        if label != PASSWORD and (len(value) < _MIN_SECRET or (value.startswith("SIG") and value.isupper())):
            return True  # "sig=S", "sig=SIGTERM": too short to be a key, or a signal
        if label == PASSWORD or not value.isdigit():
            return label != PASSWORD and _hides_nothing_other(value, label)
        return label == TOKEN and len(value) <= _MAX_SMALL_NUMBER
    stripped = value.strip().rstrip(".,;")
    if stripped.startswith("***"):
        return True  # masked already, by a rule for its shape (a PEM block, a URL password)
    if not stripped or stripped.lower() in STATUS_WORDS or is_placeholder(stripped):
        return True
    if (
        _CODE.fullmatch(stripped)
        and not (label == PASSWORD and _LITERAL_ARGUMENT.search(stripped))
        and not ("." in stripped and _has_random_part(stripped))
    ):
        return True  # but Welcome(2024), Summer.Fun[99] (passwords), dp.pt.x7k… (a token) are values
    if label != PASSWORD and len(stripped) < _MIN_SECRET:
        return True
    if label == PASSWORD:
        return _ABSOLUTE_PATH.fullmatch(stripped) is not None  # PWD=/home/app is a directory
    if stripped.isdigit():  # "session: 4", "tokens: 12": counts, not credentials
        return label == TOKEN and len(stripped) <= _MAX_SMALL_NUMBER
    if (
        any(char.isspace() for char in stripped)
        and (_USAGE_CHARACTERS.intersection(stripped) if label == SECRET else "=" not in stripped)
        and not any(_GENERATED_WORD.fullmatch(word) for word in stripped.split())
    ):
        return True  # tokens and keys hold no spaces; "[N=1]" and "<task_name> <secs>" are usage strings
    # (but "WqrAz2Kr HhSyrntT1L" is a key cut in two: a word of 8+ with lower, upper and digit)
    return _hides_nothing_other(stripped, label)


def _hides_nothing_other(stripped: str, label: str) -> bool:
    """Versions, paths, URLs and resource names: under keys that do not hold passwords."""
    if _LOWERCASE_WORD.fullmatch(stripped):
        return True
    if label == SECRET and (_KEBAB_NAME.fullmatch(stripped) or _PASCAL_WORDS.fullmatch(stripped)):
        return True  # secret=prod-db-credentials-v2 names a secret; key=ArrowUp names a key
    if _VERSION.fullmatch(stripped) or _PATH.fullmatch(stripped):
        return True
    if stripped.startswith(("http://", "https://")) and "@" not in stripped and "?" not in stripped:
        # A capability URL (a webhook) is the credential itself: its path holds a random part.
        return not _has_random_part(stripped[stripped.find("/", 8) + 1 :] if "/" in stripped[8:] else "")
    return (
        _RESOURCE.fullmatch(stripped) is not None
        and len(_LETTER_DIGIT.findall(stripped)) <= 2
        and not _has_random_part(stripped)
    )


_PARTS = re.compile(r"[/:_.\-?=&#+]")
_CONSONANT_RUN = re.compile(r"(?!ngths)[bcdfghjklmnpqrstvwxz]{5}")  # but "strengths"
_MIN_RANDOM_PART: Final = 8
_MIN_TRANSITIONS: Final = 3
_MIN_HEX_PART: Final = 16


def _has_random_part(value: str) -> bool:
    """Whether a name or a URL path holds a generated part: a run of letters no language
    writes (five consonants in a row), letters and digits interleaved again and again, a long
    hex string, or a mask. Resource names are made of words, numbers and versions."""
    if "***" in value:
        return True
    for part in _PARTS.split(value):
        if len(part) < _MIN_RANDOM_PART:
            continue
        lowered = part.lower()
        if _CONSONANT_RUN.search(lowered) or len(_LETTER_DIGIT.findall(lowered)) >= _MIN_TRANSITIONS:
            return True
        if len(part) >= _MIN_HEX_PART and _HEX.fullmatch(part) is not None:
            return True
    return False


_HEX = re.compile(r"[0-9a-fA-F]+")
_GENERATED_WORD = re.compile(r"(?=\S*[a-z])(?=\S*[A-Z])(?=\S*[0-9])\S{8,}")


#: Values repeat (the same status words, the same placeholders): judge short ones once.
_hides_nothing_cached = lru_cache(maxsize=4096)(_hides_nothing)
