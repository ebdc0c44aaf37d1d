"""Secret masking: every rule hides its secrets, and leaves task names, hosts, ids and prose alone."""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import random
import string
import time
from collections import namedtuple
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from celery_jobs_ext.errors import ImproperlyConfigured
from celery_jobs_ext.masking import (
    CYCLE_MARKER,
    DEFAULT_MASK_KEYS,
    DEPTH_MARKER,
    MAX_DEPTH,
    MaskingFilter,
    mask,
    mask_repr,
    mask_text,
)
from tests.masking_corpus import leak, score

DATA = Path(__file__).parent / "data"
TRUE_POSITIVES = json.loads((DATA / "secrets_true_positives.json").read_text("utf-8"))["cases"]
FALSE_POSITIVES = json.loads((DATA / "secrets_false_positives.json").read_text("utf-8"))["cases"]


def _b64url(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


JWT = ".".join(
    (_b64url({"alg": "HS256", "typ": "JWT"}), _b64url({"sub": "fake-user"}), "FAKEsignature0123456789_-fake")
)


# --- the published examples -------------------------------------------------------------------


@pytest.mark.parametrize("case", TRUE_POSITIVES, ids=[case["source"] for case in TRUE_POSITIVES])
def test_true_positive_is_hidden_behind_its_named_mask(case: dict[str, str]) -> None:
    masked = mask_text(case["text"])

    assert case["secret"] not in masked
    assert f"***{case['label']}***" in masked


@pytest.mark.parametrize("case", TRUE_POSITIVES, ids=[case["source"] for case in TRUE_POSITIVES])
def test_masking_masked_text_again_changes_nothing(case: dict[str, str]) -> None:
    masked = mask_text(case["text"])

    assert mask_text(masked) == masked


@pytest.mark.parametrize("case", FALSE_POSITIVES, ids=[case["why"] for case in FALSE_POSITIVES])
def test_false_positive_comes_back_as_the_same_object(case: dict[str, str]) -> None:
    assert mask_text(case["text"]) is case["text"]


def test_corpus_recall_is_at_least_99_percent_and_false_positives_at_most_1_percent() -> None:
    scores = score(mask_text)

    assert scores.secrets >= 400
    assert scores.benign >= 400
    assert scores.recall >= 0.99, [(case["source"], masked, piece) for case, masked, piece in scores.missed]
    assert scores.false_positive_rate <= 0.01, [
        (case["why"], masked) for case, masked in scores.false_positives
    ]


def test_every_corpus_entry_names_its_source_kind() -> None:
    for case in TRUE_POSITIVES + FALSE_POSITIVES:
        assert case.get("kind"), case


@pytest.mark.parametrize("case", TRUE_POSITIVES, ids=[case["source"] for case in TRUE_POSITIVES])
def test_no_piece_of_a_secret_survives(case: dict[str, str]) -> None:
    assert leak(case, mask_text(case["text"])) is None


LONG_SECRETS = [case for case in TRUE_POSITIVES if len(case["secret"]) >= 12]


@pytest.mark.parametrize("case", LONG_SECRETS, ids=[case["source"] for case in LONG_SECRETS])
def test_a_secret_stays_hidden_when_its_text_is_quoted_again(case: dict[str, str]) -> None:
    # How a worker shows it: Celery's saferepr of the arguments (quotes escaped inside), a list
    # repr, a JSON string.
    from celery.utils.saferepr import saferepr

    text = case["text"]
    for wrapped in (saferepr([text]), saferepr((text,)), repr([text]), json.dumps(text)):
        assert case["secret"] not in mask_text(wrapped), wrapped
    # The secret alone under a secret-named key, as a kwargsrepr shows it.
    kwargsrepr = saferepr({"password": case["secret"]})
    assert case["secret"] not in mask_text(kwargsrepr), kwargsrepr


def test_data_files_hold_every_mask_label() -> None:
    labels = {case["label"] for case in TRUE_POSITIVES}

    assert labels == {"JWT", "TOKEN", "PASSWORD", "PRIVATE_KEY", "AWS_KEY", "API_KEY", "SECRET"}


# --- rules with shape: the text around the secret survives ---------------------------------------


def test_bearer_jwt_is_masked_whole_leaving_no_piece_of_it() -> None:
    masked = mask_text(f"Authorization: Bearer {JWT}")

    assert masked == "Authorization: Bearer ***TOKEN***"
    for segment in JWT.split("."):
        assert segment not in masked


def test_bearer_scheme_survives_a_secret_named_key_around_it() -> None:
    assert mask_text(f"{{'Authorization': 'Bearer {JWT}'}}") == "{'Authorization': 'Bearer ***TOKEN***'}"


def test_url_keeps_scheme_user_and_host() -> None:
    assert mask_text("amqp://guest:guest@rabbit:5672//") == "amqp://guest:***PASSWORD***@rabbit:5672//"
    assert mask_text("redis://:pass@redis:6379/0") == "redis://:***PASSWORD***@redis:6379/0"


def test_assignment_keeps_key_quotes_and_the_rest_of_the_text() -> None:
    text = "{'user': 'bob', 'password': 'hunter2', 'retries': 3}"

    assert mask_text(text) == "{'user': 'bob', 'password': '***PASSWORD***', 'retries': 3}"


def test_slack_webhook_keeps_its_host() -> None:
    text = "post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX now"

    assert mask_text(text) == "post to https://hooks.slack.com/services/***API_KEY*** now"


def test_private_key_block_is_masked_from_begin_to_end() -> None:
    text = "key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFAKE\n-----END EC PRIVATE KEY-----\nnext line"

    assert mask_text(text) == "key:\n***PRIVATE_KEY***\nnext line"


def test_text_without_secrets_comes_back_as_the_same_object() -> None:
    text = (
        "Task proj.tasks.process_payment[6f1c2e3a-9b8d-4c7e-a5f4-3b2a1c0d9e8f] succeeded in 0.01s: "
        "{'host': 'api.example.com', 'commit': '3f9c2b7a1e0d4c5b6a7f8e9d0c1b2a3f4e5d6c7b'}"
    )

    assert mask_text(text) is text


def test_text_whose_lowercase_is_longer_is_still_masked() -> None:
    # "İ".lower() is two characters, so rules cannot run on the lowercased text here.
    assert mask_text("İstanbul PASSWORD=hunter2") == "İstanbul PASSWORD=***PASSWORD***"


def test_empty_and_short_text_comes_back_unchanged() -> None:
    assert mask_text("") == ""
    assert mask_text("ok") == "ok"


# --- the generic rule ------------------------------------------------------------------------


def test_generic_rule_masks_random_keys_whatever_their_alphabet() -> None:
    generator = random.Random(7)
    alphabets = [
        string.ascii_letters + string.digits,
        string.ascii_letters + string.digits + "+/",
        string.ascii_letters + string.digits + "-_",
    ]
    keys = []
    for alphabet in alphabets:
        for _ in range(100):
            key = "".join(generator.choice(alphabet) for _ in range(40))
            keys.append(key.strip("+/-_"))

    missed = [key for key in keys if len(key) >= 32 and key in mask_text(f"value {key} end")]

    assert len(missed) <= 0.03 * len(keys), missed


@pytest.mark.parametrize(
    "identifier",
    [
        "test_task_killed_by_hard_limit_is_dead_lettered_once",
        "TEST_TASK_KILLED_BY_HARD_LIMIT_IS_DEAD_LETTERED_ONCE",
        "TestTaskKilledByHardLimitIsDeadLetteredOnce",
        "AbstractSingletonProxyFactoryBeanConfigurer2",
        "NSHTTPCookieAcceptPolicyOnlyFromMainDocumentDomain",
        "/home/runner/work/celery-jobs-ext/celery-jobs-ext/tests/test_masking",
        "worker-default-high-priority-queue-consumer-x86_64-py311",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ],
)
def test_generic_rule_leaves_long_identifiers_paths_and_hex_alone(identifier: str) -> None:
    text = f"running {identifier} now"

    assert mask_text(text) is text


# --- secret-named keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("password", "***PASSWORD***"),
        ("db_password", "***PASSWORD***"),
        ("DB_PASSWORD", "***PASSWORD***"),
        ("dbPassword", "***PASSWORD***"),
        ("passwd", "***PASSWORD***"),
        ("password2", "***PASSWORD***"),
        ("password_confirmation", "***PASSWORD***"),
        ("password_hash", "***PASSWORD***"),
        ("passwords", "***PASSWORD***"),
        ("X-Api-Key", "***API_KEY***"),
        ("apiKey", "***API_KEY***"),
        ("APIKey", "***API_KEY***"),
        ("access_key", "***API_KEY***"),
        ("aws_secret_access_key", "***AWS_KEY***"),
        ("SecretAccessKey", "***AWS_KEY***"),
        ("aws_session_token", "***AWS_KEY***"),
        ("refresh_token", "***TOKEN***"),
        ("csrftoken", "***TOKEN***"),
        ("X-Auth-Token", "***TOKEN***"),
        ("auth", "***TOKEN***"),
        ("oauth", "***TOKEN***"),
        ("Authorization", "***TOKEN***"),
        ("HTTP_AUTHORIZATION", "***TOKEN***"),
        ("auth_header", "***TOKEN***"),
        ("cookie", "***TOKEN***"),
        ("cookies", "***TOKEN***"),
        ("Set-Cookie", "***TOKEN***"),
        ("session", "***TOKEN***"),
        ("sessionid", "***TOKEN***"),
        ("session_id", "***TOKEN***"),
        ("secret", "***SECRET***"),
        ("secrets", "***SECRET***"),
        ("SECRET_KEY", "***SECRET***"),
        ("client_secret", "***SECRET***"),
        ("clientSecret", "***SECRET***"),
        ("private_key", "***PRIVATE_KEY***"),
        ("ssh_private_key_pem", "***PRIVATE_KEY***"),
    ],
)
def test_value_under_a_secret_named_key_is_masked_whole(key: str, label: str) -> None:
    assert mask({key: "anything at all", "other": "visible"}) == {key: label, "other": "visible"}


