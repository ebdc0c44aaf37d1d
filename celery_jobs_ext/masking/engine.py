"""The rule engine: literal-triggered patterns applied in order, cheaply skipped."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

try:  # optional: pip install 'celery-jobs-ext[speed]'; the results are the same without it
    import ahocorasick as _ahocorasick
except ImportError:  # pragma: no cover - exercised by forcing the fallback in the tests
    _ahocorasick = None

# ---------------------------------------------------------------------------------------------
# Text rules
#
# Speed comes from the shape of the patterns: each starts with a literal ("://", "eyJ", "key"),
# which the regex engine finds as fast as ``str.find``, and the boundary check sits in a
# lookbehind just after it. A pattern starting with a character class or an alternation would be
# tried at every position, ten to a hundred times slower. Case-insensitive rules run on the
# lowercased text (same positions), so their literals stay literals, and read the original text.
# ---------------------------------------------------------------------------------------------

#: (original text, match) -> (replacement, end): the replacement for ``text[match.start():end]``
#: (``end`` may stop short of the match's end, to keep a closing quote, or go past it); None to
#: leave the match; an int to leave it and look on from that position.
Replace = Callable[[str, "re.Match[str]"], "tuple[str, int] | int | None"]


@dataclass(frozen=True)
class Rule:
    """One kind of secret: a pattern, and what to put in place of each match."""

    name: str
    pattern: re.Pattern[str]
    replace: Replace
    #: Lowercase literals, one of which occurs in (the lowercased) text whenever the pattern can
    #: match: a ``str`` ``in`` check is the cheapest way to skip the rule.
    triggers: frozenset[str]
    #: None: ``pattern`` runs on the original text. Otherwise it is written in lowercase and runs on
    #: the lowercased text; this IGNORECASE twin serves the rare text whose lowercasing changes its
    #: length (``"İ".lower()`` is two characters), where positions would not line up.
    ignorecase: re.Pattern[str] | None = None


def lowercase_rule(
    name: str, triggers: frozenset[str], pattern: str, replace: Replace, flags: int = 0
) -> Rule:
    return Rule(
        name, re.compile(pattern, flags), replace, triggers, re.compile(pattern, flags | re.IGNORECASE)
    )


def literal_rule(name: str, triggers: str | tuple[str, ...], pattern: str, replace: Replace) -> Rule:
    """A case-sensitive rule; ``triggers`` are still matched against the lowercased text."""
    words = frozenset((triggers,) if isinstance(triggers, str) else triggers)
    return Rule(name, re.compile(pattern), replace, words)


#: Characters from the rarest in log and code text to the most common (symbols, then letters by
#: reverse English frequency, digits, then separators). A trigger is looked for only where its
#: two rarest characters occur: one character is found with ``memchr``, twenty times faster
#: than a word.
_RARITY: Final = "\\<%~$@!|^`#&zqxjkvbpygfwmucldrhsnioate9876543210>'\"[]{}()-_:=./ \t\n,;?"
_GATE_CHARACTERS: Final = 2


def _gates(trigger: str) -> tuple[str, ...]:
    """The rarest characters of ``trigger`` (none for a single character, found as fast)."""
    if len(trigger) == 1:
        return ()
    ranked = sorted(set(trigger), key=lambda char: _RARITY.find(char) % (len(_RARITY) + 1))
    return tuple(ranked[:_GATE_CHARACTERS])


class RuleSet:
    """Rules applied in order, with the union of their triggers checked first."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        triggers = sorted(
            frozenset().union(*(rule.triggers for rule in self.rules)), key=lambda t: (len(t), t)
        )
        self.triggers = tuple(triggers)
        #: (trigger, its gate characters): looked for only where all its gates occur. A trigger
        #: holding a shorter one ("passw" holds "pass") is looked for only where that one was
        #: found (``contained``: trigger -> the shorter one).
        contained = {
            trigger: next((other for other in reversed(triggers[:index]) if other in trigger), None)
            for index, trigger in enumerate(triggers)
        }
        self.gated_triggers = tuple(
            (trigger, frozenset(_gates(trigger))) for trigger in triggers if contained[trigger] is None
        )
        self.longer_triggers = tuple(
            (trigger, frozenset(_gates(trigger)), shorter)
            for trigger, shorter in contained.items()
            if shorter is not None
        )
        #: Every gate character, each looked for once per text.
        self.gate_characters = "".join(sorted({char for trigger in triggers for char in _gates(trigger)}))
        #: With pyahocorasick, every trigger of two characters or more is found in one pass
        #: (an Aho-Corasick automaton in C), single characters with ``in`` (``memchr``).
        self.automaton = _automaton([trigger for trigger in triggers if len(trigger) > 1])
        self.single_characters = tuple(trigger for trigger in triggers if len(trigger) == 1)
        #: trigger -> the positions of the rules it starts, so only those are looked at.
        self.by_trigger = {
            trigger: frozenset(index for index, rule in enumerate(self.rules) if trigger in rule.triggers)
            for trigger in self.triggers
        }


