"""openssl listed by bare name: subcommands, and their options, by an allow list.

openssl has dozens of subcommands and hundreds of options, and many of them write a file
named by their value, not only ``-out``: ``cms -verify -certsout``, ``smime -verify -signer``
(the signers' certificates are written there), ``x509 -CAserial`` (the serial file is
updated), ``-keylogfile``, ``-sess_out``, ``-writerand``. So a bare-listed openssl runs only
the read-only subcommands of :data:`OPENSSL_OPTIONS`, each with the options listed for it
(output goes to standard output); anything else needs an argument pattern that spells it
out. OpenSSL 3 reads ``--opt`` as ``-opt`` and ``-opt=value`` as ``-opt value``; both are
normalised before the lookup. The one-dash option table (``-out``, ``-engine`` ...) still
applies on top.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.syntax import refuse


def _words(text: str) -> frozenset[str]:
    return frozenset("-" + word for word in text.split())


_X509_READ = _words(
    "in inform noout text subject issuer dates startdate enddate serial fingerprint hash "
    "subject_hash issuer_hash subject_hash_old issuer_hash_old ocspid ocsp_uri email purpose "
    "modulus pubkey ext nameopt certopt checkend checkhost checkemail checkip outform passin "
    "nocert alias dateopt help"
)
_VERIFY = _words(
    "CAfile CApath CAstore untrusted trusted crl_check crl_check_all CRLfile purpose "
    "verify_hostname verify_email verify_ip partial_chain no-CAfile no-CApath no-CAstore "
    "show_chain verbose x509_strict attime check_ss_sig policy_check ignore_critical "
    "verify_depth auth_level suiteB_128 suiteB_192 suiteB_128_only no_check_time "
    "explicit_policy inhibit_any inhibit_map policy use_deltas extended_crl crl_download "
    "allow_proxy_certs trusted_first no_alt_chains issuer_checks help"
)
_KEY_READ = _words("in inform noout text text_pub pubin pubout passin check pubcheck modulus outform help")
OPENSSL_OPTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "version": _words("a v b o f p d e m r c help"),
        "help": frozenset(),
        "x509": _X509_READ,
        "verify": _VERIFY,
        "crl": _words(
            "in inform noout text hash hash_old issuer lastupdate nextupdate fingerprint "
            "crlnumber CAfile CApath CAstore verify nameopt outform help"
        ),
        "req": _words("in inform noout text verify subject pubkey modulus nameopt reqopt outform help"),
        "asn1parse": _words("in inform i dump dlimit offset length strparse noout help"),
        "ciphers": _words("v V s tls1 tls1_1 tls1_2 tls1_3 stdname psk srp convert ciphersuites help"),
        "list": _words(
            "1 commands standard-commands digest-commands digest-algorithms cipher-commands "
            "cipher-algorithms public-key-algorithms public-key-methods kdf-algorithms "
            "mac-algorithms random-generators encoders decoders key-managers key-exchange-algorithms "
            "kem-algorithms signature-algorithms asymcipher-algorithms store-loaders providers "
            "options objects disabled all-algorithms verbose select help"
        ),
        "rand": _words("hex base64 help"),
        "pkey": _KEY_READ,
        "rsa": _KEY_READ,
        "ec": _KEY_READ | _words("param_out"),
        "pkcs12": _words("info in noout nokeys nocerts passin clcerts cacerts nomacver legacy help"),
        "pkcs7": _words("in inform print print_certs noout text help"),
        "cms": _words(
            "verify in inform content noverify no_signer_cert_verify nosigs cmsout print "
            "noout binary purpose verify_retcode text CAfile CApath CAstore no-CAfile "
            "no-CApath no-CAstore cmsout help"
        ),
        "smime": _words(
            "verify in inform content noverify nosigs pk7out text binary CAfile CApath "
            "CAstore no-CAfile no-CApath no-CAstore help"
        ),
        "dgst": _words("hex binary r c verify prverify signature keyform passin list help"),
        "s_client": _words(
            "connect host port servername noservername showcerts brief verify verify_return_error "
            "CAfile CApath CAstore no-CAfile no-CApath no-CAstore starttls tls1_2 tls1_3 no_tls1_3 "
            "alpn status crlf quiet ign_eof no_ign_eof cipher ciphersuites cert key pass 4 6 "
            "verify_hostname name msg state prexit nbio debug proxy xmpphost sigalgs curves groups help"
        ),
        "enc": _words(
            "d e a A base64 in pass k kfile iter pbkdf2 md nosalt salt S K iv p P nopad v none help"
        ),
        "base64": _words("d e a A in help"),
        "prime": _words("hex generate bits safe checks help"),
        "errstr": frozenset(),
        "speed": _words("elapsed evp seconds bytes multi async_jobs misalign decrypt aead mr mb primes help"),
        "genpkey": _words("algorithm pkeyopt quiet outform help"),
    }
)
_DIGEST = re.compile(
    r"-?(?:sha[0-9_-]*|md[245]|blake2[bs]?[0-9]*|sm3|shake[0-9]*|ripemd[0-9]*|rmd160|whirlpool)\Z", re.I
)
_CIPHER = re.compile(r"-?(?:aes|des|chacha|camellia|aria|sm4|bf|cast|rc[245]|seed|idea)[a-z0-9-]*\Z", re.I)


def _allowed_option(subcommand: str, option: str) -> bool:
    if option in OPENSSL_OPTIONS[subcommand]:
        return True
    if subcommand in ("dgst", "x509", "req", "crl", "cms", "smime") and _DIGEST.match(option):
        return True
    return subcommand in ("enc", "pkey", "rsa", "ec") and bool(_CIPHER.match(option))


def check_openssl(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse subcommands and options outside the read-only allow list."""
    if not arguments:
        return
    subcommand = arguments[0]
    if _DIGEST.match(subcommand) and not subcommand.startswith("-"):
        subcommand = "dgst"  # openssl sha256 FILE is openssl dgst -sha256 FILE
    elif _CIPHER.match(subcommand) and not subcommand.startswith("-"):
        subcommand = "enc"
    if subcommand not in OPENSSL_OPTIONS:
        if 0 in trusted:
            return  # a pattern spells the subcommand out: the administrator chose it
        refuse(
            f"'openssl {arguments[0]}' is not an openssl command jobs.shell runs for a bare-listed "
            f"openssl ({', '.join(sorted(OPENSSL_OPTIONS))}, digests and ciphers); others write "
            "files or keys, so pin them with a pattern"
        )
    for position, argument in enumerate(arguments[1:], start=1):
        if position in trusted or not argument.startswith("-") or argument == "-":
            continue
        option = argument.split("=", 1)[0]
        if option.startswith("--"):
            option = option[1:]
        if not _allowed_option(subcommand, option):
            refuse(
                f"argument {argument!r} of 'openssl {subcommand}' is not one of the read-only "
                f"options jobs.shell allows for it ({', '.join(sorted(OPENSSL_OPTIONS[subcommand]))}); "
                "many openssl options write the file they name (-out, -certsout, -signer, "
                "-CAserial ...), so pin others with a pattern"
            )
