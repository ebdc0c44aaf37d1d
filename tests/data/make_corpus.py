# ruff: noqa: E501 - corpus templates read best on one line
"""Regenerate the generated part of the masking corpus (secrets_*.json) from the shapes below.

    python tests/data/make_corpus.py

Every credential is fake: random characters (seeded, so the files are stable) in the format a
vendor documents or a tool's manual describes. Each entry names its ``kind`` (where the shape
comes from: a vendor's token documentation, gitleaks' or detect-secrets' rules and fixtures, a
CLI manual, a file format, real log and code shapes) and its ``source``. Hand-written entries
(those without ``"generated": true``) are kept as they are; generated ones are replaced.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).parent
rng = random.Random(13)

UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UPPER + LOWER + DIGITS
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"


def rand(alphabet: str, size: int) -> str:
    """Random characters that mix the alphabet's classes, as generated keys do."""
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(size))
        classes = sum(any(c in cls for c in value) for cls in (UPPER, LOWER, DIGITS))
        needed = sum(any(c in cls for c in alphabet) for cls in (UPPER, LOWER, DIGITS))
        if classes >= min(needed, 3 if size >= 12 else 2):
            return value


def password() -> str:
    words = ["Tr0ub4dor", "Winter", "S3cure", "Blue", "Kx9", "Qwe", "Mango"]
    symbols = "&;:,([{<!@#$%^*~/?=+"
    return rng.choice(words) + rng.choice(symbols) + rand(ALNUM, rng.randint(4, 10))


TRUE: list[dict[str, str]] = []
FALSE: list[dict[str, str]] = []


def secret(text: str, value: str, label: str, kind: str, source: str) -> None:
    assert value in text, (text, value)
    TRUE.append(
        {"label": label, "text": text, "secret": value, "kind": kind, "source": source, "generated": True}
    )


def benign(text: str, kind: str, why: str) -> None:
    FALSE.append({"text": text, "kind": kind, "why": why, "generated": True})


# -- vendor token formats (vendor docs; gitleaks config/gitleaks.toml) ------------------------------

