"""Settings: the ``jobs_*`` keys on ``app.conf``, read once into a validated, immutable object.

Every setting is declared once in :data:`DEFAULTS` and registered with
``app.add_defaults``, so ``app.conf.jobs_timeout`` always reads and Django's
``CELERY_JOBS_TIMEOUT`` works through Celery's namespace. :class:`ConfigCache`
builds a :class:`JobsConfig` the first time it is asked and keeps it on the app:
the hot path reads an attribute, never ``app.conf``.
"""

from __future__ import annotations

import math
import os
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from celery import bootsteps
from celery._state import get_current_app
from kombu.utils.url import maybe_sanitize_url

from celery_jobs_ext.errors import ImproperlyConfigured, InvalidRate

if TYPE_CHECKING:
    from celery import Celery

RETRY_STRATEGIES = ("none", "fixed", "exponential")
RATE_LIMIT_ON_ERROR = ("allow", "wait")
STATE_SCHEMES = ("redis", "rediss", "unix", "sqlite")

#: Every setting, with its default. The one place a new setting is declared.
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "jobs_allowed_shell_commands": [],
        "jobs_shell_path": "/usr/local/bin:/usr/bin:/bin",
        "jobs_shell_denied_arguments": {},
        "jobs_shell_max_output": 65536,
        "jobs_shell_timeout": 300,
        "jobs_shell_allowed_env": [],
        "jobs_shell_allowed_cwd": [],
        "jobs_queue_rate_limits": {},
        "jobs_rate_limit_burst": 1,
        "jobs_rate_limit_on_error": "allow",
        "jobs_dead_letter_queue": None,
        "jobs_timeout": 0,
        "jobs_timeout_grace": 10,
        "jobs_retry_strategy": "none",
        "jobs_retry_base": 60,
        "jobs_retry_multiplier": 2.0,
        "jobs_retry_max": 3600,
        "jobs_retry_jitter": True,
        "jobs_state_url": None,
        "jobs_state_prefix": "jobs:",
        "jobs_metrics": True,
        "jobs_mask_secrets": True,
        "jobs_mask_keys": None,
        "jobs_batch_size": 1,
        "jobs_redis_reconnect_fix": True,
    }
)

#: The bounds of a rate limit, in jobs per minute (0 means no limit): at most 100,000 jobs
#: per second per queue, at least one job per day. Outside them a worker cannot space jobs
#: (an interval under 10 microseconds, or longer than a budget is worth keeping).
MAX_RATE_PER_MINUTE = 6_000_000
MIN_RATE_PER_MINUTE = Decimal(1) / Decimal(1440)
#: Longer rate texts are refused before parsing (no 5,000-digit numbers).
MAX_RATE_TEXT = 32
_RATE_TEXT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(?:\s*/\s*([smh]))?", re.ASCII)
RATE_FORMS = "jobs per minute (50, 1.5) or a rate such as 10/s, 100/m, 1000/h; 0 means no limit"