@pytest.mark.parametrize(
    "key",
    [
        "author",
        "authors",
        "authority",
        "authenticated",
        "tokenizer_name",
        "tokenizer",
        "token_count",
        "token_type",
        "max_tokens",
        "num_tokens",
        "session_timeout",
        "password_reset_url",
        "private_key_path",
        "cookie_domain",
        "auth_method",
        "secretary",
        "client_id",
        "monkey",
        "cache_key",
        "primary_key",
        "public_key",
        "passport",
        "keyboard",
    ],
)
def test_value_under_a_key_that_only_mentions_a_secret_is_kept(key: str) -> None:
    assert mask({key: "visible"}) == {key: "visible"}


def test_secret_named_key_hides_whole_containers_and_non_strings() -> None:
    value = {"auth": {"user": "bob", "pass": "x"}, "password": 1234, "token": ["a", "b"]}

    assert mask(value) == {"auth": "***TOKEN***", "password": "***PASSWORD***", "token": "***TOKEN***"}


def test_secret_named_key_with_none_keeps_none() -> None:
    assert mask({"password": None}) == {"password": None}


def test_secret_named_key_with_bytes_gets_a_bytes_mask() -> None:
    assert mask({"password": b"hunter2", b"token": "x"}) == {
        "password": b"***PASSWORD***",
        b"token": "***TOKEN***",
    }


