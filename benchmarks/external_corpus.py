"""Build the external masking corpus from gitleaks' rule tests and detect-secrets' plugin tests.

    python -m benchmarks.external_corpus --gitleaks DIR --detect-secrets DIR --out DIR
    python -m benchmarks.masking --true-positives DIR/secrets.json --false-positives DIR/benign.json

The sources are third-party and stay outside this repository: point ``--gitleaks`` at a
checkout of github.com/gitleaks/gitleaks (its ``cmd/generate/config/rules/*.go`` hold each
rule's true positives ``tps`` and false positives ``fps``) and ``--detect-secrets`` at one of
github.com/Yelp/detect-secrets (its ``tests/plugins/*_test.py`` parametrize lines with whether
each must be flagged). Neither tool needs to be installed:

- gitleaks' Go is read, not run: string literals, ``+`` and the helpers the rules use
  (``utils.GenerateSampleSecrets``, ``secrets.NewSecret`` over ``utils.AlphaNumeric`` and the
  like) are evaluated here, ``NewSecret`` drawing a random string from its regex with a fixed
  seed. Elements built any other way (``fmt.Sprintf``, variables) are skipped and counted.
- detect-secrets' test modules are executed statement by statement without their imports, and
  the parametrize lists read from the result.

Entries from ``GenerateSampleSecrets`` know their secret; the others only whether the text holds
one, so :func:`tests.masking_corpus.leak` counts them found when any mask appears. Plugins for
things this project does not mask as secrets (public IP addresses) are left out.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sre_constants
import sre_parse
import string
from collections import Counter
from pathlib import Path
from typing import Any

_GO_TOKEN = re.compile(
    r"""(?P<comment>//[^\n]*|/\*.*?\*/)|(?P<raw>`[^`]*`)|(?P<str>"(?:[^"\\\n]|\\.)*")"""
    r"""|(?P<ident>[A-Za-z_][\w.]*)|(?P<punct>\.\.\.|:=|[(){}\[\],+=:])|(?P<other>\S)""",
    re.DOTALL,
)
_SAMPLES = {
    "ini - quoted1": '{i}Token="{s}"',
    "ini - quoted2": '{i}Token = "{s}"',
    "ini - unquoted1": "{i}Token={s}",
    "ini - unquoted2": "{i}Token = {s}",
    "json - string": '{\n    "{i}_token": "{s}"\n}',
    "json - escaped newline in string": '{"config.ini": "{I}_TOKEN={s}\\nBACKUP_ENABLED=true"}',
    "xml - element multiline": "<{i}Token>\n    {s}\n</{i}Token>",
    "yaml - singleline - unquoted": "{i}_token: {s}",
    "yaml - singleline - single quote": "{i}_token: '{s}'",
    "yaml - singleline - double quote": '{i}_token: "{s}"',
    "C#": 'string {i}Token = "{s}";',
    "go - normal": 'var {i}Token string = "{s}"',
    "go - short": '{i}Token := "{s}"',
    "go - backticks": "{i}Token := `{s}`",
    "java": 'String {i}Token = "{s}";',
    "kotlin - notype": 'var {i}Token = "{s}"',
    "php - string concat": '${i}Token .= "{s}"',
    "python - single quote": "{i}Token = '{s}'",
    "python - double quote": '{i}Token = "{s}"',
    "misc - comma operator": 'System.setProperty("{I}_TOKEN", "{s}")',
    "logstash": '  "{i}Token" => "{s}"',
    "make - recursive assignment": '{i}_TOKEN = "{s}"',
    "make - simple assignment": '{i}_TOKEN := "{s}"',
    "make - shell assignment": '{i}_TOKEN ::= "{s}"',
    "make - evaluated shell assignment": '{i}_TOKEN :::= "{s}"',
    "make - conditional assignment": '{i}_TOKEN ?= "{s}"',
}
_PATTERN_HELPERS = {
    "utils.Numeric": "[0-9]{{{}}}",
    "utils.Hex": "[a-f0-9]{{{}}}",
    "utils.AlphaNumeric": "[a-z0-9]{{{}}}",
    "utils.AlphaNumericExtendedShort": "[a-z0-9_-]{{{}}}",
    "utils.AlphaNumericExtended": "[a-z0-9=_\\-]{{{}}}",
    "utils.AlphaNumericExtendedLong": "[a-z0-9\\/=_\\+\\-]{{{}}}",
}
_GO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "0": "\0"}