def _automaton(words: list[str]) -> Any:
    if _ahocorasick is None or not words:
        return None
    automaton = _ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, word)
    automaton.make_automaton()
    return automaton


def found_triggers(rule_set: RuleSet, where: str) -> list[str]:
    """The triggers of ``rule_set`` that occur in ``where`` (lowercase text)."""
    if rule_set.automaton is not None:
        found = {word for _, word in rule_set.automaton.iter(where)}
        found.update(char for char in rule_set.single_characters if char in where)
        return list(found)
    present = frozenset([char for char in rule_set.gate_characters if char in where])
    triggers = [
        trigger for trigger, gates in rule_set.gated_triggers if gates <= present and trigger in where
    ]
    if triggers and rule_set.longer_triggers:
        # In order of length, so a chain resolves: "setpassword" holds "password", which holds
        # "pass" (one comprehension over the first list missed every link after the first).
        found = set(triggers)
        for trigger, gates, shorter in rule_set.longer_triggers:
            if shorter in found and gates <= present and trigger in where:
                found.add(trigger)
                triggers.append(trigger)
    return triggers


def apply_rules(rule_set: RuleSet, text: str, lowered: str | None = None, scope: str | None = None) -> str:
    """Apply the triggered ``rules`` in order; ``text`` itself comes back when none masked anything.

    ``lowered`` is ``text.lower()`` if the caller has it. Triggers are checked once, on the text
    as it came in (a mask never adds a trigger that matters), or on ``scope``, lowercase text
    that holds every place a rule could match, when the caller knows a smaller one.
    """
    if lowered is None:
        lowered = text.lower()
    where = lowered if scope is None else scope
    found = found_triggers(rule_set, where)
    if not found:
        return text
    active = frozenset().union(*(rule_set.by_trigger[trigger] for trigger in found))
    for index in sorted(active):
        rule = rule_set.rules[index]
        pattern, subject = rule.pattern, text
        if rule.ignorecase is not None:
            if lowered is None:
                lowered = text.lower()
            if len(lowered) == len(text):
                subject = lowered
            else:
                pattern = rule.ignorecase
        edits: list[tuple[int, int, str]] = []
        position = 0
        # search() from where the last replacement ended, not finditer(): a value may end before
        # the pattern's match does (a query parameter stops at "&"), and the next secret can
        # start right there.
        while (match := pattern.search(subject, position)) is not None:
            replaced = rule.replace(text, match)
            if replaced is None or isinstance(replaced, int):
                resume = match.end() if replaced is None else replaced
                position = max(resume, match.start() + 1)
                continue
            position = max(replaced[1], match.start() + 1)
            edits.append((match.start(), position, replaced[0]))
        if edits:
            text, lowered = _edit(text, lowered, edits)
    return text


def _edit(text: str, lowered: str | None, edits: list[tuple[int, int, str]]) -> tuple[str, str | None]:
    """Apply ``edits`` to ``text`` and, when it lines up, to its lowercase copy (which is cheaper
    than lowercasing the whole text again for the next rule)."""
    pieces: list[str] = []
    lowered_pieces: list[str] = []
    aligned = lowered is not None and len(lowered) == len(text)
    end = 0
    for start, stop, replacement in edits:
        pieces += (text[end:start], replacement)
        if aligned:
            lowered_pieces += (lowered[end:start], replacement.lower())  # type: ignore[index]
        end = stop
    pieces.append(text[end:])
    if not aligned:
        return "".join(pieces), None
    lowered_pieces.append(lowered[end:])  # type: ignore[index]
    new_text, new_lowered = "".join(pieces), "".join(lowered_pieces)
    return new_text, new_lowered if len(new_lowered) == len(new_text) else None


def span(text: str, match: re.Match[str], group: int | str = 0) -> str:
    """The original text of ``group`` (``match`` may have run on the lowercased text)."""
    return text[match.start(group) : match.end(group)]


def fixed(mask: str) -> Replace:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int]:
        return mask, match.end()

    return replace


def keep_group(mask: str) -> Replace:
    """Keep group 1 (a URL prefix) and mask the rest of the match."""

    def replace(text: str, match: re.Match[str]) -> tuple[str, int]:
        return span(text, match, 1) + mask, match.end()

    return replace


_DIGIT = re.compile(r"[0-9]")


def char_classes(text: str) -> int:
    """How many of lowercase, uppercase and digits ``text`` has."""
    return (text.upper() != text) + (text.lower() != text) + (_DIGIT.search(text) is not None)


def mixed(replace: Replace, classes: int) -> Replace:
    """Mask only a match that mixes ``classes`` character classes, as random keys do."""

    def checked(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        return replace(text, match) if char_classes(span(text, match)) >= classes else None

    return checked