def test_custom_keys_replace_the_default_set() -> None:
    value = {"pin_code": "1234", "password": "hunter2"}

    assert mask(value, keys=["pin_code"]) == {"pin_code": "***SECRET***", "password": "hunter2"}
    assert (
        mask_text("pin_code=1234 password=hunter2", keys=["pin_code"])
        == "pin_code=***SECRET*** password=hunter2"
    )


def test_custom_keys_can_extend_the_defaults() -> None:
    keys = DEFAULT_MASK_KEYS | {"ssn"}

    assert mask({"ssn": "123-45-6789", "password": "x"}, keys=keys) == {
        "ssn": "***SECRET***",
        "password": "***PASSWORD***",
    }


def test_empty_keys_still_masks_secrets_by_their_shape() -> None:
    assert mask({"password": f"Bearer {JWT}"}, keys=[]) == {"password": "Bearer ***TOKEN***"}


def test_keys_given_as_one_string_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_mask_keys"):
        mask({"password": "x"}, keys="password")


def test_keys_holding_a_non_string_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_mask_keys"):
        mask_text("x", keys=["password", 3])  # type: ignore[list-item]


def test_default_keys_are_the_documented_ones() -> None:
    assert {
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
        "passwort",
        "contraseña",
        "mot_de_passe",
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
        "psk",
        "bearer",
        "refresh",
        "sas",
        "rpcpass",
    } == DEFAULT_MASK_KEYS


# --- nested values ---------------------------------------------------------------------------


