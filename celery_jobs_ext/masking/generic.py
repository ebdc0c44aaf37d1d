"""The uppercase gate and the generic rule for long random strings."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
import re
from collections import Counter
from typing import Final

from celery_jobs_ext.masking.engine import char_classes
from celery_jobs_ext.masking.keys import API_KEY, AWS_KEY, SECRET, WORD

# ---------------------------------------------------------------------------------------------
# The uppercase gate and the generic rule
# ---------------------------------------------------------------------------------------------

#: Maps text (encoded as latin-1, one byte per character) to 'U' for uppercase letters, 'a' for
#: the other characters of base64/base64url runs, and ' ' for everything else.
_RUN_TABLE: Final = bytes(
    ord("U")
    if chr(code).isascii() and chr(code).isupper()
    else ord("a")
    if chr(code).isascii() and (chr(code).isalnum() or chr(code) in "+/_-")
    else ord(" ")
    for code in range(256)
)
#: A run of 16+ characters holding an uppercase letter has its first uppercase letter either
#: followed by ten run characters or preceded by six lowercase ones or digits (6 + 1 + 9 = 16):
#: these two literal-first searches find every such run, fast. Ten, not eight, after it so that
#: short codes (``SKU-00042``, ``ORDER-17``) are not looked at at all.
_UPPER_WINDOW = re.compile(rb"U[aU]{10}")
_UPPER_AFTER_RUN: Final = b"aaaaaaU"
_MIN_CANDIDATE: Final = 16
#: How far before a run a gated rule's trigger may start: ``hooks.slack.com/``, ``SG.`` and a
#: first part, a JWT's header and payload when only its signature makes a run.
_TRIGGER_MARGIN: Final = 64
_MIN_GENERIC: Final = 32


def _upper_runs(text: str) -> list[tuple[int, int]]:
    """Spans of the runs of 16+ base64/base64url characters that hold an uppercase letter.

    Every vendor key, JWT and random secret the rules know has one (lowercase-only formats have
    their own literal-first rules); identifiers, paths, task ids and SHAs mostly do not, so text
    without such a run skips the vendor and generic rules after two fast scans.
    """
    mapped = text.encode("latin-1", "replace").translate(_RUN_TABLE)
    runs: dict[int, int] = {}
    position = 0
    while (found := _UPPER_WINDOW.search(mapped, position)) is not None:
        position = _add_run(mapped, found.start(), runs)
    position = 0
    while (index := mapped.find(_UPPER_AFTER_RUN, position)) >= 0:
        position = _add_run(mapped, index, runs)
    return sorted(runs.items())


def _add_run(mapped: bytes, index: int, runs: dict[int, int]) -> int:
    """Record the run around ``index`` if it is long enough; return where the run ends."""
    start = mapped.rfind(b" ", 0, index) + 1
    end = mapped.find(b" ", index)
    end = len(mapped) if end < 0 else end
    if end - start >= _MIN_CANDIDATE:
        runs[start] = end
    return end


_HEX_ID = re.compile(r"(?:0[xX]|g)?[0-9a-fA-F_-]+")
_TWILIO_SIZE: Final = 34
_AWS_SECRET_SIZE: Final = 40
_SAMPLE: Final = 256
_TWILIO = re.compile(r"(?:SK|AC)[0-9a-f]{32}")
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}")
_SEGMENT_SEPARATORS = re.compile(r"[/_+-]")

#: Tuned on 10,000 random keys per alphabet: of 32-character keys about 1.5% of base64 and 0.6%
#: of base62 ones look too word-like to mask (at 64 characters, none); of the ~15,000 runs of 32+
#: characters in a Python site-packages (identifiers, paths, hashes), only random ids and keyboard
#: mash were masked. Lower thresholds cost paths like ``docutils/writers/html4css1``.
_MIN_ENTROPY: Final = 3.5
_FAST_PIECE_LENGTH: Final = 2.8
_FAST_DISTINCT: Final = 16
_MIN_RANDOM_CHARS: Final = 14
_MIN_WORD_LENGTH: Final = 3
_MAX_DIGIT_RUNS: Final = 3
_MIN_VOWELLESS: Final = 5
_VOWELS: Final = frozenset("aeiouy")
_VOWELLESS_WORDS: Final = frozenset({"https", "xhtml"})


def _entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character."""
    size = len(text)
    return -sum(count / size * math.log2(count / size) for count in Counter(text).values())


