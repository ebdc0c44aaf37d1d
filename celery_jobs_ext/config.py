"""Settings: the ``jobs_*`` keys on ``app.conf``, read once into a validated, immutable object.

Every setting is declared once, in :data:`SETTINGS` (name, type, default, validation,
one line of doc), from which :data:`DEFAULTS`, :meth:`JobsConfig.from_app` and
:meth:`JobsConfig.as_dict` come; its defaults are registered with
``app.add_defaults``, so ``app.conf.jobs_timeout`` always reads and Django's
``CELERY_JOBS_TIMEOUT`` works through Celery's namespace. :class:`ConfigCache`
builds a :class:`JobsConfig` the first time it is asked and keeps it on the app's
:class:`~celery_jobs_ext.extension.Extension`:
the hot path reads an attribute, never ``app.conf``.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from celery import bootsteps
from celery._state import get_current_app
from kombu.utils.url import maybe_sanitize_url

from celery_jobs_ext.errors import ImproperlyConfigured, InvalidRate
from celery_jobs_ext.extension import ATTRIBUTE as EXTENSION
from celery_jobs_ext.extension import Extension, existing_extension, extension_for
from celery_jobs_ext.rates import MAX_RATE_PER_MINUTE as MAX_RATE_PER_MINUTE
from celery_jobs_ext.rates import MAX_RATE_TEXT as MAX_RATE_TEXT
from celery_jobs_ext.rates import MIN_RATE_PER_MINUTE as MIN_RATE_PER_MINUTE
from celery_jobs_ext.rates import RATE_FORMS as RATE_FORMS
from celery_jobs_ext.rates import parse_rate

if TYPE_CHECKING:
    from celery import Celery

RETRY_STRATEGIES = ("none", "fixed", "exponential")
RATE_LIMIT_ON_ERROR = ("allow", "wait")
STATE_SCHEMES = ("redis", "rediss", "unix", "sqlite")


@dataclass(frozen=True)
class JobsConfig:
    """The validated ``jobs_*`` settings of one app.

    Frozen so that code on the hot path can hold a reference without copying;
    containers are tuples and read-only mappings for the same reason.
    """

    allowed_shell_commands: tuple[str, ...] = ()
    shell_path: str = "/usr/local/bin:/usr/bin:/bin"  # DEFAULT_SHELL_PATH
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
    #: The kernel sandbox of shell jobs: "auto", "required" or "off".
    shell_sandbox: str = "auto"
    #: Files or directories a sandboxed job may execute besides its program and interpreters.
    shell_sandbox_executables: tuple[str, ...] = ()
    #: Files or directories a sandboxed job may write besides its TMPDIR and /dev/null.
    shell_writable_paths: tuple[str, ...] = ()
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
    #: Keep a worker busy at a Redis broker restart running (celery_jobs_ext.reconnect).
    redis_reconnect_fix: bool = True

    @classmethod
    def from_app(cls, app: Celery) -> JobsConfig:
        """Read and validate every ``jobs_*`` setting of ``app``.

        Raises:
            ImproperlyConfigured: a setting has a wrong type or value; the
                message names the setting and the value.
        """
        get = _reader(app.conf)
        return cls(**{setting.field: setting.read(get, setting.name) for setting in SETTINGS})

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly view (state URL password hidden), for commands and logs."""
        shown = {setting.field: _plain(getattr(self, setting.field)) for setting in SETTINGS}
        shown["state_url"] = maybe_sanitize_url(self.state_url) if self.state_url else None
        return shown


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