class _Skip(Exception):
    """An expression this reader does not evaluate."""


def _go_string(token: str) -> str:
    if token[0] == "`":
        return token[1:-1]
    return re.sub(
        r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)",
        lambda m: (
            chr(int(m.group(1)[1:], 16)) if len(m.group(1)) > 1 else _GO_ESCAPES.get(m.group(1), m.group(1))
        ),
        token[1:-1],
    )


def sample(pattern: str, rng: random.Random) -> str:
    """A random string matching ``pattern`` (a Go regex in its Python-compatible subset)."""
    return "".join(_generate(sre_parse.parse(pattern.replace("\\z", "")), rng))


def _generate(parsed: Any, rng: random.Random) -> list[str]:
    out: list[str] = []
    for op, value in parsed:
        if op is sre_constants.LITERAL:
            out.append(chr(value))
        elif op is sre_constants.IN:
            out.append(rng.choice(_class_chars(value)))
        elif op is sre_constants.ANY:
            out.append(rng.choice(string.ascii_letters))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, item = value
            count = low if high is sre_constants.MAXREPEAT or high > low + 8 else rng.randint(low, high)
            for _ in range(max(count, low)):
                out += _generate(item, rng)
        elif op is sre_constants.SUBPATTERN:
            out += _generate(value[-1], rng)
        elif op is sre_constants.BRANCH:
            out += _generate(rng.choice(value[1]), rng)
        elif op is sre_constants.CATEGORY:
            out.append(rng.choice(_category(value)))
        elif op is sre_constants.NOT_LITERAL:
            out.append(rng.choice([c for c in string.ascii_letters if ord(c) != value]))
        # AT (anchors), ASSERT and the like produce nothing
    return out


def _category(category: Any) -> str:
    name = str(category)
    if "DIGIT" in name:
        return string.digits if "NOT" not in name else string.ascii_letters
    if "WORD" in name:
        return string.ascii_letters + string.digits + "_" if "NOT" not in name else "-."
    return " " if "NOT" not in name else string.ascii_letters


def _class_chars(items: Any) -> str:
    chars = ""
    negate = False
    for op, value in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            chars += chr(value)
        elif op is sre_constants.RANGE:
            chars += "".join(chr(code) for code in range(value[0], value[1] + 1))
        elif op is sre_constants.CATEGORY:
            chars += _category(value)
    if negate:
        return "".join(c for c in string.ascii_letters + string.digits if c not in chars)
    return chars or string.ascii_letters