def _is_wordlike(segment: str) -> bool:
    """Whether ``segment`` reads as words (``Celery``, ``processPayment``, ``html4css1``).

    Random strings split into one- and two-letter pieces (``wJalrX`` → w, Jalr, X), into
    unpronounceable ones (``Slkmtk``) or interleave letters and digits again and again;
    identifiers are words of three letters or more, with the odd ``A``, acronyms, a one-letter
    prefix (``kSecTrust``, ``iPhone``) and a version number.
    """
    pieces = WORD.findall(segment)
    words = [piece for piece in pieces if not piece.isdigit()]
    if len(pieces) - len(words) >= _MAX_DIGIT_RUNS and words:
        return False
    if any(
        len(word) >= _MIN_VOWELLESS
        and not word.isupper()
        and _VOWELS.isdisjoint(word.lower())
        and word.lower() not in _VOWELLESS_WORDS
        for word in words
    ):
        return False
    if len(words) <= 1:
        return True
    if any(len(word) == 1 and word.islower() for word in words[1:]):
        return False
    return sum(map(len, words)) / len(words) >= _MIN_WORD_LENGTH


def _is_random(body: str) -> bool:
    """Whether a long run looks like a generated secret rather than an identifier or an id."""
    if _HEX_ID.fullmatch(body) or char_classes(body) < 2:
        return False
    # Fast path, two C calls: random base64 splits into pieces of under two characters on
    # average (``wJalrXUtnFEMI`` → w, Jalr, X, Utn, FEMI…) with many distinct characters;
    # identifiers and paths are words of three letters or more.
    pieces = len(WORD.findall(body))
    if pieces and len(body) < _FAST_PIECE_LENGTH * pieces and len(set(body)) >= _FAST_DISTINCT:
        return True
    random_chars = sum(
        len(segment)
        for segment in _SEGMENT_SEPARATORS.split(body)
        if not _HEX_ID.fullmatch(segment) and not _is_wordlike(segment)
    )
    return random_chars >= _MIN_RANDOM_CHARS and _entropy(body) >= _MIN_ENTROPY


def _generic_mask(text: str, start: int, body: str) -> str | None:
    """The mask for the run ``body`` found at ``start``, or None to keep it."""
    size = len(body)
    if size == _TWILIO_SIZE and _TWILIO.fullmatch(body):
        return API_KEY
    if (
        size == _AWS_SECRET_SIZE
        and _AWS_SECRET.fullmatch(body)
        and "aws" in text[max(0, start - 64) : start].lower()
        and not _HEX_ID.fullmatch(body)
    ):
        return AWS_KEY
    if size > _SAMPLE:
        # A run this long is a blob (a key file, an image, an attachment) or hostile input:
        # judged on its start, so a megabyte costs what 256 characters do.
        body = body[:_SAMPLE]
    return SECRET if _is_random(body) else None


#: Public material that looks random: an SSH public key after its type, a data: URI of an image,
#: font or media, and the body of a PEM public key or certificate.
_SSH_KEY_TYPE = re.compile(
    r"(?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d{3}|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)"
    r"[ \t]+$"
)
_MEDIA_DATA_URI = re.compile(r"data:(?:image|font|audio|video)/[\w.+-]{1,40};base64,$")
_PUBLIC_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ ){0,4}(?:PUBLIC KEY(?: BLOCK)?|CERTIFICATE(?: REQUEST)?|X509 CRL|PKCS7))-----"
)
_PUBLIC_MARGIN: Final = 64
_PUBLIC_NAME = re.compile(r"(?i:public|publishable|pub)[_-]?(?i:key|token)s?\W{1,4}$")
_FINGERPRINT_PREFIXES: Final = frozenset({"SHA256:", "SHA1:", "SHA512:"})
_MIN_PROSE_SPACES: Final = 2
_ASCII_LEADS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef")
_LEADS_CHECKED: Final = 32


_PEM_END = re.compile(r"-----END")
_INTEGRITY_PREFIXES: Final = ("sha256-", "sha384-", "sha512-")


def _public_blocks(text: str) -> tuple[list[int], list[int]]:
    """Starts and ends of the PEM public keys and certificates, whose bodies are public.

    One pass over the BEGIN and END markers: a BEGIN inside an open block changes nothing, an
    END closes it. Blocks are disjoint and sorted, so a run is looked up by bisection: hostile
    text with thousands of BEGIN lines and no END stays linear.
    """
    starts: list[int] = []
    ends: list[int] = []
    if "-----BEGIN " not in text:
        return starts, ends
    markers = sorted(
        [(found.end(), True) for found in _PUBLIC_PEM.finditer(text)]
        + [(found.start(), False) for found in _PEM_END.finditer(text)]
    )
    open_at = -1
    for position, is_begin in markers:
        if is_begin and open_at < 0:
            open_at = position
        elif not is_begin and open_at >= 0:
            starts.append(open_at)
            ends.append(position)
            open_at = -1
    if open_at >= 0:
        starts.append(open_at)
        ends.append(len(text))
    return starts, ends