def test_nested_containers_keep_their_types_and_are_masked_inside() -> None:
    Point = namedtuple("Point", "x label")
    value = {
        "list": [f"Bearer {JWT}", 1],
        "tuple": ("password=hunter2", 2.5),
        "set": {"redis://:pw@host/0"},
        "frozenset": frozenset({"ok"}),
        "point": Point(1, "token=abc123"),
    }

    masked = mask(value)

    assert masked == {
        "list": ["Bearer ***TOKEN***", 1],
        "tuple": ("password=***PASSWORD***", 2.5),
        "set": {"redis://:***PASSWORD***@host/0"},
        "frozenset": frozenset({"ok"}),
        "point": Point(1, "token=***TOKEN***"),
    }
    assert type(masked["point"]) is Point


@pytest.mark.parametrize(
    "scalar",
    [0, -7, 3.5, True, False, None, 1j, Decimal("1.5"), UUID(int=1)],
    ids=repr,
)
def test_scalars_pass_through_unchanged(scalar: object) -> None:
    assert mask(scalar) is scalar


def test_dict_keys_that_are_secrets_are_masked_too() -> None:
    assert mask({f"Bearer {JWT}": 1}) == {"Bearer ***TOKEN***": 1}


def test_input_is_never_mutated() -> None:
    value: dict[str, Any] = {
        "password": "x",
        "nested": [{"token": "y"}, {"url": "redis://:pw@h/0"}],
        "s": {"a"},
    }
    before = copy.deepcopy(value)

    mask(value)
    mask_repr(value)

    assert value == before


def test_list_that_contains_itself_becomes_a_cycle_marker() -> None:
    value: list[Any] = ["password=x"]
    value.append(value)

    assert mask(value) == ["password=***PASSWORD***", CYCLE_MARKER]


def test_dict_that_contains_itself_becomes_a_cycle_marker() -> None:
    value: dict[str, Any] = {"name": "x"}
    value["self"] = value

    assert mask(value) == {"name": "x", "self": CYCLE_MARKER}


def test_shared_reference_is_not_mistaken_for_a_cycle() -> None:
    shared = ["token=abc123"]

    assert mask([shared, shared]) == [["token=***TOKEN***"], ["token=***TOKEN***"]]


def test_nesting_deeper_than_the_limit_becomes_a_depth_marker() -> None:
    value: list[Any] = ["bottom"]
    for _ in range(10_000):
        value = [value]

    masked = mask(value)

    for _ in range(MAX_DEPTH):
        masked = masked[0]
    assert masked == DEPTH_MARKER


def test_bytes_are_masked_and_stay_bytes() -> None:
    assert mask(b"password=hunter2") == b"password=***PASSWORD***"
    assert mask(bytearray(b"password=hunter2")) == bytearray(b"password=***PASSWORD***")
    assert type(mask(bytearray(b"password=hunter2"))) is bytearray


def test_clean_bytes_come_back_as_the_same_object() -> None:
    value = b"\xff\xfe not utf-8, no secret"

    assert mask(value) is value


def test_bytes_that_are_not_utf8_survive_around_a_secret() -> None:
    assert mask(b"\xff\xfe password=hunter2") == b"\xff\xfe password=***PASSWORD***"


class _Account:
    def __repr__(self) -> str:
        return "<Account dsn='postgres://app:hunter2@db/app'>"


class _BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_object_becomes_its_masked_repr() -> None:
    assert mask(_Account()) == "<Account dsn='postgres://app:***PASSWORD***@db/app'>"


def test_object_with_a_broken_repr_becomes_a_placeholder() -> None:
    assert mask(_BrokenRepr()) == "<unrepresentable _BrokenRepr>"


# --- mask_repr -------------------------------------------------------------------------------


def test_mask_repr_masks_and_reads_like_celery_argsrepr() -> None:
    args = ("proj.tasks.charge", {"password": "hunter2", "amount": Decimal("9.99")}, _Account())

    assert mask_repr(args) == (
        "('proj.tasks.charge', {'password': '***PASSWORD***', 'amount': Decimal('9.99')}, "
        "<Account dsn='postgres://app:***PASSWORD***@db/app'>)"
    )


def test_mask_repr_truncates_long_values() -> None:
    assert len(mask_repr(["word " * 1000], maxlen=100)) < 150


def test_mask_repr_hides_a_secret_that_truncation_would_cut() -> None:
    text = "x" * 90 + f" Bearer {JWT}"

    masked = mask_repr(text, maxlen=110)

    assert JWT[:20] not in masked