VENDORS = [
    ("ghp_" + rand(ALNUM, 36), "GitHub classic PAT (ghp_ + 36)"),
    ("gho_" + rand(ALNUM, 36), "GitHub OAuth token"),
    ("ghs_" + rand(ALNUM, 36), "GitHub app installation token"),
    ("github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59), "GitHub fine-grained PAT"),
    ("glpat-" + rand(ALNUM + "_-", 20), "GitLab PAT"),
    ("glptt-" + rand(HEX, 40), "GitLab pipeline trigger token"),
    ("glcbt-" + rand(ALNUM, 2) + "_" + rand(ALNUM + "_-", 20), "GitLab CI job token (glcbt-)"),
    ("GR1348941" + rand(ALNUM + "_-", 20), "GitLab runner registration token (GR1348941)"),
    ("glrt-" + rand(ALNUM + "_-", 20), "GitLab runner authentication token"),
    ("gldt-" + rand(ALNUM + "_-", 20), "GitLab deploy token"),
    ("shpat_" + rand(HEX, 32), "Shopify admin API access token"),
    ("shpss_" + rand(HEX, 32), "Shopify shared secret"),
    ("shpca_" + rand(HEX, 32), "Shopify custom app token"),
    ("dapi" + rand(HEX, 32), "Databricks PAT (dapi + 32 hex)"),
    ("dapi" + rand(HEX, 32) + "-2", "Databricks PAT with suffix"),
    ("key-" + rand(HEX, 32), "Mailgun private API key (key-)"),
    (rand(ALNUM, 3) + "8Q~" + rand(ALNUM + "_~.-", 34), "Azure AD client secret (Q~)"),
    ("xoxb-" + rand(DIGITS, 12) + "-" + rand(DIGITS, 13) + "-" + rand(ALNUM, 24), "Slack bot token"),
    (
        "xoxp-" + rand(DIGITS, 12) + "-" + rand(DIGITS, 12) + "-" + rand(DIGITS, 13) + "-" + rand(HEX, 32),
        "Slack user token",
    ),
    ("sk_live_" + rand(ALNUM, 24), "Stripe live secret key"),
    ("rk_live_" + rand(ALNUM, 24), "Stripe restricted key"),
    ("whsec_" + rand(ALNUM, 32), "Stripe webhook signing secret"),
    ("AIza" + rand(ALNUM + "_-", 35), "Google API key"),
    ("sk-proj-" + rand(ALNUM + "_-", 48), "OpenAI project key"),
    ("sk-ant-api03-" + rand(ALNUM + "_-", 93) + "AA", "Anthropic API key"),
    ("SG." + rand(ALNUM + "_-", 22) + "." + rand(ALNUM + "_-", 43), "SendGrid API key"),
    ("npm_" + rand(ALNUM, 36), "npm access token"),
    ("pypi-AgEIcHlwaS5vcmc" + rand(ALNUM + "_-", 60), "PyPI API token"),
    ("hf_" + rand(ALNUM, 34), "Hugging Face token"),
    ("AKIA" + rand(UPPER + DIGITS, 16), "AWS access key id"),
    ("ASIA" + rand(UPPER + DIGITS, 16), "AWS temporary access key id"),
    ("dop_v1_" + rand(HEX, 64), "DigitalOcean PAT"),
    ("hvs." + rand(ALNUM + "_-", 90), "HashiCorp Vault service token"),
    ("dp.pt." + rand(ALNUM, 43), "Doppler personal token"),
    ("lin_api_" + rand(ALNUM, 40), "Linear API key"),
    ("PMAK-" + rand(HEX, 24) + "-" + rand(HEX, 34), "Postman API key"),
    ("pul-" + rand(HEX, 40), "Pulumi access token"),
    ("glsa_" + rand(ALNUM, 32) + "_" + rand(HEX, 8), "Grafana service account token"),
    ("gsk_" + rand(ALNUM, 52), "Groq API key"),
    ("r8_" + rand(ALNUM, 37), "Replicate API token"),
    ("sbp_" + rand(HEX, 40), "Supabase access token"),
    ("NRAK-" + rand(UPPER + DIGITS, 27), "New Relic user API key"),
    (
        "AGE-SECRET-KEY-1" + "".join(rng.choice("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L") for _ in range(58)),
        "age secret key",
    ),
    ("SK" + rand(HEX, 32), "Twilio API key SID"),
]
CONTEXTS = [
    ("{v}", "bare token"),
    ("export SERVICE_CREDENTIAL={v}", "shell export"),
    ("{{'config': {{'value': '{v}'}}}}", "dict repr, neutral key"),
    ('"{v}"', "JSON string"),
    ("INFO retrying with {v} after 401", "log line"),
]
for value, source in VENDORS:
    for template, where in rng.sample(CONTEXTS, 3):
        label = "AWS_KEY" if value.startswith(("AKIA", "ASIA")) else "API_KEY"
        if "Q~" in value:
            label = "SECRET"
        secret(
            template.format(v=value), value, label, "vendor token docs / gitleaks rule", f"{source}, {where}"
        )

# Twilio: an account SID beside a 32-hex auth token, as SDK calls write them.
for _ in range(4):
    sid, token = "AC" + rand(HEX, 32), rand(HEX, 32)
    secret(
        f'client = Client("{sid}", "{token}")',
        token,
        "API_KEY",
        "vendor SDK docs",
        "Twilio SID and auth token pair",
    )

# -- command lines (the tools' manuals) -----------------------------------------------------------

CLI = [
    ("mysql -h db -u root -p{v} shop", "mysql(1): -ppassword", "PASSWORD"),
    ("mysqldump --user=app --password={v} shop", "mysqldump --password=", "PASSWORD"),
    ("mysql --password '{v}' -e 'select 1'", "--password value", "PASSWORD"),
    ("sshpass -p '{v}' ssh deploy@web-1", "sshpass(1) -p", "PASSWORD"),
    ("sshpass -p{v} scp a b:", "sshpass(1) -pPASSWORD", "PASSWORD"),
    ("curl -u deploy:{v} https://api.example.com/v1", "curl(1) -u user:password", "PASSWORD"),
    ("curl --user 'ci:{v}' -X POST https://x.example/hook", "curl(1) --user", "PASSWORD"),
    ("curl -x proxy:3128 --proxy-user bob:{v} https://x.example", "curl(1) --proxy-user", "PASSWORD"),
    ("redis-cli -h cache -a {v} ping", "redis-cli -a", "PASSWORD"),
    ("docker login -u bot -p {v} registry.example.com", "docker login -p", "PASSWORD"),
    ("sqlcmd -S db -U sa -P {v}", "sqlcmd -P", "PASSWORD"),
    ("ldapsearch -x -D cn=admin,dc=example -w {v} -b dc=example", "ldapsearch -w", "PASSWORD"),
    ("htpasswd -b /etc/nginx/.htpasswd alice {v}", "htpasswd -b", "PASSWORD"),
    ("smbclient //files/share -U corp/bob%{v}", "smbclient -U user%password", "PASSWORD"),
    ("mongosh --host db -u admin -p {v}", "mongosh -p", "PASSWORD"),
    ("zip -P {v} backup.zip dump.sql", "zip -P", "PASSWORD"),
    ("7z a -p{v} backup.7z dump.sql", "7z -pPASSWORD", "PASSWORD"),
    ("openssl enc -aes-256-cbc -k {v} -in a -out b", "openssl enc -k", "PASSWORD"),
    ("openssl pkcs12 -export -passout pass:{v} -out k.p12", "openssl -passout pass:", "PASSWORD"),
    ("keytool -importcert -storepass {v} -keystore ks.jks", "keytool -storepass", "PASSWORD"),
    ("app --api-key {v} --verbose", "--api-key value", "API_KEY"),
    ("gitlab-runner register --registration-token {v}", "--registration-token", "TOKEN"),
    ("svn checkout --username bob --password {v} https://svn.example", "svn --password", "PASSWORD"),
    ("celery -A proj worker --broker-password={v}", "--name=value option", "PASSWORD"),
    ("ipmitool -I lanplus -H bmc -U admin -P {v} power status", "ipmitool -P", "PASSWORD"),
    ("vault login -method=userpass username=ops password={v}", "vault login password=", "PASSWORD"),
    ("wget --http-password={v} https://x.example/f", "wget --http-password", "PASSWORD"),
    ("['mysql', '-uroot', '-p{v}', 'shop']", "argv repr", "PASSWORD"),
    ("['sshpass', '-p', '{v}', 'ssh', 'web-1']", "argv repr", "PASSWORD"),
    ("['app', '--token', '{v}']", "argv repr", "TOKEN"),
]
for template, source, label in CLI:
    for _ in range(2):
        value = rand(ALNUM, rng.randint(10, 20)) + rng.choice("!#%^*+=_.")
        secret(template.format(v=value), value, label, "CLI manual", source)

# netrc and .pgpass (file formats)
for _ in range(5):
    pw = rand(ALNUM, 16)
    secret(
        f"machine api.example.com login deploy password {pw}",
        pw,
        "PASSWORD",
        "file format (netrc)",
        "netrc one line",
    )
    pw = rand(ALNUM, 16)
    secret(
        f"machine git.example.com\n  login ci\n  password {pw}\n",
        pw,
        "PASSWORD",
        "file format (netrc)",
        "netrc lines",
    )
    pw = rand(ALNUM + "!@#", 14)
    secret(f"db.internal:5432:shop:app:{pw}", pw, "PASSWORD", "file format (.pgpass)", ".pgpass entry")
    pw = rand(ALNUM, 14)
    secret(f"*:*:*:postgres:{pw}\n", pw, "PASSWORD", "file format (.pgpass)", ".pgpass wildcard entry")

# password hashes (htpasswd, /etc/shadow)
for _ in range(3):
    h = "$apr1$" + rand(ALNUM, 8) + "$" + rand(ALNUM + "./", 22)
    secret(f"alice:{h}", h, "PASSWORD", "file format (htpasswd)", "htpasswd $apr1$ hash")
    h = "$6$" + rand(ALNUM, 16) + "$" + rand(ALNUM + "./", 86)
    secret(f"root:{h}:19700:0:99999:7:::", h, "PASSWORD", "file format (shadow)", "sha512-crypt hash")
    h = "$2b$12$" + rand(ALNUM + "./", 53)
    secret(f"hashed_pw = '{h}'", h, "PASSWORD", "detect-secrets fixture shape", "bcrypt hash")

# -- secret-named keys (detect-secrets keyword plugin; real configs) -------------------------------

KEYS = [
    ("pw", "PASSWORD"),
    ("pwd", "PASSWORD"),
    ("pass", "PASSWORD"),
    ("passphrase", "PASSWORD"),
    ("DB_PASS", "PASSWORD"),
    ("MYSQL_PWD", "PASSWORD"),
    ("SMTP_PASSWORD", "PASSWORD"),
    ("userPw", "PASSWORD"),
    ("credentials", "SECRET"),
    ("key", "SECRET"),
    ("sig", "SECRET"),
    ("signature", "SECRET"),
    ("signing_key", "SECRET"),
    ("master_key", "SECRET"),
    ("encryption_key", "SECRET"),
    ("private_key", "PRIVATE_KEY"),
    ("jwt", "JWT"),
    ("otp", "PASSWORD"),
    ("pin", "PASSWORD"),
    ("APP_SECRET", "SECRET"),
    ("WEBHOOK_SECRET", "SECRET"),
    ("Passwort", "PASSWORD"),
    ("db_passwort", "PASSWORD"),
    ("contraseña", "PASSWORD"),
    ("mot_de_passe", "PASSWORD"),
    ("CONTRASEÑA", "PASSWORD"),
    ("AccountKey", "SECRET"),
    ("hmac_key", "SECRET"),
    ("X-Api-Key", "API_KEY"),
    ("access_token", "TOKEN"),
    ("refreshToken", "TOKEN"),
    ("auth_token", "TOKEN"),
    ("SESSION_COOKIE", "TOKEN"),
    ("client_secret", "SECRET"),
    ("api_secret", "SECRET"),
    ("appid", "API_KEY"),
    ("DJANGO_SECRET_KEY", "SECRET"),
    ("ssh_passphrase", "PASSWORD"),
    ("vault_token", "TOKEN"),
    ("bot_token", "TOKEN"),
]
FORMS = [
    ("{k}={v}", "key=value"),
    ("{k}: {v}", "YAML / header"),
    ('"{k}": "{v}"', "JSON"),
    ("{{'{k}': '{v}'}}", "dict repr"),
    ("{k} = '{v}'", "Python assignment"),
    ("'{k}' => '{v}'", "PHP / Ruby hash"),
    ("<{k}>{v}</{k}>", "XML element"),
    ("{k}:={v}", "Go := / Makefile"),
]
for key, label in KEYS:
    for template, form in rng.sample(FORMS, 3):
        if "<" in template and not key.replace("_", "").isalnum():
            continue
        value = password() if label == "PASSWORD" else rand(ALNUM, rng.randint(16, 40))
        if template.startswith(("<", "{")) or '"' in template or "'" in template:
            value = value.replace("'", "").replace('"', "").replace("<", "").replace("{", "").replace("}", "")
        secret(
            template.format(k=key, v=value),
            value,
            label,
            "detect-secrets keyword plugin / real configs",
            f"{key}, {form}",
        )

# whole values: the field's syntax delimits them, not the first symbol
WHOLE = [
    ("password=Tr0ub4dor&3x", "Tr0ub4dor&3x", "PASSWORD"),
    ("password=Tr0ub4dor&3x&user=bob", "Tr0ub4dor&3x", "PASSWORD"),
    ("PASSWORD=[abc]xyz", "[abc]xyz", "PASSWORD"),
    ("Authorization: Bearer abc:def:ghi", "abc:def:ghi", "TOKEN"),
    ("password=a;b;c rest", "a;b;c", "PASSWORD"),
    ("secret=x,y,z", "x,y,z", "SECRET"),
    ("token=(abc)def", "(abc)def", "TOKEN"),
    ("pwd={curly}brace", "{curly}brace", "PASSWORD"),
    ("password=pa:ss:wo:rd", "pa:ss:wo:rd", "PASSWORD"),
    ("password=<angle>bracket9", "<angle>bracket9", "PASSWORD"),
    ("f(user='bob', password=Xy7!ab&cd)", "Xy7!ab&cd", "PASSWORD"),
    ("Server=db;Database=shop;User Id=app;Password=Pa;ss&w0rd!;", "Pa;ss&w0rd!", "PASSWORD"),
    ("mount -o username=bob,password=Mnt#Pw9,domain=CORP //srv/s /mnt", "Mnt#Pw9", "PASSWORD"),
    ("PGPASSWORD='quoted value 9' psql -h db", "quoted value 9", "PASSWORD"),
    ('{"password": "with \\"escaped\\" quotes9"}', 'with \\"escaped\\" quotes9', "PASSWORD"),
    ("Cookie: sessionid=9fj3k2l1; csrftoken=Zk3kq9XyZ", "9fj3k2l1; csrftoken=Zk3kq9XyZ", "TOKEN"),
    ("api_key=AbC123:xyz/890+qq==", "AbC123:xyz/890+qq==", "API_KEY"),
    ("password=p4ss word", "p4ss", "PASSWORD"),
    ("password: 'it''s-quoted9'", "it", "PASSWORD"),
    ("passwd=ends-with-bracket]", "ends-with-bracket]", "PASSWORD"),
    ("passphrase: correct horse battery staple", "correct horse battery staple", "PASSWORD"),
    ("DB_PASSWORD: two words here\nDB_USER: app", "two words here", "PASSWORD"),
    ("SMTP_PASSWORD: spaced pass phrase 9", "spaced pass phrase 9", "PASSWORD"),
]
for text, value, label in WHOLE:
    secret(text, value, label, "partial-leak regression (issue 13)", "value masked whole")

# query-string parameters
for name, label in [
    ("pwd", "PASSWORD"),
    ("appid", "API_KEY"),
    ("sig", "SECRET"),
    ("X-Amz-Signature", "SECRET"),
    ("access_token", "TOKEN"),
    ("api_key", "API_KEY"),
    ("key", "SECRET"),
    ("client_secret", "SECRET"),
    ("X-Amz-Security-Token", "TOKEN"),
    ("token", "TOKEN"),
]:
    value = rand(HEX, 64) if "Amz-Sig" in name else rand(ALNUM, 24)
    secret(
        f"GET https://api.example.com/v1/data?q=weather&{name}={value}&units=metric HTTP/1.1",
        value,
        label,
        "vendor API docs (query authentication)",
        f"query parameter {name}",
    )
for _ in range(3):
    sig = quote(base64.b64encode(rng.randbytes(32)).decode(), safe="")
    secret(
        f"https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2025-01-01T00%3A00Z&sr=b&sp=r&sig={sig}",
        sig,
        "SECRET",
        "Azure SAS docs",
        "SAS sig= parameter",
    )

# URL passwords with #, /, @, JSON-escaped, percent-encoded inside another URL
for _ in range(3):
    for pw, source in [
        (f"pa#{rand(ALNUM, 8)}", "password with #"),
        (f"pa/{rand(ALNUM, 8)}", "password with /"),
        (f"p@{rand(ALNUM, 8)}", "password with @"),
        (f"{rand(ALNUM, 6)}?{rand(ALNUM, 4)}", "password with ?"),
    ]:
        secret(
            f"DATABASE_URL=postgres://app:{pw}@db.internal:5432/shop",
            pw,
            "PASSWORD",
            "RFC 3986 userinfo (unencoded, as written)",
            source,
        )
    pw = rand(ALNUM, 14)
    secret(
        f'{{"url": "postgres:\\/\\/app:{pw}@db\\/shop"}}',
        pw,
        "PASSWORD",
        "JSON-escaped URL",
        "postgres:\\/\\/u:pw@h",
    )
    pw = rand(ALNUM, 14)
    secret(
        f"https://sso.example.com/login?next=redis%3A%2F%2Fapp%3A{pw}%40cache%3A6379",
        pw,
        "PASSWORD",
        "percent-encoded URL in a URL",
        "URL inside a query parameter",
    )
    pw = rand(ALNUM, 14)
    secret(f"amqp://guest:{pw}@rabbit:5672//", pw, "PASSWORD", "Celery broker URL", "amqp URL")

# auth schemes and Basic credentials
for _ in range(4):
    user_pass = base64.b64encode(f"svc-{rand(LOWER, 5)}:{rand(ALNUM, 12)}".encode()).decode()
    secret(f"Authorization: Basic {user_pass}", user_pass, "TOKEN", "RFC 7617", "Basic header")
    user_pass = base64.b64encode(f"deploy:{rand(ALNUM, 12)}".encode()).decode()
    secret(
        f"credentials: {user_pass}",
        user_pass,
        "SECRET",
        "RFC 7617 credentials in config",
        "base64 user:pass after credentials:",
    )
    token = rand(ALNUM + "-._~", 40)
    secret(f"-H 'Authorization: Bearer {token}'", token, "TOKEN", "RFC 6750", "bearer in curl header")
    token = rand(ALNUM, 40)
    secret(f"Authorization: Token {token}", token, "TOKEN", "DRF TokenAuthentication docs", "Token scheme")

# -- benign look-alikes ----------------------------------------------------------------------------

PROSE = [
    "Send it in an Authorization: Bearer header.",
    "The API expects an Authorization: Bearer token on every call.",
    "Use Basic authentication only over TLS.",
    "Bearer tokens expire after one hour.",
    "Set the password in the vault, never in the repository.",
    "The token is refreshed when it expires.",
    "pass the session to the worker",
    "If the password is wrong the login fails.",
    "Rotate the signing key every 90 days.",
    "Cookies are disabled in this browser.",
    "The key is the task id; the value is its result.",
    "Pass --password-stdin to read it from standard input.",
    "Enter your PIN at the prompt.",
    "See the section on API keys in the admin guide.",
    "tokens are counted per request",
]
for text in PROSE:
    benign(text, "documentation prose", "prose about credentials")

STATUS = [
    "auth: failed",
    "auth: ok",
    "session: 4",
    "cookie: enabled",
    "Redis session: connected",
    "token: expired",
    "password: required",
    "password: missing",
    "auth=none",
    "session=active",
    "cookie: disabled",
    "token: refreshed",
    "secret: rotated",
    "credentials: invalid",
    "signature: valid",
    "pin: required",
    "otp: sent",
    "session: closed",
    "auth: basic",
    "password: changed",
    "api_key: revoked",
    "key: missing",
    "Auth: Denied",
    "session_id: 12",
    "tokens: 128",
    "cookie: null",
    "password=None",
    "secret=false",
]
for text in STATUS:
    benign(text, "log line (status word)", "status after a secret-ish key")

PLACEHOLDERS = [
    "password=...",
    "token=<token>",
    "api_key=<your-api-key>",
    "password: [REDACTED]",
    "secret=****",
    "password=xxxx",
    "token: XXXXXXXX",
    "password=${DB_PASSWORD}",
    "api_key={{ api_key }}",
    "pwd=$PGPASSWORD",
    "Authorization: Bearer <token>",
    "Authorization: Bearer ${TOKEN}",
    "Authorization: Bearer ...",
    "postgres://app:****@db/shop",
    "redis://:<password>@cache:6379",
    "password=%(password)s",
    "token={token}",
    "password: '***PASSWORD***'",
    "secret: [FILTERED]",
    "api_key: YOUR_API_KEY",
    "password=your_password_here",
    "curl -u user:<password> https://x",
    "mysql -u root -p<password>",
    "--password <password>",
    "password=***",
    "amqp://guest:${RABBIT_PASSWORD}@rabbit//",
    "sshpass -p $SSHPASS ssh host",
    "token: '<redacted>'",
]
for text in PLACEHOLDERS:
    benign(text, "documentation / already masked", "placeholder or mask")

RESOURCES = [
    "secret: prod/db-credentials",
    "SecretId='arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf'",
    "secret_name: projects/shop/secrets/db-password/versions/latest",
    "vault_path=secret/data/app",
    "token: https://sso.example.com/oauth/token",
    "key: /etc/ssl/private/server.key",
    "--key /etc/ssl/client.key",
    "private_key: ./keys/id_rsa",
    "signing_key: keys/signing.pem",
    "secret: kv/prod/payments",
    "session: redis:sessions",
    "PWD=/home/app/src",
    "password_file=/run/secrets/db_password",
    "auth: oauth2",
    "key: user:42:profile",
]
for text in RESOURCES:
    benign(text, "config (resource name or path)", "a name or path, not the secret")

PACKAGES = [
    "implementation 'io.jsonwebtoken:jjwt-api:0.11.5'",
    "com.auth0:java-jwt:4.4.0",
    '"jsonwebtoken": "^9.0.2"',
    "pip install python-jose==3.3.0 tokenizers==0.15.0",
    "npm install jsonwebtoken@9.0.2",
    '"csrf-token": "1.0.3"',
    "django-rest-knox==4.2.0",
    "spring-security-oauth2-jose-6.2.1.jar",
    "github.com/golang-jwt/jwt/v5 v5.2.0",
    "token-bucket==0.3.0",
]
for text in PACKAGES:
    benign(text, "package coordinates", "package named for tokens")

PUBLIC = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rand(B64, 43) + " deploy@ci",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + rand(B64, 300) + " bob@laptop",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB" + rand(B64, 80) + "= host",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
    + rand(B64, 20)
    + "\n"
    + rand(B64, 64)
    + "\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE"
    + rand(B64, 44)
    + "\n"
    + rand(B64, 64)
    + "\n-----END CERTIFICATE-----",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    + rand(B64, 40)
    + "==",
    '<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP' + rand(B64, 40) + '">',
    "data:font/woff2;base64,d09GMgABAAAAA" + rand(B64, 60),
]
for text in PUBLIC:
    benign(text, "public material", "public key, certificate or embedded image")