class _GoReader:
    """Evaluates the string expressions of one rule file."""

    def __init__(self, source: str, rng: random.Random) -> None:
        self.tokens = [
            (m.lastgroup, m.group()) for m in _GO_TOKEN.finditer(source) if m.lastgroup != "comment"
        ]
        self.rng = rng
        self.position = 0
        self.skipped = 0

    def peek(self, offset: int = 0) -> str:
        index = self.position + offset
        return self.tokens[index][1] if index < len(self.tokens) else ""

    def take(self) -> tuple[str | None, str]:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise _Skip(text)

    def cases(self) -> list[tuple[str, str, str | None]]:
        """(which list, text, secret) for each element of the rule functions' tps and fps."""
        found: list[tuple[str, str, str | None]] = []
        while self.position < len(self.tokens):
            name = self.peek()
            if name in ("tps", "fps") and self.peek(1) in (":=", "="):
                self.position += 2
                start = self.position
                try:
                    for text, secret in self.list_expression(name):
                        found.append((name, text, secret))
                except (_Skip, IndexError, ValueError):
                    self.skipped += 1
                    self.position = start + 1
                continue
            self.position += 1
        return found

    def list_expression(self, name: str) -> list[tuple[str, str | None]]:
        if self.peek() == "[" and self.peek(1) == "]":
            self.position += 3  # [ ] string
            return self.elements("}")
        if self.peek() == "append":
            self.position += 1
            self.expect("(")
            if self.take()[1] != name:
                raise _Skip("append to another list")
            items: list[tuple[str, str | None]] = []
            while self.peek() == ",":
                self.position += 1
                if self.peek() == ")":
                    break
                items += self.element_or_spread()
            self.expect(")")
            return items
        return self.element_or_spread()

    def elements(self, closing: str) -> list[tuple[str, str | None]]:
        self.expect("{")
        items: list[tuple[str, str | None]] = []
        while self.peek() != closing:
            start = self.position
            try:
                items += self.element_or_spread()
            except (_Skip, ValueError):
                self.skipped += 1
                self.position = start
                self.skip_element()
            if self.peek() == ",":
                self.position += 1
        self.expect(closing)
        return items

    def skip_element(self) -> None:
        depth = 0
        while True:
            token = self.peek()
            if depth == 0 and token in (",", "}"):
                return
            depth += token in "({[" and token != ""
            depth -= token in ")}]" and token != ""
            self.position += 1

    def element_or_spread(self) -> list[tuple[str, str | None]]:
        if self.peek() == "utils.GenerateSampleSecrets":
            self.position += 1
            self.expect("(")
            identifier = self.string_expression()[0]
            self.expect(",")
            secret = self.string_expression()[0]
            self.expect(")")
            if self.peek() == "...":
                self.position += 1
            return [
                (
                    template.replace("{i}", identifier)
                    .replace("{I}", identifier.upper())
                    .replace("{s}", secret),
                    secret,
                )
                for template in _SAMPLES.values()
            ]
        text, secret = self.string_expression()
        return [(text, secret)]

    def string_expression(self) -> tuple[str, str | None]:
        text, secret = self.term()
        while self.peek() == "+":
            self.position += 1
            more, more_secret = self.term()
            text += more
            secret = secret or more_secret
        return text, secret

    def term(self) -> tuple[str, str | None]:
        kind, token = self.take()
        if kind in ("raw", "str"):
            return _go_string(token), None
        if token == "secrets.NewSecret":
            self.expect("(")
            pattern = self.string_expression()[0]
            self.expect(")")
            value = sample(pattern, self.rng)
            return value, value
        if token in _PATTERN_HELPERS:
            self.expect("(")
            size = self.string_expression()[0]
            self.expect(")")
            return _PATTERN_HELPERS[token].format(size), None
        if token == "utils.Hex8_4_4_4_12":
            self.expect("(")
            self.expect(")")
            return "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", None
        if token == "utils.GenerateSampleSecret":
            self.expect("(")
            identifier = self.string_expression()[0]
            self.expect(",")
            secret, _ = self.string_expression()
            self.expect(")")
            return f'{identifier}_api_token = "{secret}"', secret
        if token == "strings.Repeat":
            self.expect("(")
            text = self.string_expression()[0]
            self.expect(",")
            count = int(self.take()[1])
            self.expect(")")
            return text * count, None
        raise _Skip(token)