# --- the logging filter ----------------------------------------------------------------------


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(f"tests.masking.{time.perf_counter_ns()}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def test_filter_masks_a_secret_passed_as_a_format_argument(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    logger.info("token=%s", "abc123secret")

    assert stream.getvalue() == "INFO token=***TOKEN***\n"


def test_filter_masks_the_message_of_a_logged_exception(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged

    try:
        raise ConnectionError(f"cannot reach redis://:hunter2@cache:6379/0 with Bearer {JWT}")
    except ConnectionError:
        logger.exception("task failed")

    output = stream.getvalue()
    assert "hunter2" not in output
    assert JWT not in output
    assert (
        "ConnectionError: cannot reach redis://:***PASSWORD***@cache:6379/0 with Bearer ***TOKEN***" in output
    )
    assert "Traceback (most recent call last)" in output


def test_filter_masks_stack_info(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "hello", (), None, sinfo="Stack: password=x"
    )

    logger.handle(record)

    assert "password=***PASSWORD***" in stream.getvalue()


def test_filter_twice_gives_the_same_output_as_once() -> None:
    streams = [io.StringIO(), io.StringIO()]
    logger = logging.getLogger(f"tests.masking.twice.{time.perf_counter_ns()}")
    logger.propagate = False
    for stream in streams:
        handler = logging.StreamHandler(stream)
        handler.addFilter(MaskingFilter())
        logger.addHandler(handler)

    try:
        raise ValueError("password=hunter2")
    except ValueError:
        logger.error("login with %s as Bearer %s", "bob", JWT, exc_info=True)

    assert streams[0].getvalue() == streams[1].getvalue()
    assert "hunter2" not in streams[0].getvalue()
    assert "Bearer ***TOKEN***" in streams[0].getvalue()


def test_filter_leaves_a_clean_record_alone_and_never_drops_one() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "processed %d orders", (3,), None)

    assert MaskingFilter().filter(record) is True
    assert record.msg == "processed %d orders"
    assert record.args == (3,)


def test_filter_masks_the_arguments_of_a_broken_format_string() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d orders", ("password=hunter2",), None)

    assert MaskingFilter().filter(record) is True
    assert record.args == ("password=***PASSWORD***",)


def test_filter_uses_custom_keys() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "pin_code=%s", ("1234",), None)

    MaskingFilter(keys=["pin_code"]).filter(record)

    assert record.getMessage() == "pin_code=***SECRET***"


# --- hostile input ---------------------------------------------------------------------------

