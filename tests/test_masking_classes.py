"""The classes the first red-team round left open (docs/security.md, "Red-team rounds"), one test
each: the secret disappears whole behind its mask, the text around it stays as it was, and the
look-alikes of the class are left alone."""

from __future__ import annotations

import pytest

from celery_jobs_ext.masking import mask_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("xfreerdp /v:h /u:admin /p:Xk9-pQ2mzL /f", "xfreerdp /v:h /u:admin /p:***PASSWORD*** /f"),
        ('xfreerdp /p:"Xk9 pQ2" /v:h', 'xfreerdp /p:"***PASSWORD***" /v:h'),
        (
            "xfreerdp /gateway:g:gw,u:bob,p:Gw4yP4ss9 /v:h",
            "xfreerdp /gateway:g:gw,u:bob,p:***PASSWORD*** /v:h",
        ),
        ("net use \\\\fs\\s Zq8wRt5 /user:bob", "net use \\\\fs\\s ***PASSWORD*** /user:bob"),
        ("net use Z: \\\\fs\\s /user:bob Zq8wRt5", "net use Z: \\\\fs\\s /user:bob ***PASSWORD***"),
        ("net user svc Wint3r!24 /add", "net user svc ***PASSWORD*** /add"),
        (
            "mc alias set m https://m:9000 minio Sup3rS3cret",
            "mc alias set m https://m:9000 minio ***SECRET***",
        ),
        (
            "npm config set //r.example/:_password QmFzcw==",
            "npm config set //r.example/:_password ***PASSWORD***",
        ),
        ("poetry config http-basic.repo ci Pw-f0r-Repo", "poetry config http-basic.repo ci ***PASSWORD***"),
        ("gh secret set K --body 'r4nd0m-v4l'", "gh secret set K --body '***SECRET***'"),
    ],
)
def test_command_line_passwords_outside_the_dash_grammar_are_masked(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sqlplus scott/Tiger123@orcl", "sqlplus scott/***PASSWORD***@orcl"),
        ("sqlplus -s sys/Pw1@//db:1521/X @r.sql", "sqlplus -s sys/***PASSWORD***@//db:1521/X @r.sql"),
        (
            "rman target sys/Rm4n@p catalog rc/C4t@r",
            "rman target sys/***PASSWORD***@p catalog rc/***PASSWORD***@r",
        ),
        ("SQL> connect app/S3cr3t_Own@pdb2", "SQL> connect app/***PASSWORD***@pdb2"),
    ],
)
def test_oracle_logon_loses_its_password_and_keeps_user_and_database(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "docker login -u b --password-stdin <<< Hx7vPq2",
            "docker login -u b --password-stdin <<< ***PASSWORD***",
        ),
        ("mysql -u root --password <<< 'Hunter2Pw'", "mysql -u root --password <<< '***PASSWORD***'"),
        (
            "echo 'Hx7vPq2' | docker login --password-stdin",
            "echo '***PASSWORD***' | docker login --password-stdin",
        ),
        (
            "printf '%s' Qz8-pLm | gh auth login --with-token",
            "printf '%s' ***PASSWORD*** | gh auth login --with-token",
        ),
        ("echo 'deploy:Ch4ng3d!' | chpasswd", "echo 'deploy:***PASSWORD***' | chpasswd"),
    ],
)
def test_a_secret_fed_on_standard_input_is_masked(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "net use Z: \\\\fs\\share /persistent:yes",
        "git config --global credential.helper store",
        "echo $PW | docker login --password-stdin",
        "echo hello | grep x",
        "grep -c ERROR <<< hello",
        "sqlplus / as sysdba",
        "Failed to connect app/api after 3 attempts",
        "gh secret set NAME < secret.txt",
        "xfreerdp /v:host /u:bob /cert:ignore",
    ],
)
def test_command_lines_without_a_secret_are_left_alone(text: str) -> None:
    assert mask_text(text) is text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=pa;ss=word9", "password=***PASSWORD***"),
        ("x=1 password=pa,ss=w0 y=2", "x=1 password=***PASSWORD*** y=2"),
        ("Server=db;Password=Pa;ss;Timeout=3", "Server=db;Password=***PASSWORD***;Timeout=3"),
        ("f(user=1,password=ab;c,c=2)", "f(user=1,password=***PASSWORD***,c=2)"),
        ("password=Tr0ub4dor&3x&user=bob", "password=***PASSWORD***&user=bob"),
    ],
)
def test_a_bare_value_runs_to_the_separator_of_the_list_its_key_is_in(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("secret: prod/abcdefghjk-lmnpqrstuv", "secret: ***SECRET***"),
        ("token=https://hooks.example.com/hook/8f3kQ2mZx9Lp", "token=***TOKEN***"),
        ("token=https://hooks.slack.com/services/T0/B0/XXXXXXXXXXXXXXXX", "token=***TOKEN***"),
        ("secret: prod/db-credentials", "secret: prod/db-credentials"),
        (
            "token_url=https://auth.example.com/oauth2/token",
            "token_url=https://auth.example.com/oauth2/token",
        ),
    ],
)
def test_a_generated_part_beats_a_resource_or_url_shape_under_a_secret_key(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the password is Tr0ub4dor3x.", "the password is ***PASSWORD***."),
        ('your password is "Blue Mango 42"', 'your password is "***PASSWORD***"'),
        ("the api key was AbCdEfGhIjKlMnOp", "the api key was ***API_KEY***"),
        ("signing key " + "9f86d0" * 8, "signing key ***SECRET***"),
        ("The password is incorrect", "The password is incorrect"),
        ("if token is None:", "if token is None:"),
        ("cache key " + "3f9c2a" * 6, "cache key " + "3f9c2a" * 6),
    ],
)
def test_a_secret_in_prose_is_masked_and_prose_about_secrets_is_kept(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("?a=1&password%3DHx7vPq2%26b%3D2", "?a=1&password%3D***PASSWORD***%26b%3D2"),
        ('"password\\u003dHx7vPq2\\u0026u\\u003db"', '"password\\u003d***PASSWORD***\\u0026u\\u003db"'),
        ("%22token%22%3A%22Zk3mQ9pL2x%22%2C", "%22token%22%3A%22***TOKEN***%22%2C"),
        ("?next=%2F%3Fpassword%3D%24%7BPW%7D", "?next=%2F%3Fpassword%3D%24%7BPW%7D"),
    ],
)
def test_a_value_after_an_escaped_separator_is_masked_to_its_escaped_delimiter(
    text: str, expected: str
) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user\tbob\npassword\tHx7 vPq2\nhost\tdb", "user\tbob\npassword\t***PASSWORD***\nhost\tdb"),
        ("id\tpassword\temail", "id\tpassword\temail"),
        ('password="Hx7v\nPq2mLs" next=1', 'password="***PASSWORD***" next=1'),
        ("password=" + "Ab1x" * 700 + " tail", "password=***PASSWORD*** tail"),
        ('token="' + "Zk9-" * 600 + '" ok', 'token="***TOKEN***" ok'),
    ],
)
def test_tab_separated_long_and_multi_line_values_are_masked_whole(text: str, expected: str) -> None:
    assert mask_text(text) == expected


PPK = (
    "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: k\nPublic-Lines: 1\n"
    "AAAAC3NzaC1lZDI1NTE5AAAAIHsd8k2Lm0PqRsTuVwXyZaBcDeFgHiJkLmNoPqRs\nPrivate-Lines: 1\n"
    "AAAAIGx2k9Lm3PqRsTuVwXyZaBcDeFgHiJkLmNoPqRsTuVwXy\nPrivate-MAC: " + "5f3e8a2b" * 8 + "\n"
)
SPKI_RSA = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onL"
)
PKCS8_RSA = (
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dV"
)


def test_a_putty_key_file_loses_its_private_lines_and_mac_and_keeps_its_public_half() -> None:
    masked = mask_text(PPK)
    assert masked.endswith("Private-Lines: 1\n***PRIVATE_KEY***\n")
    assert "AAAAC3NzaC1lZDI1NTE5AAAAIHsd8k2Lm0PqRsTuVwXyZaBcDeFgHiJkLmNoPqRs" in masked


def test_a_bare_public_key_is_kept_and_a_bare_private_key_of_the_same_algorithm_is_masked() -> None:
    assert mask_text(SPKI_RSA) is SPKI_RSA
    assert mask_text(PKCS8_RSA) == "***SECRET***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pass=41 fail=0 skip=2", "pass=41 fail=0 skip=2"),
        ("pass=1234", "pass=***PASSWORD***"),
        ("use bearer abcdefghijklmnopqrstuvwxyzabcd", "use bearer ***TOKEN***"),
        ("Bearer internationalization", "Bearer internationalization"),
    ],
)
def test_test_counts_are_kept_and_lowercase_bearer_tokens_are_masked(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gitlabToken := `glcbt-im4pt_wrj5k`", "gitlabToken := `***TOKEN***`"),
        ('$apiToken .= "k3j9x2m1q8";', '$apiToken .= "***TOKEN***";'),
        ("TOKEN ?= k3j9x2m1q8", "TOKEN ?= ***TOKEN***"),
        ('var apiToken string = "k3j9x2m1q8"', 'var apiToken string = "***TOKEN***"'),
        ("<apiToken>\n  k3j9x2m1q8\n</apiToken>", "<apiToken>\n  ***TOKEN***\n</apiToken>"),
        ('token="dp.pt.jo4hcjlw35dgrhkx"', 'token="***TOKEN***"'),
        ("-ClientSecret 'Zk3mQ9pL2xWv'", "-ClientSecret '***SECRET***'"),
        ('if (api_key != "Zk3mQ9pL2x") {', 'if (api_key != "***API_KEY***") {'),
        ("if password == other_password:", "if password == other_password:"),
        ("token = self.session.token", "token = self.session.token"),
    ],
)
def test_assignment_operators_and_declarations_of_many_languages(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_triggers_found_by_the_automaton_and_by_the_scans_mask_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyahocorasick is optional: without it each trigger is looked for with ``in``; the masks
    must not depend on which one ran."""
    from celery_jobs_ext.masking import engine
    from celery_jobs_ext.masking.keys import DEFAULT_MASK_KEYS
    from celery_jobs_ext.masking.text import Masker
    from tests.masking_corpus import FALSE_POSITIVES_FILE, TRUE_POSITIVES_FILE, load

    accelerated = Masker(DEFAULT_MASK_KEYS)
    monkeypatch.setattr(engine, "_ahocorasick", None)
    scanning = Masker(DEFAULT_MASK_KEYS)
    assert scanning.always.automaton is None
    texts = [case["text"] for path in (TRUE_POSITIVES_FILE, FALSE_POSITIVES_FILE) for case in load(path)]
    assert texts
    for text in texts:
        assert accelerated.mask_text(text) == scanning.mask_text(text), text


def test_a_discord_bot_token_is_masked_by_the_user_id_its_first_part_encodes() -> None:
    token = "MzE0MTU5MjY1MzU4OTc5MzIz.zwZWdf.RLgxL_Z1bvxbT7WrKL8ozFiA2au"
    assert mask_text(f"client.run('{token}')") == "client.run('***API_KEY***')"
    dotted = "com.example.MyApplicationServiceImpl.method.somethingElseEntirelyHereX"
    assert mask_text(dotted) is dotted


def test_a_secret_store_value_holding_an_equals_sign_is_masked_once() -> None:
    assert (
        mask_text('gh secret set K --body "a=b1x9Zq" --repo o/r')
        == 'gh secret set K --body "***SECRET***" --repo o/r'
    )