class ConfigCache:
    """One validated :class:`JobsConfig` per app, built on first use.

    ``get`` is on every task's hot path, so a cached read is one attribute
    lookup on the app. ``clear`` after changing ``app.conf`` at run time;
    ``set`` pins a config (for tests or an app built in code).
    """

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
        extension: Extension | None = app.__dict__.get(EXTENSION)  # inlined: every task reads this
        config = extension.config if extension is not None else None
        if config is None:
            return cls._load(app)
        return config

    @classmethod
    def _load(cls, app: Celery) -> JobsConfig:
        with cls._lock:
            extension = extension_for(app)
            config = extension.config
            if config is None:
                register_defaults(app)
                config = extension.config = JobsConfig.from_app(app)
                cls._apps.add(app)
            return config

    @classmethod
    def set(cls, config: JobsConfig, app: Celery | None = None) -> None:
        """Pin ``config`` for ``app``, or for every app when ``app`` is None."""
        if app is None:
            cls._pinned = config
        else:
            extension_for(app).config = config
            cls._apps.add(app)

    @classmethod
    def clear(cls, app: Celery | None = None) -> None:
        """Drop the cached config of ``app``, or of every app and the pinned one."""
        with cls._lock:
            apps = [app] if app is not None else list(cls._apps)
            if app is None:
                cls._pinned = None
            for each in apps:
                extension = existing_extension(each)
                if extension is not None:
                    extension.config = None


def register_defaults(app: Celery) -> None:
    """Register :data:`DEFAULTS` on ``app`` so every ``jobs_*`` key reads, once per app.

    Only keys the user has not set are registered: ``app.add_defaults`` puts its
    mapping in front of the one ``config_from_object`` loaded, so a default for a
    key the user set there would shadow the user's value. Then the mapping moves to the
    end of the chain: each of the dozen lookups Celery makes per publish missed it first,
    at the cost of a ``KeyError`` (about 4 µs a publish, plain tasks included).
    """
    extension = extension_for(app)
    if extension.defaults_registered:
        return
    extension.defaults_registered = True
    registered: list[dict[str, Any]] = []

    def unset_defaults() -> dict[str, Any]:
        conf = app.conf
        mapping = {key: _copy(value) for key, value in DEFAULTS.items() if _unset(conf, key)}
        registered.append(mapping)
        return mapping

    def move_last(**kwargs: Any) -> None:
        for mapping in registered:
            _move_to_end(app.conf, mapping)

    if app.configured:
        app.add_defaults(unset_defaults)
        move_last()
    else:
        app.on_after_configure.connect(move_last, weak=False)
        app.add_defaults(unset_defaults)


def _move_to_end(conf: Any, mapping: dict[str, Any]) -> None:
    """Move ``mapping`` (by identity) to the end of ``conf``'s chain of mappings."""
    for chain in (conf.maps, conf.defaults):
        for index, each in enumerate(chain):
            if each is mapping:
                del chain[index]
                chain.append(mapping)
                break


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

    get.conf = conf  # type: ignore[attr-defined]  # for settings that depend on others (state URL)
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


def _sandbox_mode(get: Any, key: str) -> str:
    from celery_jobs_ext.shell.sandbox import checked_mode

    return checked_mode(get(key), key)


def _sandbox_executables(get: Any, key: str) -> tuple[str, ...]:
    from celery_jobs_ext.shell.sandbox import checked_paths

    return checked_paths(get(key), key)


def _writable_paths(get: Any, key: str) -> tuple[str, ...]:
    from celery_jobs_ext.shell.sandbox import EXECUTABLES_SETTING, checked_writable_paths

    return checked_writable_paths(get(key), get(EXECUTABLES_SETTING), key)


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


def _state_url(get: Any, key: str) -> str | None:
    conf = get.conf
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