HOSTILE = {
    "a * 1e6": "a" * 10**6,
    "a. * 5e5": "a." * 500_000,
    "Bearer x * 1e6": "Bearer " + "x" * 10**6,
    "eyJ a * 1e6": "eyJ" + "a" * 10**6,
    "BEGIN PRIVATE KEY a * 1e6": "-----BEGIN PRIVATE KEY-----" + "a" * 10**6,
    "password= * 1e5": "password=" * 100_000,
    ":// * 3e5": "://" * 300_000,
    "x: * 5e5 @": "x:" * 500_000 + "@",
    "eyJ * 3e5": "eyJ" * 300_000,
    "Bearer eyJ. * 2e5": "Bearer " + "eyJ." * 200_000,
    "A * 1e6": "A" * 10**6,
    "aB3 * 3e5": "aB3" * 300_000,
    "-----BEGIN PRIVATE KEY----- * 4e4": "-----BEGIN PRIVATE KEY-----" * 40_000,
    "password=' * 1e5": "password='" * 100_000,
    "key: * 2e5": "key:" * 200_000,
    "Basic * 1e5": "Basic " * 100_000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_megabyte_is_masked_without_error(text: str) -> None:
    """Their timing is measured in benchmarks/masking.py (no wall clock in tests)."""
    assert isinstance(mask_text(text), str)


# -- review follow-ups: structures under secret keys, chained exceptions, Celery's log data ----


def test_masked_reprs_hide_whole_structures_under_secret_keys() -> None:
    from celery import Celery

    from celery_jobs_ext import install
    from celery_jobs_ext.masking import masked_reprs

    app = Celery("reprs", broker="redis://127.0.0.1:6379/11", set_as_current=False)
    install(app)
    argsrepr, kwargsrepr = masked_reprs(
        app, ("hello",), {"password": ["hunter2-not-random"], "api_key": ("k1-abc",), "n": 1}, None
    )
    assert argsrepr == "('hello',)"
    assert "hunter2-not-random" not in kwargsrepr and "k1-abc" not in kwargsrepr
    assert "'n': 1" in kwargsrepr


def test_mask_exception_reaches_chained_causes_and_attributes() -> None:
    import subprocess
    import traceback

    from celery_jobs_ext.masking import mask_exception

    secret = "hunter2" + "pass"  # built at run time: tracebacks also print source lines
    try:
        try:
            raise ConnectionError(f"redis://:{secret}@db:6379/0 refused")
        except ConnectionError as cause:
            raise RuntimeError("could not connect") from cause
    except RuntimeError as exc:
        mask_exception(exc)
        assert "hunter2pass" not in "".join(traceback.format_exception(exc))
    failed = subprocess.CalledProcessError(1, ["curl", "https://user:hunter2pass@host/x"])
    mask_exception(failed)
    assert "hunter2pass" not in str(failed)


def test_masking_filter_masks_celerys_structured_log_data() -> None:
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Capture()
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("test-masking-data")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        data = {
            "args": "('password=hunter2hunter2',)",
            "return_value": "Bearer abcdefghijklmnopqrstuvwxyz123456",
        }
        logger.warning("Task %(name)s received", {"name": "x"}, extra={"data": data})
    finally:
        logger.removeHandler(handler)
    assert records[0].data == {"args": "('password=***PASSWORD***',)", "return_value": "Bearer ***TOKEN***"}
    assert data["args"] == "('password=hunter2hunter2',)", "the caller's dict is not mutated"


_SIGNATURE = "Xk9fQ2vL8mN3pR7sT1wY5zB4cD6eF0gH2jK4lM8nP0q"


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        # Only the signature makes a run; the JWT's trigger is 50 characters before it.
        ("claims eyJhIjoxfQ." + "a1b2c3d4e5" * 4 + "." + _SIGNATURE, "***JWT***"),
        # SendGrid's second part is the run; "SG." and a lowercase first part come before it.
        ("key SG." + "abcdefghij" * 3 + "ab." + _SIGNATURE, "***API_KEY***"),
        ("url https://hooks.slack.com/services/T00000000/B00000000/" + "X" * 24, "***API_KEY***"),
    ],
)
def test_a_multi_part_secret_is_found_from_a_run_well_after_its_prefix(text: str, mask: str) -> None:
    masked = mask_text(text)
    assert mask in masked
    assert _SIGNATURE not in masked
    assert "X" * 24 not in masked


def test_a_huge_dict_key_is_judged_by_its_end_and_not_kept_whole() -> None:
    key = "x" * 100_000 + "_password"
    assert mask({key: "hunter2hunter2"}) == {key: "***PASSWORD***"}
    assert mask({"x" * 100_000 + "_count": 3}) == {"x" * 100_000 + "_count": 3}