PLAIN_B64 = [
    "Hello world, this is a test message for the queue.",
    "The quick brown fox jumps over the lazy dog again",
    "Celery task payloads are serialized as JSON by default",
    "Please find attached the monthly report for review",
]
for text in PLAIN_B64:
    benign(f"body={base64.b64encode(text.encode()).decode()}", "encoding", "base64 of plain text")

LOGS = [
    "[2024-05-01 12:00:00,123: INFO/MainProcess] Task proj.tasks.refresh_tokens[{id}] succeeded in 0.02s: None",
    "[2024-05-01 12:00:01,456: WARNING/ForkPoolWorker-3] Retrying proj.tasks.sync_session in 10s",
    "celery@worker-{n} ready.",
    "Connected to redis://cache.internal:6379/0",
    "Connected to amqp://guest@rabbit.internal:5672//",
    "mingle: sync with 3 nodes",
    "Received task: proj.tasks.rotate_keys[{id}]",
    "GET /api/v1/sessions/{n} 200 12ms",
    "POST /auth/login 401 3ms user=bob",
    "pid={n} rss=120MB queue=payments prefetch=4",
    "kombu.exceptions.OperationalError: [Errno 111] Connection refused",
    'Traceback (most recent call last):\n  File "/app/tasks.py", line {n}, in charge\n    raise PaymentDeclined(order_id)',
    "docker run -p 8080:80 -e LOG_LEVEL=info registry.example.com/shop:1.4.2",
    "mysql -u reporter -p shop < report.sql",
    "curl -u alice https://api.example.com/me",
    "curl -sS -X GET https://api.example.com/health -H 'Accept: application/json'",
    "ps -u celery -o pid,rss,cmd",
    "sort -u keys.txt | uniq -c",
    "tar -czf backup-{n}.tar.gz /var/lib/app",
    "ssh -p 2222 deploy@bastion",
    "git log --format='%H %an' -n 20",
    "docker exec -u 1000:1000 app sh",
    "rsync -avz --password-file=/etc/rsync.secret src/ dest::module",
    "psql -h db -U app -d shop -c 'select 1'",
    "kubectl get secret db-credentials -o yaml",
    "aws secretsmanager get-secret-value --secret-id prod/db",
    "gpg --passphrase-file /run/secrets/gpg --batch -d file.gpg",
    "htpasswd -c /etc/nginx/.htpasswd alice",
    "openssl req -new -key server.key -out server.csr",
    "ldapsearch -x -H ldap://dir -b dc=example,dc=com",
    "redis-cli -h cache -p 6379 info keyspace",
    "mongosh --host db --port 27017 --eval 'db.stats()'",
    "Error: key 'orders:{n}' not found",
    "KeyError: 'session'",
    "AttributeError: 'NoneType' object has no attribute 'token'",
    "worker-{n}.prod.example.internal:9100",
    "2024-05-01T12:00:00.123456+00:00",
    "12:34:56:789:012:done",
    "Password reset email sent to bob@example.com",
    "routing_key=payments exchange=celery",
    "task_id={uuid} parent_id={uuid}",
    "sha256:" + rand(HEX, 64),
    "commit " + rand(HEX, 40),
    'ETag: "' + rand(HEX, 32) + '"',
    "X-Request-Id: " + rand(HEX, 32),
]
for template in LOGS:
    for _ in range(2):
        text = template.format(
            id=f"{rand(HEX, 8)}-{rand(HEX, 4)}-4{rand(HEX, 3)}-a{rand(HEX, 3)}-{rand(HEX, 12)}",
            n=rng.randint(1, 9999),
            uuid=f"{rand(HEX, 8)}-{rand(HEX, 4)}-{rand(HEX, 4)}-{rand(HEX, 4)}-{rand(HEX, 12)}",
        )
        benign(text, "log line / command line", "ordinary operational text")