# -- the table: every setting, declared once --------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One ``jobs_*`` setting. Adding a setting is one row in :data:`SETTINGS` plus its
    typed :class:`JobsConfig` field (a test checks the two, and docs/configuration.md, agree)."""

    name: str
    #: The type as docs/configuration.md shows it.
    type: str
    default: Any
    #: ``read(get, name)``: the validated value for JobsConfig, or ImproperlyConfigured naming the setting.
    read: Callable[[Any, str], Any]
    doc: str

    @property
    def field(self) -> str:
        """The :class:`JobsConfig` attribute: the name without ``jobs_``."""
        return self.name.removeprefix("jobs_")


def _at_least(minimum: int) -> Callable[[Any, str], int]:
    return functools.partial(_int, minimum=minimum)


def _one_of(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    return functools.partial(_choice, choices=choices)


DEFAULT_SHELL_PATH = "/usr/local/bin:/usr/bin:/bin"

#: Every setting, in the order of the documentation's table.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "jobs_allowed_shell_commands",
        "list[str]",
        [],
        _shell_entries,
        "What the shell task may run; empty: nothing.",
    ),
    Setting(
        "jobs_shell_path",
        "str",
        DEFAULT_SHELL_PATH,
        _non_empty_str,
        "The fixed PATH bare program names resolve through.",
    ),
    Setting(
        "jobs_shell_denied_arguments",
        "dict[str, list[str]]",
        {},
        _denied_arguments,
        "Extra refused options per program.",
    ),
    Setting("jobs_shell_max_output", "int", 65536, _at_least(1), "Bytes of stdout/stderr kept per stream."),
    Setting("jobs_shell_timeout", "float seconds", 300, _positive_seconds, "How long a shell job may run."),
    Setting(
        "jobs_shell_allowed_env",
        "list[str]",
        [],
        _environment_names,
        "Environment names a shell job may set.",
    ),
    Setting("jobs_shell_allowed_cwd", "list[str]", [], _cwd_entries, "Directories a job's cwd may name."),
    Setting(
        "jobs_shell_sandbox",
        "`auto`, `required`, `off`",
        "auto",
        _sandbox_mode,
        "The kernel sandbox (Landlock) of shell jobs.",
    ),
    Setting(
        "jobs_shell_sandbox_executables",
        "list[str]",
        [],
        _sandbox_executables,
        "More files a sandboxed job may execute.",
    ),
    Setting(
        "jobs_shell_writable_paths", "list[str]", [], _writable_paths, "Where a sandboxed job may write."
    ),
    Setting(
        "jobs_queue_rate_limits", "dict[str, int or str]", {}, _rate_limits, "Jobs per minute per queue."
    ),
    Setting("jobs_rate_limit_burst", "int", 1, _at_least(1), "Starts back to back after an idle period."),
    Setting(
        "jobs_rate_limit_on_error",
        "`allow`, `wait`",
        "allow",
        _one_of(RATE_LIMIT_ON_ERROR),
        "While the state is down.",
    ),
    Setting(
        "jobs_dead_letter_queue", "str or None", None, _optional_str, "Queue of tasks that failed for good."
    ),
    Setting("jobs_timeout", "int seconds", 0, _at_least(0), "Job timeout of every GuardedTask; 0: off."),
    Setting("jobs_timeout_grace", "int seconds", 10, _at_least(0), "Between the soft timeout and the kill."),
    Setting(
        "jobs_retry_strategy",
        "`none`, `fixed`, `exponential`",
        "none",
        _one_of(RETRY_STRATEGIES),
        "Delay between retries.",
    ),
    Setting("jobs_retry_base", "int seconds", 60, _at_least(0), "Fixed delay, or the first exponential one."),
    Setting(
        "jobs_retry_multiplier", "float", 2.0, functools.partial(_float, minimum=1.0), "Exponential growth."
    ),
    Setting("jobs_retry_max", "int seconds", 3600, _at_least(0), "Cap of the exponential delay."),
    Setting("jobs_retry_jitter", "bool", True, _bool, "Full jitter on exponential delays."),
    Setting("jobs_state_url", "str or None", None, _state_url, "The shared state; None: the broker's Redis."),
    Setting("jobs_state_prefix", "str", "jobs:", _non_empty_str, "Prefix of every shared-state key."),
    Setting("jobs_metrics", "bool", True, _bool, "Record per-queue metrics and heartbeats."),
    Setting("jobs_mask_secrets", "bool", True, _bool, "Mask secrets wherever a GuardedTask's data shows."),
    Setting(
        "jobs_mask_keys", "list[str] or None", None, _optional_str_list, "Names masked whole; None: built-in."
    ),
    Setting(
        "jobs_redis_reconnect_fix", "bool", True, _bool, "Keep a busy worker running at a Redis restart."
    ),
)

#: Every setting's default, by name (what ``app.add_defaults`` registers).
DEFAULTS: Mapping[str, Any] = MappingProxyType({setting.name: setting.default for setting in SETTINGS})