# -- issue 13: values masked whole, as their syntax delimits them ------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://app:p@ss#w/rd@db:5432/shop", "postgres://app:***PASSWORD***@db:5432/shop"),
        ("password=Tr0ub4dor&3x", "password=***PASSWORD***"),
        ("Authorization: Bearer abc:def:ghi", "Authorization: Bearer ***TOKEN***"),
        ("PASSWORD=[abc]xyz", "PASSWORD=***PASSWORD***"),
        ("f(password=abc)", "f(password=***PASSWORD***)"),
        ("GET /v1?pwd=a1&b=1#top", "GET /v1?pwd=***PASSWORD***&b=1#top"),
        ("Server=db;Password=Pa;ss&w0rd!;Timeout=3", "Server=db;Password=***PASSWORD***;Timeout=3"),
        ("mysql -u root -pS3cr3t! shop", "mysql -u root -p***PASSWORD*** shop"),
        ("curl -u deploy:S3:cr3t https://x.example", "curl -u deploy:***PASSWORD*** https://x.example"),
    ],
)
def test_a_value_is_masked_whole_and_the_syntax_around_it_kept(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "docker run -p 8080:80 app",
        "https://host:8080/users/bob@example.com",
        "send it in an Authorization: Bearer header",
        "auth: failed",
        "session: 4",
        "cookie: enabled",
        "password: <password>",
        "api_key={{ api_key }}",
        '"jsonwebtoken": "^9.0.2"',
        "routing_key=default",
        "PWD=/home/app",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert mask_text(text) is text


def test_command_lines_are_masked_correctly_from_many_threads_at_once() -> None:
    import threading

    texts = [f"mysql -u app -pSecretPw{i}x shop\nls -la /tmp -h" for i in range(50)]
    leaks: list[str] = []

    def work() -> None:
        for _ in range(40):
            for index, text in enumerate(texts):
                if f"SecretPw{index}x" in mask_text(text):
                    leaks.append(text)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert leaks == []


def test_public_pem_blocks_are_found_in_one_pass_among_many() -> None:
    """Thousands of BEGIN lines (one unclosed) still keep certificate bodies and mask what follows."""
    body = "MIIBszCCAVmgAwIBAgIUQk7pZ3xY9aVb2Lm8Rt4WqNc6HsEwCgYIKoZIzj0EAwIw"
    certificate = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    secret = "Xq7LmN2pR9tV4wY6zB8cD1fG3hJ5kK0s"
    text = "-----BEGIN PUBLIC KEY-----\n" * 2000 + "-----END PUBLIC KEY-----\n" + certificate * 50
    masked = mask_text(text + f"api={secret}\n")
    assert body in masked
    assert secret not in masked
    unclosed = mask_text(certificate + "-----BEGIN PUBLIC KEY-----\n" * 500 + body)
    assert unclosed.count(body) == 2


@pytest.mark.parametrize(
    "text",
    [
        "['yyyy', 'ghp_aB3dE5fG7hJ9kL1mN3p...']",
        "{'key': 'sk_live_4eC39HqL...'}",
        "result: 'xoxb-123456789012-12345...'",
        "('AKIAIOSFOD...',)",
        "token cut: glpat-x7Rk2mQ9…",
    ],
)
def test_a_token_cut_short_by_a_repr_is_masked_by_its_prefix(text: str) -> None:
    masked = mask_text(text)
    visible = text.split("'")[-2] if "'" in text else text.rsplit(" ", 1)[-1]
    assert visible.rstrip(".…") not in masked
    assert "***" in masked


@pytest.mark.parametrize("text", ["installing sk-learn... done", "see AIzawhat...", "dapianos..."])
def test_a_cut_word_that_only_starts_like_a_prefix_is_kept(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    "scheme", ["SSWS", "Bot", "ApiKey", "Key", "GenieKey", "Splunk", "OAuth", "SharedKey"]
)
@pytest.mark.parametrize(
    "form", ["Authorization: {scheme} {credential}", '{{"authorization": "{scheme} {credential}"}}']
)
def test_any_authorization_scheme_keeps_the_scheme_and_masks_the_credential(scheme: str, form: str) -> None:
    credential = "acct:wNfWdb9cnGC7D1uO2KSqR6Oy" if scheme == "SharedKey" else "wNfWdb9cnGC7D1uO2KSqR6Oy"
    masked = mask_text(form.format(scheme=scheme, credential=credential))
    assert f"{scheme} ***TOKEN***" in masked
    assert "wNfWdb9cnGC7" not in masked


def test_digest_parameters_and_a_credential_on_the_next_line_are_masked() -> None:
    digest = 'Authorization: Digest username="a", nonce="n", response="66e8f97b948604b6afd0c485a90973db"'
    assert mask_text(digest) == "Authorization: Digest ***TOKEN***"
    assert mask_text("Authorization: Bearer\nBY0zMB5oDcGG1wQApauZ\nHost: h") == (
        "Authorization: Bearer\n***TOKEN***\nHost: h"
    )


def test_an_oauth_callback_code_is_masked_and_status_codes_are_not() -> None:
    assert mask_text("GET /cb?code=bzxFreplBwaPm3zPD0JA&state=xyz") == "GET /cb?code=***TOKEN***&state=xyz"
    assert mask_text("GET /status?code=200&x=1") == "GET /status?code=200&x=1"


@pytest.mark.parametrize(
    "text",
    [
        "client_credential=UFNSnZXY1uY04Y63",
        "passcode=TsL24f6pm1DTaM4h",
        "LICENSE_KEY=fm1WC0qfZqkMWfT7",
        "DD_APP_KEY=696a4aed27685c86b74d6d2d6e5e100e8d4875a4",
        "ALGOLIA_ADMIN_KEY=4hbck4beng21allmp6i4b3re4ekthu7g",
        "Ocp-Apim-Subscription-Key: 1758578f618aff0cea389229e881c666",
        "requirepass hWFXGq4xuSNf7Moj",
        "masterauth EtvlQbXFN0ssHn5d",
    ],
)
def test_key_names_from_the_keyword_lists_hide_their_values(text: str) -> None:
    value = text.split("=")[-1].split(" ")[-1]
    assert value not in mask_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "MAILCHIMP_KEY=371cdcfa28af256033888bf818b0f533-us14",
        "square access sq0atp-oKCFz8x2dup8bwO4GifegW",
        "https://api.telegram.org/bot1786526310:AA9awfGqyfa-KRysxrcnEun_lDFu1iWXzys/getMe",
        "git clone https://6551fe0fb882415a26e814db1d941ebc26b8664f@github.com/acme/infra.git",
    ],
)
def test_more_vendor_formats_are_masked(text: str) -> None:
    masked = mask_text(text)
    assert "***API_KEY***" in masked
    assert not any(part in masked for part in ("371cdcfa", "oKCFz8x2", "AA9awfGq", "6551fe0f"))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("password: >-\n  Winter2025!\n", "Winter2025!"),
        ("db:\n  password: |\n    Winter2025!\n    more2025\n  host: x\n", "more2025"),
        ("db:\n  password:\n    Kx9$mP2vL7q!\n", "Kx9$mP2vL7q!"),
        ('<add key="DbPassword" value="S3cr3t-V4lue" />', "S3cr3t-V4lue"),
        ('<property name="javax.net.ssl.keyStorePassword" value="S3cr3t-V4lue"/>', "S3cr3t-V4lue"),
        ("<entry><key>password</key><value>S3cr3t-V4lue</value></entry>", "S3cr3t-V4lue"),
        ("<Password><![CDATA[S3cr3t-V4lue]]></Password>", "S3cr3t-V4lue"),
        ("Server=tcp:db,1433;User ID=sa;Password={P@ss w0rd;x};", "w0rd;x"),
    ],
)
def test_values_in_yaml_blocks_xml_records_and_odbc_braces_are_masked_whole(text: str, secret: str) -> None:
    masked = mask_text(text)
    assert secret not in masked
    assert "***PASSWORD***" in masked