IDENTIFIERS = [
    "proj.tasks.refresh_access_token",
    "TokenRefreshScheduler",
    "password_reset_confirm_view",
    "SESSION_COOKIE_AGE",
    "get_api_key_from_settings",
    "signing_key_rotation_days",
    "master_key_path",
    "otp_length=6",
    "pin_code_length=4",
    "max_tokens=4096",
    "session_timeout=3600",
    "cookie_domain=.example.com",
    "auth_method=oauth2",
    "key_prefix=celery",
    "routing_key='default'",
    "cache_key='user:42'",
    "sort_key=created_at",
    "primary_key=id",
    "public_key_url=https://x.example/jwks",
    "key_id=2024-05",
    "token_type=bearer",
    "token_url=https://sso.example.com/token",
    "pw_min_length=12",
    "sig_alg=RS256",
    "signature_version=s3v4",
    "jwt_algorithm=HS256",
    "credentials_provider=env",
    "DEFAULT_AUTHENTICATION_CLASSES",
    "AUTH_USER_MODEL=accounts.User",
    "passport-local",
    "bypass=true",
    "OLDPWD=/home/app",
    "compass heading 270",
    "first_pass=True",
    "keyboard layout us",
    "mapping: {}",
    "design: v2",
    "spin_count=3",
    "shopping_cart_id=91",
    "dapi-gateway",
    "key-value store",
    "sk-learn-compatible-estimator",
]
for text in IDENTIFIERS:
    benign(text, "code identifier / setting", "secret word in a name, not a secret")


