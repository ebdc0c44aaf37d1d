"""The publish path's masked reprs (ShownMasker) equal mask_repr's, case for case.

GuardedTask.apply_async masks argsrepr/kwargsrepr through
:class:`celery_jobs_ext.masking.worker.ShownMasker`, a faster walk that hands anything unusual
to the masking Walker. These tests hold it to :func:`mask_repr` on the masking corpus in the
shapes task arguments take, so a new masking rule cannot make the two drift apart.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from celery_jobs_ext.masking.text import masker_for_keys
from celery_jobs_ext.masking.values import mask_repr
from celery_jobs_ext.masking.worker import ShownMasker, masked_reprs

DATA = Path(__file__).parent / "data"
TRUE_POSITIVES = json.loads((DATA / "secrets_true_positives.json").read_text())["cases"]
FALSE_POSITIVES = json.loads((DATA / "secrets_false_positives.json").read_text())["cases"]
TEXTS = (
    [case["text"] for case in TRUE_POSITIVES]
    + [case["secret"] for case in TRUE_POSITIVES]
    + [case["text"] for case in FALSE_POSITIVES]
)
KEY_NAMES = ["password", "api_key", "note", "id", "token", "Authorization", "x", "db_password", "key", "pin"]

Point = collections.namedtuple("Point", "password x")


@dataclasses.dataclass
class Config:
    api_key: str
    name: str


class Items(list):  # type: ignore[type-arg]
    pass


def _leaf(rng: random.Random) -> Any:
    text = rng.choice(TEXTS)
    return rng.choice(
        [
            text,
            text,
            text,
            rng.choice([1, 2.5, True, None, 1234, 0]),
            text.encode(),
            Point(text, 1),
            Config(text, "n"),
            ["mysql", "-p" + text[:20], "db"],
            (rng.choice(KEY_NAMES), text),
            ("Api Key", text),
            {text[:30]: 1},
            {1: text},
            {"name": rng.choice(["DB_PASSWORD", "region"]), "value": rng.choice([text, None, 5])},
        ]
    )


def _tree(rng: random.Random, depth: int) -> Any:
    if depth <= 0 or rng.random() < 0.3:
        return _leaf(rng)
    size = rng.randint(0, 4)
    return rng.choice(
        [
            lambda: {
                rng.choice(KEY_NAMES) + rng.choice(["", "_2", "s"]): _tree(rng, depth - 1)
                for _ in range(size)
            },
            lambda: [_tree(rng, depth - 1) for _ in range(size)],
            lambda: tuple(_tree(rng, depth - 1) for _ in range(size)),
            lambda: Items(_tree(rng, depth - 1) for _ in range(size)),
            lambda: {(1, 2): _tree(rng, depth - 1)},
        ]
    )()


def _assert_same(value: Any, maxlevels: int, maxlen: int = 1024, keys: list[str] | None = None) -> None:
    expected = mask_repr(value, keys, maxlen, maxlevels)
    assert ShownMasker(masker_for_keys(keys), maxlevels).repr(value, maxlen) == expected


@pytest.mark.parametrize("maxlevels", [1, 3])
def test_every_corpus_text_in_argument_shapes_masks_as_mask_repr(maxlevels: int) -> None:
    for text in TEXTS:
        for value in (
            (text,),
            {"text": text},
            {"password": text},
            (1, text, {"note": text, "items": [{"s": text}]}),
        ):
            _assert_same(value, maxlevels)


@pytest.mark.parametrize("seed", range(4))
def test_random_argument_trees_from_the_corpus_mask_as_mask_repr(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        value = _tree(rng, rng.randint(0, 6))
        for maxlevels in (1, 3, 5):
            _assert_same(value, maxlevels, maxlen=rng.choice([60, 1024]), keys=rng.choice([None, ["secret"]]))


def test_cycles_argument_lists_and_deep_limits_mask_as_mask_repr() -> None:
    loop: list[Any] = ["x"]
    loop.append(loop)
    nested: list[Any] = [[[loop]]]
    argv_deep = [[[["mysql", "-ppassphrase = 'Kx9&ON", "db"]]]]
    for value in (loop, nested, argv_deep, ({"a": loop},), [[[[[[["password=hunter2hunter2"]]]]]]]):
        for maxlevels in (0, 1, 2, 3, 4, 40):
            _assert_same(value, maxlevels)


def test_masked_reprs_hide_the_typical_payloads_secrets() -> None:
    app = Celery("reprs", set_as_current=False)
    args = (42, "sk_live_4eC39HqLyjWDarjtT1zdp7dc", {"order": {"id": "ord_1N3xYz"}})
    argsrepr, kwargsrepr = masked_reprs(app, args, {"password": "hunter2hunter2", "retry": True}, None)
    assert argsrepr == "(42, '***API_KEY***', {'order': {'id': 'ord_1N3xYz'}})"
    assert kwargsrepr == "{'password': '***PASSWORD***', 'retry': True}"