@pytest.mark.parametrize("text", ["auth:\n  user: bob\n", 'key="routing" value="orders"', "token={token}"])
def test_nested_yaml_mappings_and_non_secret_records_are_kept(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "integrity sha512-Q3cM1Q2bW9hKqV7K2mVYpZlY0rYhN3a7E+eJv1gV0pWkz8h3rFzC0o2bZ3qL6pQ4sYdJ1tT2uX9yA0bC1d"
        "E2fA==",
        "token_type=bearer expires_in=3600 scope=read:user",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "secret=prod-db-credentials-v2",
        "key=ArrowUp",
        "    items.sort(key=lambda item: item.priority)",
        "session: AsyncSession = Depends(get_db)",
    ],
)
def test_integrity_hashes_oauth_responses_arns_names_and_source_lines_are_kept(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("[database]\nhost = db1\npassword = Tr0ub4dor &3 horse\n", "&3 horse"),
        ("password=Welcome(2024)", "Welcome(2024)"),
        ("DB_PASSWORD=Summer.Fun[99]", "Summer.Fun[99]"),
        ("token=1.2.3-dprysgvrnejhdyuedthw", "dprysgvrnejhdyuedthw"),
    ],
)
def test_ini_lines_and_code_or_version_shapes_do_not_cut_or_keep_a_secret_value(
    text: str, secret: str
) -> None:
    assert secret not in mask_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "az login --service-principal -u app -p 9QbgabHu1ZDoaI --tenant t",
        "ssh-keygen -N ESVwWN0qnQacU9 -f key",
        "unrar x -pu2fnMF4QYQFNj1 a.rar",
        "mosquitto_pub -u dev -P tE4yrX22rlL4j0 -t t -m x",
        "influx auth -t uOhTfBjhYXvaog",
    ],
)
def test_password_options_of_more_tools_are_masked(text: str) -> None:
    masked = mask_text(text)
    assert "***PASSWORD***" in masked
    assert not any(len(word) == 14 and word in masked for word in text.replace("-p", " ").split())


@pytest.mark.parametrize("text", ["az vm create -p 22", "unrar x -p- a.rar", 'ssh-keygen -N "" -f key'])
def test_the_same_options_elsewhere_or_empty_are_kept(text: str) -> None:
    assert mask_text(text) == text