MORE_LOGS = [
    '10.0.{a}.{b} - - [01/May/2024:12:00:{s:02d} +0000] "GET /static/app.{h}.js HTTP/1.1" 200 {n} "-" "Mozilla/5.0"',
    '10.0.{a}.{b} - bob [01/May/2024:12:00:{s:02d} +0000] "POST /api/login HTTP/1.1" 302 0',
    "SELECT id, email, password_hash IS NOT NULL FROM users WHERE id = {n}",
    "UPDATE sessions SET expires_at = now() + interval '1 hour' WHERE user_id = {n}",
    "INSERT INTO api_keys (id, name, created_at) VALUES ({n}, 'ci', now())",
    '  File "/usr/lib/python3.12/site-packages/celery/app/trace.py", line {n}, in trace_task',
    "redis.exceptions.AuthenticationError: invalid username-password pair or user is disabled.",
    'psycopg.OperationalError: connection to server at "db" (10.0.{a}.{b}), port 5432 failed: FATAL:  password authentication failed for user "app"',
    "botocore.exceptions.ClientError: An error occurred (ExpiredToken) when calling the GetObject operation",
    "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://api.example.com/v1/items?page={n}",
    "jwt.exceptions.ExpiredSignatureError: Signature has expired",
    "django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty.",
    "WARNING: token bucket for queue payments is empty, waiting {n}ms",
    "rate limit: {n} tokens left of 100",
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials-{n}\ntype: Opaque",
    "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: db\n        key: password",
    "image: registry.example.com/payments/worker:{n}.{a}.{b}",
    "[program:celery]\ncommand=celery -A proj worker -l info -Q payments,emails -c {a}",
    "Oct  1 12:00:{s:02d} web-{a} sshd[{n}]: Accepted publickey for deploy from 10.0.{a}.{b} port 52{a}{b} ssh2: ED25519 SHA256:"
    + "{fp}",
    "Oct  1 12:00:{s:02d} web-{a} sshd[{n}]: Failed password for invalid user admin from 10.0.{a}.{b} port 4{n} ssh2",
    "sudo: deploy : TTY=pts/{a} ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart celery",
    "Set-Cookie header missing on response {n}",
    "The session expired after {n} seconds of inactivity.",
    "Your password must contain at least {a} characters.",
    "key rotation scheduled for 2024-0{a}-1{b}",
    "http://localhost:{n}/admin/login/?next=/admin/",
    "https://docs.example.com/auth/tokens#scopes",
    "mailto:security@example.com?subject=key%20rotation",
    "Received task: proj.tasks.send_password_reset[{id}] ETA:[2024-05-01 12:00:00+00:00]",
    "Task proj.tasks.verify_signature[{id}] raised unexpected: ValueError('bad padding')",
    "[{id}] pin_memory=True num_workers={a} batch_size={n}",
    "model.generate(input_ids, max_new_tokens={n}, do_sample=False)",
    "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
    "signature = inspect.signature(func)",
    "def authenticate(request, username=None, password=None):",
    "if not check_password(password, user.password):",
    "self.session = requests.Session()",
    "cookie_jar = http.cookiejar.CookieJar()",
    "secrets.token_hex({a}{b})",
]
for template in MORE_LOGS:
    for _ in range(3):
        text = template.format(
            a=rng.randint(1, 9),
            b=rng.randint(1, 9),
            s=rng.randint(0, 59),
            n=rng.randint(10, 99999),
            h=rand(HEX, 8),
            fp=rand(B64, 43),
            id=f"{rand(HEX, 8)}-{rand(HEX, 4)}-4{rand(HEX, 3)}-a{rand(HEX, 3)}-{rand(HEX, 12)}",
        )
        benign(text, "log line / code", "ordinary operational text or code")