def gitleaks_cases(root: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    rng = random.Random(13)
    secrets: list[dict[str, Any]] = []
    benign: list[dict[str, Any]] = []
    skipped = 0
    for path in sorted((root / "cmd/generate/config/rules").glob("*.go")):
        if path.name.endswith("_test.go"):
            continue
        reader = _GoReader(path.read_text("utf-8"), rng)
        for which, text, secret in reader.cases():
            entry: dict[str, Any] = {
                "text": text,
                "kind": "gitleaks rule test",
                "source": f"gitleaks {path.stem}",
            }
            if which == "tps":
                if secret is not None and secret in text:
                    entry["secret"] = secret
                secrets.append(entry)
            else:
                benign.append(
                    {"text": text, "kind": "gitleaks rule test", "why": f"gitleaks {path.stem} fps"}
                )
        skipped += reader.skipped
    return secrets, benign, skipped


#: detect-secrets plugins whose findings this project does not count as secrets.
_NOT_SECRETS = frozenset({"ip_public_test.py", "base_test.py"})


def detect_secrets_cases(root: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    secrets: list[dict[str, Any]] = []
    benign: list[dict[str, Any]] = []
    skipped = 0
    for path in sorted((root / "tests/plugins").glob("*_test.py")):
        if path.name in _NOT_SECRETS:
            continue
        module = ast.parse(path.read_text("utf-8"))
        namespace: dict[str, Any] = {"base64": __import__("base64"), "randint": random.Random(7).randint}
        for statement in module.body:
            if isinstance(statement, (ast.Assign, ast.FunctionDef)):
                try:
                    exec(compile(ast.Module([statement], []), str(path), "exec"), namespace)
                except Exception:
                    skipped += 1
        for node in ast.walk(module):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize"):
                continue
            try:
                names = [
                    name.strip()
                    for name in eval(compile(ast.Expression(node.args[0]), "", "eval"), namespace).split(",")
                ]
                values = list(eval(compile(ast.Expression(node.args[1]), "", "eval"), namespace))
            except Exception:
                skipped += 1
                continue
            source = f"detect-secrets {path.stem}"
            for row in values:
                row = row if isinstance(row, tuple) else (row,)
                fields = dict(zip(names, row, strict=False))
                line = (
                    fields.get("line")
                    or fields.get("payload")
                    or next((v for v in row if isinstance(v, str)), None)
                )
                if not isinstance(line, str) or not line.strip():
                    continue
                flag = fields.get(
                    "should_flag", fields.get("expected_secret", fields.get("is_secret", "absent"))
                )
                if flag == "absent":
                    flag = next((v for v in row if isinstance(v, bool)), None)
                if flag is None or flag is False:
                    benign.append({"text": line, "kind": "detect-secrets plugin test", "why": source})
                else:
                    entry = {"text": line, "kind": "detect-secrets plugin test", "source": source}
                    if isinstance(flag, str) and flag in line:
                        entry["secret"] = flag
                    secrets.append(entry)
    return secrets, benign, skipped


def _dedupe(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    unique = []
    for case in cases:
        if case["text"] not in seen:
            seen.add(case["text"])
            unique.append(case)
    return unique


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gitleaks", type=Path, required=True)
    parser.add_argument("--detect-secrets", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    gl_secrets, gl_benign, gl_skipped = gitleaks_cases(options.gitleaks)
    ds_secrets, ds_benign, ds_skipped = detect_secrets_cases(options.detect_secrets)
    secrets = _dedupe(gl_secrets + ds_secrets)
    secret_texts = {case["text"] for case in secrets}
    benign = [case for case in _dedupe(gl_benign + ds_benign) if case["text"] not in secret_texts]
    options.out.mkdir(parents=True, exist_ok=True)
    for name, cases in (("secrets.json", secrets), ("benign.json", benign)):
        (options.out / name).write_text(
            json.dumps({"cases": cases}, indent=1, ensure_ascii=False) + "\n", "utf-8"
        )
    kinds = Counter(case["kind"] for case in secrets + benign)
    print(
        f"{len(secrets)} secrets, {len(benign)} benign strings ({dict(kinds)}); "
        f"skipped: gitleaks {gl_skipped} expressions, detect-secrets {ds_skipped} statements"
    )


if __name__ == "__main__":
    main()