def _is_public(text: str, start: int, body: str, blocks: tuple[list[int], list[int]]) -> bool:
    """Whether the run ``body`` at ``start`` is public material or encoded prose."""
    before = max(0, start - _PUBLIC_MARGIN)
    if body[:4] == "AAAA" and _SSH_KEY_TYPE.search(text, before, start):
        return True
    previous = text[start - 1 : start]
    if previous == "," and _MEDIA_DATA_URI.search(text, before, start):
        return True
    if previous == ":" and text[max(0, start - 7) : start] in _FINGERPRINT_PREFIXES:  # sshd logs
        return True
    if body.startswith(_INTEGRITY_PREFIXES):  # Subresource Integrity: sha512-<base64 digest>
        return True
    if body[0] == "M" and _is_public_der(body):  # a bare SubjectPublicKeyInfo or certificate
        return True
    if body.startswith("eyJ") and text[start + len(body) : start + len(body) + 1] != "." and _is_json(body):
        return True  # a JWT's header or payload alone: base64 of JSON, no signature
    if "Public-Lines:" in text[before:start]:  # a PuTTY key file's public half
        return True
    if _PUBLIC_NAME.search(text, max(0, start - 40), start):  # public_key = "…", publicToken: …
        return True
    starts, ends = blocks
    if starts:
        index = bisect.bisect_right(starts, start) - 1
        if index >= 0 and start < ends[index]:
            return True
    return body[0] in _ASCII_LEADS and _is_encoded_prose(body[:_SAMPLE])


def _is_json(body: str) -> bool:
    try:
        decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return decoded.startswith(b"{") and isinstance(json.loads(decoded), dict)
    except (binascii.Error, ValueError):
        return False


def _der_header(data: bytes, index: int) -> tuple[int, int] | None:
    """The tag at ``index`` and where its content starts, or None past the end."""
    if index + 1 >= len(data):
        return None
    size = data[index + 1]
    return data[index], index + 2 + (size & 0x7F if size & 0x80 else 0)


def _is_public_der(body: str) -> bool:
    """Whether ``body`` is the base64 of DER public material (RFC 5280): a SubjectPublicKeyInfo
    (``SEQUENCE { SEQUENCE { OID … }, BIT STRING }``), a certificate (``SEQUENCE { SEQUENCE {
    [0] version …``) or a PKCS#1 RSA public key (``SEQUENCE { INTEGER modulus, … }``, where a
    private key starts with version ``INTEGER 0``). Private keys (PKCS#1, PKCS#8, SEC1) all start
    ``SEQUENCE { INTEGER version``."""
    try:
        data = base64.b64decode(body[:32], validate=True)
    except (binascii.Error, ValueError):
        return False
    outer = _der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return False
    inner = _der_header(data, outer[1])
    if inner is None:
        return False
    if inner[0] == 0x02:
        return data[outer[1] + 1] >= 0x81
    if inner[0] != 0x30 or inner[1] >= len(data):
        return False
    return data[inner[1]] in (0x06, 0xA0)  # an algorithm's OID, or a certificate's version


def _is_encoded_prose(body: str) -> bool:
    """Whether ``body`` is the base64 of plain prose (words and spaces, no ``key: value``)."""
    if "-" in body or "_" in body:
        return False
    # Each group of four characters encodes three bytes; below 0x80 the first one is A-Z or a-f.
    if not _ASCII_LEADS.issuperset(body[0:_LEADS_CHECKED:4]):
        return False
    try:
        decoded = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not decoded.isascii():
        return False
    words = decoded.decode("ascii")
    return (
        words.isprintable()
        and words.count(" ") >= max(_MIN_PROSE_SPACES, len(words) // 12)
        and not any(char in words for char in ":=@/\\{}")
    )


def _mask_long_runs(text: str, runs: list[tuple[int, int]]) -> str:
    pieces: list[str] = []
    end = 0
    blocks: tuple[list[int], list[int]] | None = None
    for run_start, run_end in runs:
        if run_end - run_start < _MIN_GENERIC:
            continue
        body = text[run_start:run_end]
        mask = _generic_mask(text, run_start, body)
        if mask is SECRET:
            if blocks is None:
                blocks = _public_blocks(text)
            if _is_public(text, run_start, body, blocks):
                continue
        if mask is not None:
            while run_end < len(text) and text[run_end] == "=":  # base64 padding goes too
                run_end += 1
            pieces += (text[end:run_start], mask)
            end = run_end
    if not pieces:
        return text
    pieces.append(text[end:])
    return "".join(pieces)