@dataclass(frozen=True)
class JobsConfig:
    """The validated ``jobs_*`` settings of one app.

    Frozen so that code on the hot path can hold a reference without copying;
    containers are tuples and read-only mappings for the same reason.
    """

    allowed_shell_commands: tuple[str, ...] = ()
    shell_path: str = "/usr/local/bin:/usr/bin:/bin"
    shell_denied_arguments: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    shell_max_output: int = 65536
    #: Seconds a shell job may run (also the most a message may ask for).
    shell_timeout: float = 300.0
    #: Environment variable names (or ``PREFIX_*``) a job may set besides the safe defaults.
    shell_allowed_env: tuple[str, ...] = ()
    #: Directories a job may ask to run in (``/srv/repos/*`` for any one inside); empty: none.
    shell_allowed_cwd: tuple[str, ...] = ()
    #: Jobs per minute per queue; queues without a limit are absent.
    queue_rate_limits: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: How many tasks a queue may start back to back after an idle period.
    rate_limit_burst: int = 1
    #: What a worker does while the shared state is unreachable: "allow" or "wait".
    rate_limit_on_error: str = "allow"
    dead_letter_queue: str | None = None
    timeout: int = 0
    #: Seconds between the soft timeout (JobTimeout raised in the task) and the hard kill.
    timeout_grace: int = 10
    retry_strategy: str = "none"
    retry_base: int = 60
    retry_multiplier: float = 2.0
    retry_max: int = 3600
    retry_jitter: bool = True
    #: Resolved: the broker's Redis URL when ``jobs_state_url`` was left unset.
    #: Left out of repr: it may carry a password.
    state_url: str | None = field(default=None, repr=False)
    #: Prepended to every shared-state key, so several apps can share one store.
    state_prefix: str = "jobs:"
    metrics: bool = True
    mask_secrets: bool = True
    mask_keys: tuple[str, ...] | None = None
    batch_size: int = 1
    #: Keep a worker busy at a Redis broker restart running (celery_jobs_ext.reconnect).
    redis_reconnect_fix: bool = True

    @classmethod
    def from_app(cls, app: Celery) -> JobsConfig:
        """Read and validate every ``jobs_*`` setting of ``app``.

        Raises:
            ImproperlyConfigured: a setting has a wrong type or value; the
                message names the setting and the value.
        """
        conf = app.conf
        get = _reader(conf)
        return cls(
            allowed_shell_commands=_shell_entries(get, "jobs_allowed_shell_commands"),
            shell_path=_non_empty_str(get, "jobs_shell_path"),
            shell_denied_arguments=_denied_arguments(get, "jobs_shell_denied_arguments"),
            shell_max_output=_int(get, "jobs_shell_max_output", minimum=1),
            shell_timeout=_positive_seconds(get, "jobs_shell_timeout"),
            shell_allowed_env=_environment_names(get, "jobs_shell_allowed_env"),
            shell_allowed_cwd=_cwd_entries(get, "jobs_shell_allowed_cwd"),
            queue_rate_limits=_rate_limits(get, "jobs_queue_rate_limits"),
            rate_limit_burst=_int(get, "jobs_rate_limit_burst", minimum=1),
            rate_limit_on_error=_choice(get, "jobs_rate_limit_on_error", RATE_LIMIT_ON_ERROR),
            dead_letter_queue=_optional_str(get, "jobs_dead_letter_queue"),
            timeout=_int(get, "jobs_timeout", minimum=0),
            timeout_grace=_int(get, "jobs_timeout_grace", minimum=0),
            retry_strategy=_choice(get, "jobs_retry_strategy", RETRY_STRATEGIES),
            retry_base=_int(get, "jobs_retry_base", minimum=0),
            retry_multiplier=_float(get, "jobs_retry_multiplier", minimum=1.0),
            retry_max=_int(get, "jobs_retry_max", minimum=0),
            retry_jitter=_bool(get, "jobs_retry_jitter"),
            state_url=_state_url(get, "jobs_state_url", conf),
            state_prefix=_non_empty_str(get, "jobs_state_prefix"),
            metrics=_bool(get, "jobs_metrics"),
            mask_secrets=_bool(get, "jobs_mask_secrets"),
            mask_keys=_optional_str_list(get, "jobs_mask_keys"),
            batch_size=_int(get, "jobs_batch_size", minimum=1),
            redis_reconnect_fix=_bool(get, "jobs_redis_reconnect_fix"),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly view (state URL password hidden), for commands and logs."""
        return {
            "allowed_shell_commands": list(self.allowed_shell_commands),
            "shell_path": self.shell_path,
            "shell_denied_arguments": {k: list(v) for k, v in self.shell_denied_arguments.items()},
            "shell_timeout": self.shell_timeout,
            "shell_allowed_env": list(self.shell_allowed_env),
            "shell_allowed_cwd": list(self.shell_allowed_cwd),
            "queue_rate_limits": dict(self.queue_rate_limits),
            "rate_limit_burst": self.rate_limit_burst,
            "rate_limit_on_error": self.rate_limit_on_error,
            "dead_letter_queue": self.dead_letter_queue,
            "timeout": self.timeout,
            "timeout_grace": self.timeout_grace,
            "retry_strategy": self.retry_strategy,
            "retry_base": self.retry_base,
            "retry_multiplier": self.retry_multiplier,
            "retry_max": self.retry_max,
            "retry_jitter": self.retry_jitter,
            "state_url": maybe_sanitize_url(self.state_url) if self.state_url else None,
            "state_prefix": self.state_prefix,
            "metrics": self.metrics,
            "mask_secrets": self.mask_secrets,
            "batch_size": self.batch_size,
            "redis_reconnect_fix": self.redis_reconnect_fix,
        }


class ConfigCache:
    """One validated :class:`JobsConfig` per app, built on first use.

    ``get`` is on every task's hot path, so a cached read is one attribute
    lookup on the app. ``clear`` after changing ``app.conf`` at run time;
    ``set`` pins a config (for tests or an app built in code).
    """

    _ATTRIBUTE = "_celery_jobs_ext_config"
    _pinned: JobsConfig | None = None
    _apps: weakref.WeakSet[Any] = weakref.WeakSet()
    _lock = threading.Lock()

    @classmethod
    def get(cls, app: Celery | None = None) -> JobsConfig:
        """Return the cached config of ``app`` (the current app when omitted).

        Raises:
            ImproperlyConfigured: on first use, when a setting is invalid.
        """
        pinned = cls._pinned
        if pinned is not None:
            return pinned
        if app is None:
            app = get_current_app()
        config = app.__dict__.get(cls._ATTRIBUTE)
        if config is None:
            return cls._load(app)
        return config  # type: ignore[no-any-return]

    @classmethod
    def _load(cls, app: Celery) -> JobsConfig:
        with cls._lock:
            config: JobsConfig | None = app.__dict__.get(cls._ATTRIBUTE)
            if config is None:
                register_defaults(app)
                config = JobsConfig.from_app(app)
                setattr(app, cls._ATTRIBUTE, config)
                cls._apps.add(app)
            return config

    @classmethod
    def set(cls, config: JobsConfig, app: Celery | None = None) -> None:
        """Pin ``config`` for ``app``, or for every app when ``app`` is None."""
        if app is None:
            cls._pinned = config
        else:
            setattr(app, cls._ATTRIBUTE, config)
            cls._apps.add(app)

    @classmethod
    def clear(cls, app: Celery | None = None) -> None:
        """Drop the cached config of ``app``, or of every app and the pinned one."""
        with cls._lock:
            apps = [app] if app is not None else list(cls._apps)
            if app is None:
                cls._pinned = None
            for each in apps:
                each.__dict__.pop(cls._ATTRIBUTE, None)


def register_defaults(app: Celery) -> None:
    """Register :data:`DEFAULTS` on ``app`` so every ``jobs_*`` key reads, once per app.

    Only keys the user has not set are registered: ``app.add_defaults`` puts its
    mapping in front of the one ``config_from_object`` loaded, so a default for a
    key the user set there would shadow the user's value.
    """
    if getattr(app, "_celery_jobs_ext_defaults", False):
        return
    app._celery_jobs_ext_defaults = True  # type: ignore[attr-defined]

    def unset_defaults() -> dict[str, Any]:
        conf = app.conf
        return {key: _copy(value) for key, value in DEFAULTS.items() if _unset(conf, key)}

    app.add_defaults(unset_defaults)


def _unset(conf: Any, key: str) -> bool:
    try:
        conf[key]
    except KeyError:
        return True
    return False


class ConfigCheck(bootsteps.StartStopStep):
    """Worker bootstep: validate the settings before the worker consumes anything.

    A bootstep rather than a signal because exceptions in signal receivers are
    logged and swallowed; raising here stops the worker with the message.
    """

    label = "celery-jobs-ext config"

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        ConfigCache.clear(parent.app)
        ConfigCache.get(parent.app)
        super().__init__(parent, **kwargs)


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


# -- validation helpers: each names the setting and the bad value -----------------


def _reader(conf: Any) -> Any:
    def get(key: str) -> Any:
        try:
            return conf[key]
        except KeyError:
            return _copy(DEFAULTS[key])

    return get


def _bad(key: str, value: Any, expected: str) -> ImproperlyConfigured:
    shown = maybe_sanitize_url(value) if isinstance(value, str) else value
    return ImproperlyConfigured(f"Setting {key} = {shown!r} is invalid: expected {expected}.")


def _int(get: Any, key: str, *, minimum: int) -> int:
    value = get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, value, f"an integer >= {minimum}")
    if value < minimum:
        raise _bad(key, value, f"an integer >= {minimum}")
    return value


def _float(get: Any, key: str, *, minimum: float) -> float:
    value = get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(key, value, f"a number >= {minimum}")
    if value < minimum:
        raise _bad(key, value, f"a number >= {minimum}")
    return float(value)


def _bool(get: Any, key: str) -> bool:
    value = get(key)
    if not isinstance(value, bool):
        raise _bad(key, value, "True or False")
    return value


def _choice(get: Any, key: str, choices: tuple[str, ...]) -> str:
    value = get(key)
    if not isinstance(value, str) or value.lower() not in choices:
        raise _bad(key, value, "one of " + ", ".join(repr(c) for c in choices))
    return value.lower()


def _non_empty_str(get: Any, key: str) -> str:
    value = get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(key, value, "a non-empty string")
    return value


def _optional_str(get: Any, key: str) -> str | None:
    value = get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(key, value, "a non-empty string or None")
    return value


def _str_list(get: Any, key: str) -> tuple[str, ...]:
    value = get(key)
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise _bad(key, value, "a list of strings")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise _bad(key, value, f"a list of non-empty strings (bad item {item!r})")
    return tuple(value)


def _positive_seconds(get: Any, key: str) -> float:
    value = get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**9:
        raise _bad(key, value, "a finite number of seconds > 0 (at most 10**9)")
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise _bad(key, value, "a finite number of seconds > 0 (inf, NaN, 0 and negative values are refused)")
    return float(value)


def _shell_entries(get: Any, key: str) -> tuple[str, ...]:
    from celery_jobs_ext.shell.patterns import parse_entries

    entries = _str_list(get, key)
    parse_entries(entries, key)  # raises ImproperlyConfigured naming the entry
    return entries


def _environment_names(get: Any, key: str) -> tuple[str, ...]:
    from celery_jobs_ext.shell.environment import checked_environment_names

    return checked_environment_names(get(key), key)


def _cwd_entries(get: Any, key: str) -> tuple[str, ...]:
    from celery_jobs_ext.shell.workdir import checked_cwd_entries

    return checked_cwd_entries(get(key), key)


def _optional_str_list(get: Any, key: str) -> tuple[str, ...] | None:
    if get(key) is None:
        return None
    return _str_list(get, key)


def _denied_arguments(get: Any, key: str) -> Mapping[str, tuple[str, ...]]:
    value = get(key)
    if not isinstance(value, Mapping):
        raise _bad(key, value, "a dict of program name to a list of options")
    result: dict[str, tuple[str, ...]] = {}
    for program, options in value.items():
        if not isinstance(program, str) or not program:
            raise _bad(key, value, f"program names as strings (bad key {program!r})")
        if isinstance(options, str) or not isinstance(options, (list, tuple)):
            raise _bad(key, value, f"a list of options for {program!r}")
        if not all(isinstance(option, str) and option for option in options):
            raise _bad(key, value, f"non-empty option strings for {program!r}")
        result[program] = tuple(options)
    return MappingProxyType(result)


def parse_rate(value: Any) -> float:
    """Jobs per minute from a number (already per minute) or a text: ``"50"``, ``"1.5"``, ``"10/s"``.

    The one rate parser: settings, the ``jobs-ratelimit`` command and the overrides a
    worker reads from the shared state all go through it, so nothing a worker reads can
    be a rate it cannot use. Texts are ASCII digits with an optional decimal part and an
    optional ``/s``, ``/m`` or ``/h``; the result is 0 (no limit) or finite, between
    :data:`MIN_RATE_PER_MINUTE` and :data:`MAX_RATE_PER_MINUTE`.

    Raises:
        InvalidRate: (a ``ValueError``) anything else; the message says why and what fits.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidRate(f"{_shown(value)} is not a rate: use {RATE_FORMS}.")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_RATE_TEXT:
            raise InvalidRate(
                f"{_shown(value)} is not a rate: longer than {MAX_RATE_TEXT} characters; use {RATE_FORMS}."
            )
        foreign = next((char for char in text if not char.isascii() and char.isnumeric()), None)
        if foreign is not None:
            raise InvalidRate(
                f"{_shown(value)} is not a rate: {foreign!r} is not an ASCII digit; write digits as 0-9."
            )
        match = _RATE_TEXT.fullmatch(text)
        if match is None:
            raise InvalidRate(f"{_shown(value)} is not a rate: use {RATE_FORMS}.")
        number = Decimal(match.group(1))
        if match.group(2) == "s":
            number *= 60
        elif match.group(2) == "h":
            number /= 60
    else:
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRate(f"{_shown(value)} is not a rate: it must be a finite number.")
        number = Decimal(value)
        if not number.is_finite():
            raise InvalidRate(f"{_shown(value)} is not a rate: it must be a finite number.")
    if number < 0:
        raise InvalidRate(f"{_shown(value)} is not a rate: it must not be negative (0 means no limit).")
    if number == 0:
        return 0.0
    if number > MAX_RATE_PER_MINUTE:
        raise InvalidRate(
            f"{_shown(value)} is above the largest rate limit, 100000/s "
            f"({MAX_RATE_PER_MINUTE:,} jobs per minute); use 0 for no limit."
        )
    if number < MIN_RATE_PER_MINUTE:
        raise InvalidRate(
            f"{_shown(value)} is below the smallest rate limit, one job per day (0.042/h); "
            "use 0 for no limit."
        )
    return float(number)


def _shown(value: Any) -> str:
    """``repr`` of a value, cut short: an error message must not echo a 5,000-digit paste."""
    try:
        text = repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return "a number too long to show"
    return text if len(text) <= 40 else text[:37] + "..."


def _rate_limits(get: Any, key: str) -> Mapping[str, float]:
    value = get(key)
    if not isinstance(value, Mapping):
        raise _bad(key, value, "a dict of queue name to jobs per minute")
    limits: dict[str, float] = {}
    for queue, rate in value.items():
        if not isinstance(queue, str) or not queue.strip():
            raise _bad(key, value, f"queue names as non-empty strings (bad key {queue!r})")
        try:
            per_minute = parse_rate(rate)
        except InvalidRate as exc:
            raise ImproperlyConfigured(f"Setting {key} is invalid for queue {queue!r}: {exc}") from None
        if per_minute > 0:
            limits[queue] = per_minute
    return MappingProxyType(limits)


def _state_url(get: Any, key: str, conf: Any) -> str | None:
    value = get(key)
    if value is None:
        broker = _first_broker_url(conf)
        scheme = broker.split("://", 1)[0].lower() if "://" in broker else ""
        if scheme in ("redis", "rediss"):
            return broker
        raise ImproperlyConfigured(
            f"Setting {key} is not set and the broker ({maybe_sanitize_url(broker) or 'none'}) "
            f"is not Redis: set {key} to 'redis://host:6379/0' or 'sqlite:////path/to/state.db'."
        )
    if not isinstance(value, str) or "://" not in value:
        raise _bad(key, value, "a URL such as 'redis://host:6379/0' or 'sqlite:////path/state.db'")
    scheme = value.split("://", 1)[0].lower()
    if scheme not in STATE_SCHEMES:
        raise _bad(key, value, "a URL with scheme " + ", ".join(STATE_SCHEMES))
    if scheme == "sqlite":
        path = value.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path
        if not path.strip("/"):
            raise _bad(key, value, "a SQLite file path, e.g. 'sqlite:////var/lib/jobs/state.db'")
        if path != ":memory:" and not os.path.isabs(path):
            # Each process would resolve it against its own working directory: a command run
            # from elsewhere would silently create and use another, empty state.
            raise ImproperlyConfigured(
                f"Setting {key} = {value!r} is a relative SQLite path, which every worker and "
                "command resolves against its own working directory (a command run elsewhere "
                "would use another, empty state). Use the absolute form (four slashes): "
                f"{key} = {'sqlite:///' + os.path.abspath(path)!r}"
            )
    return value


def _first_broker_url(conf: Any) -> str:
    try:
        url = conf.broker_url
    except (KeyError, AttributeError):
        url = None
    if isinstance(url, (list, tuple)):
        url = url[0] if url else None
    if not url:
        return ""
    return str(url).split(";", 1)[0].strip()