# Source lines as tracebacks print them (found by masking celery's and kombu's own source).
CODE_LINES = [
    "    d1[key] = value",
    "    self.sig = sig",
    "    to_signature = maybe_signature",
    "twitter = Twitter(oauth=auth)",
    "    password=Option(type='string'),",
    "def restart(self, sig=signal.SIGTERM):",
    "UPSERT {_key: @key}",
    "http_auth = (self.username, self.password)",
    "aws_access_key_id = username",
    "    'Key': {",
    "    credentials = {",
    "    key = '_'.join([namespace, key])",
    "sig = maybe_signature(sig, clone=True)",
    "install_cry_handler(sig='SIGUSR1')",
    "cursor.execute('SELECT 1 FROM users WHERE password = :password', params)",
    "res_get = self._get(key=id)",
    "if not pwd:  # pragma: no cover",
    "with reraise_errors('Bad signature: {0!r}'):",
    "    self._data[key] = value",
    "    token = request.headers.get('Authorization')",
    "    secret = os.environ['APP_SECRET']",
    "    password = getpass.getpass()",
    "    api_key = settings.API_KEY",
    "    session = Session()",
    "    cookie = SimpleCookie(raw)",
]
for text in CODE_LINES:
    benign(text, "traceback source line", "code, not a value")


def merge(path: Path, generated: list[dict[str, str]], default_kind: str) -> None:
    data = json.loads(path.read_text("utf-8"))
    kept = [case for case in data["cases"] if not case.get("generated")]
    for case in kept:
        case.setdefault("kind", default_kind)
    data["cases"] = kept + generated
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    merge(
        HERE / "secrets_true_positives.json", TRUE, "gitleaks / detect-secrets / vendor docs (hand-written)"
    )
    merge(HERE / "secrets_false_positives.json", FALSE, "real log and code shapes (hand-written)")
    print(f"{len(TRUE)} generated secrets, {len(FALSE)} generated benign strings")
