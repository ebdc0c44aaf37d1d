"""``celery -A proj jobs-…`` sub-commands, registered through the ``celery.commands`` entry point.

Each command group is a small click function in Celery's style (``cls=CeleryCommand``,
options grouped with ``help_group``); the helpers here (:func:`command_errors`,
:func:`echo_json`) are shared by every group.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click
from celery.bin.base import CeleryCommand, CeleryOption, handle_preload_options
from celery.exceptions import CeleryCommandException
from celery.platforms import EX_UNAVAILABLE

from celery_jobs_ext.errors import (
    BrokerUnavailable,
    DeadLetterError,
    ImproperlyConfigured,
    StateUnavailable,
)
from celery_jobs_ext.jsonout import to_json

if TYPE_CHECKING:
    from celery_jobs_ext.deadletter import DeadLetterQueue

    _ParamType = click.ParamType[Any]  # generic in click 8.2+ stubs only
else:
    _ParamType = click.ParamType

# -- shared helpers ------------------------------------------------------------------


#: Seconds every command waits for a broker or shared state that does not answer.
COMMAND_TIMEOUT = 3.0
#: ``sysexits.h``'s configuration error (Celery's ``platforms`` has no name for it).
EX_CONFIG = 78


@contextlib.contextmanager
def command_errors() -> Iterator[None]:
    """Bound every call to the broker and the state, and turn the extension's errors into exits.

    A bad setting exits ``EX_CONFIG`` (78) with the setting's name and no usage banner (it
    is not a usage error); an unreachable or unresponsive broker or shared state, or an
    operation the broker cannot do, exits ``EX_UNAVAILABLE`` (69). Messages are masked:
    URLs keep no password.
    """
    from kombu.exceptions import OperationalError

    from celery_jobs_ext.state import command_timeout

    try:
        with command_timeout(COMMAND_TIMEOUT):
            yield
    except ImproperlyConfigured as exc:
        raise CeleryCommandException(message=_masked(exc), exit_code=EX_CONFIG) from exc
    except (StateUnavailable, BrokerUnavailable, DeadLetterError, OperationalError) as exc:
        raise CeleryCommandException(message=_masked(exc), exit_code=EX_UNAVAILABLE) from exc


def _masked(exc: BaseException) -> str:
    """The message through ``mask_text`` (URLs in it are already shown without a password)."""
    from celery_jobs_ext.masking import mask_text

    return mask_text(str(exc))


def echo_json(ctx: click.Context, data: Any) -> None:
    """Print ``data`` as JSON, one document on stdout, for scripts."""
    click.echo(to_json(data))


def require_app(ctx: click.Context) -> None:
    """Refuse to run on Celery's fallback app: the ``jobs_*`` settings live on the user's app.

    Without ``-A`` Celery hands sub-commands an empty default app, and every error that
    follows (no broker, no state) would name the wrong thing.
    """
    from celery import _state

    if ctx.obj is not None and ctx.obj.app is _state.default_app:
        raise click.UsageError(
            "No Celery app given: name yours with -A/--app before the sub-command, "
            f"e.g. celery -A proj {ctx.command_path.split()[-1] if ctx.command_path else 'jobs-health'}",
            ctx=ctx,
        )


#: The exit codes, shown at the end of every command's --help (docs/operators.md has the details).
EXIT_CODES = """\b
Exit codes:
  0   done
  1   declined at the prompt; jobs-health: a --fail-on threshold crossed
  2   usage: a bad argument, an empty name, conflicting flags, an unknown
      --task-id, no -A app
  69  the broker or the shared state unreachable, or silent for 3 s
  78  a jobs_* setting is invalid (the message names it)"""

_OUTPUT = "Output Options"
_SELECT = "Selection Options"


class Name(_ParamType):
    """A queue name or a task id: not empty, no control characters, at most 255 bytes (AMQP's limit).

    An empty ``--queue ""`` (an unset shell variable) would otherwise be stored or
    matched silently.
    """

    name = "name"

    def __init__(self, what: str) -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            self.fail(f"{self.what} must not be empty", param, ctx)
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            self.fail(f"{self.what} {value[:60]!r} contains a control character", param, ctx)
        if len(value.encode("utf-8", "surrogatepass")) > 255:
            self.fail(f"{self.what} {value[:60]!r}... is longer than 255 bytes", param, ctx)
        return value


QUEUE = Name("a queue name")
TASK_ID = Name("a task id")


def warn(ctx: click.Context, text: str) -> None:
    """A warning on stderr (never stdout: ``--json`` output stays one JSON document), masked."""
    from celery_jobs_ext.masking import mask_text

    ctx.obj.error(f"Warning: {mask_text(text)}", fg="yellow")


def warn_if_unknown(ctx: click.Context, queue: str | None, extra: Any = ()) -> bool:
    """Warn when no setting, limit, metric or worker knows ``queue``; True when unknown."""
    if queue is None:
        return False
    from celery_jobs_ext.health import known_queues

    with command_errors():
        known = known_queues(ctx.obj.app) | set(extra)
    if queue in known:
        return False
    warn(
        ctx,
        f"no setting, rate limit, metric or worker knows queue {queue[:60]!r} (a typo?). "
        f"Known: {', '.join(sorted(known)[:20]) or 'none'}.",
    )
    return True


def _json_option(function: Any) -> Any:
    return click.option(
        "-j", "--json", "as_json", cls=CeleryOption, is_flag=True, help_group=_OUTPUT, help="Print JSON."
    )(function)


def _queue_option(function: Any) -> Any:
    return click.option(
        "--queue",
        cls=CeleryOption,
        type=QUEUE,
        default=None,
        help_group=_SELECT,
        help="Only entries whose task came from this queue.",
    )(function)


# -- jobs-dlq ------------------------------------------------------------------------


@click.group(name="jobs-dlq", epilog=EXIT_CODES)
@click.pass_context
@handle_preload_options
def dlq_command(ctx: click.Context, **kwargs: Any) -> None:
    """Inspect, replay and purge the dead-letter queue (jobs_dead_letter_queue)."""
    require_app(ctx)


def _dead_letter_queue(ctx: click.Context) -> DeadLetterQueue:
    from celery_jobs_ext.deadletter import DeadLetterQueue

    with command_errors():
        return DeadLetterQueue(ctx.obj.app)


@dlq_command.command(name="stats", cls=CeleryCommand, epilog=EXIT_CODES)
@_json_option
@click.pass_context
def dlq_stats(ctx: click.Context, /, as_json: bool, **kwargs: Any) -> None:
    """How many tasks are in the dead-letter queue, in total and per original queue."""
    dlq = _dead_letter_queue(ctx)
    with command_errors():
        stats = dlq.stats()
    if as_json:
        echo_json(ctx, stats)
        return
    ctx.obj.echo(f"{dlq.name}: {stats['total']} task(s)")
    for queue, count in stats["by_queue"].items():
        ctx.obj.echo(f"  {queue}: {count}")


@dlq_command.command(name="list", cls=CeleryCommand, epilog=EXIT_CODES)
@_json_option
@_queue_option
@click.option(
    "--limit",
    cls=CeleryOption,
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help_group=_SELECT,
    help="Show at most this many entries (newest first).",
)
@click.pass_context
def dlq_list(ctx: click.Context, /, as_json: bool, queue: str | None, limit: int, **kwargs: Any) -> None:
    """Entries, newest first, without taking them off the queue; secrets masked."""
    dlq = _dead_letter_queue(ctx)
    with command_errors():
        entries = dlq.list(limit=limit, queue=queue)
    if not entries:
        warn_if_unknown(ctx, queue)
    if as_json:
        echo_json(ctx, entries)
        return
    if not entries:
        ctx.obj.echo(f"{dlq.name}: empty")
    for entry in entries:
        ctx.obj.echo(
            f"{entry['timestamp']}  {entry['task']}[{entry['task_id']}]  from {entry['original_queue']}"
            f"  attempts={entry['attempts']}  reason: {entry['reason']}"
        )
        ctx.obj.echo(f"    args: {entry['args']}  kwargs: {entry['kwargs']}")
        if entry["exception"]:
            ctx.obj.echo(f"    error: {entry['exception']}")


#: Long replays and purges report progress on stderr from this many entries on.
PROGRESS_FROM = 100


class _Progress:
    """``jobs-dlq: replayed 500/8000`` on stderr every 5 % (at least every 100 entries).

    Lines, not a redrawn bar: they read the same in a terminal, a log file and CI.
    """

    def __init__(self, ctx: click.Context, verb: str, total: int) -> None:
        self.ctx = ctx
        self.verb = verb
        self.total = total
        self.step = max(PROGRESS_FROM, total // 20)
        if total >= PROGRESS_FROM:
            ctx.obj.error(f"jobs-dlq: {verb} {total} task(s)...")

    def __call__(self, done: int, total: int | None = None) -> None:
        if self.total >= PROGRESS_FROM and done % self.step == 0:
            self.ctx.obj.error(f"jobs-dlq: {self.verb} {done}/{self.total}")


def _count(dlq: DeadLetterQueue, queue: str | None) -> int:
    with command_errors():
        stats = dlq.stats()
    return int(stats["total"] if queue is None else stats["by_queue"].get(queue, 0))


def _force_option(function: Any) -> Any:
    return click.option(
        "-f",
        "--force",
        "-y",
        "--yes",
        "force",
        cls=CeleryOption,
        is_flag=True,
        help_group="Confirmation Options",
        help="Do not prompt for confirmation (-y/--yes is the same).",
    )(function)


def _confirm(ctx: click.Context, question: str) -> None:
    """Ask on stderr, as Celery's purge does, so stdout stays the command's output."""
    click.confirm(f"{question}\n(to skip this prompt use the -f option)\nAre you sure?", abort=True, err=True)


@dlq_command.command(name="replay", cls=CeleryCommand, epilog=EXIT_CODES)
@_json_option
@_queue_option
@click.option(
    "--task-id", cls=CeleryOption, type=TASK_ID, default=None, help_group=_SELECT, help="Only this task."
)
@click.option(
    "--limit",
    cls=CeleryOption,
    type=click.IntRange(min=0),
    default=None,
    help_group=_SELECT,
    help="Replay at most this many entries (oldest first). Default: all that match.",
)
@click.option(
    "--all",
    "replay_all",
    cls=CeleryOption,
    is_flag=True,
    help_group=_SELECT,
    help="Replay every entry without asking (without a selector the command asks first).",
)
@_force_option
@click.pass_context
def dlq_replay(
    ctx: click.Context,
    /,
    as_json: bool,
    queue: str | None,
    task_id: str | None,
    limit: int | None,
    replay_all: bool,
    force: bool,
    **kwargs: Any,
) -> None:
    """Send entries back to their original queues as fresh attempts, then remove them.

    Without --task-id or --queue every entry is replayed: the command asks first, unless
    --all or -f is given.
    """
    if replay_all and (task_id is not None or queue is not None):
        raise click.UsageError("--all and --task-id/--queue conflict: give a selector or --all.", ctx=ctx)
    dlq = _dead_letter_queue(ctx)
    total = 0 if task_id is not None else _count(dlq, queue)
    if limit is not None:
        total = min(total, limit)
    if task_id is None and queue is None and not (replay_all or force) and total:
        _confirm(ctx, f"Replay {total} task(s) from dead-letter queue {dlq.name!r} to their queues?")
    progress = _Progress(ctx, "replaying", total)
    with command_errors():
        replayed = dlq.replay(task_id=task_id, queue=queue, limit=limit, progress=progress)
    if task_id is not None and not replayed:
        raise click.BadParameter(
            f"task {task_id[:60]!r} is not in dead-letter queue {dlq.name!r}", param_hint="--task-id"
        )
    if not replayed:
        warn_if_unknown(ctx, queue)
    if as_json:
        echo_json(ctx, {"replayed": replayed})
        return
    ctx.obj.echo(f"Replayed {len(replayed)} task(s) from {dlq.name}.")
    for replayed_id in replayed:
        ctx.obj.echo(f"  {replayed_id}")


@dlq_command.command(name="purge", cls=CeleryCommand, epilog=EXIT_CODES)
@_json_option
@_queue_option
@_force_option
@click.pass_context
def dlq_purge(ctx: click.Context, /, as_json: bool, queue: str | None, force: bool, **kwargs: Any) -> None:
    """Delete entries for good (all, or those from one original queue). There is no undo.

    Asks first (on stderr), unless -f/--force (or -y/--yes) is given or there is nothing to delete.
    """
    dlq = _dead_letter_queue(ctx)
    count = _count(dlq, queue)
    if count and not force:
        which = f" that came from queue {queue!r}" if queue else ""
        _confirm(ctx, f"Delete {count} task(s){which} from dead-letter queue {dlq.name!r}? There is no undo.")
    purged = 0
    if count:
        progress = _Progress(ctx, "purging", count if queue is not None else 0)
        with command_errors():
            purged = dlq.purge(queue=queue, progress=progress)
    elif queue is not None:
        warn_if_unknown(ctx, queue)
    if as_json:
        echo_json(ctx, {"purged": purged})
        return
    if purged:
        ctx.obj.echo(f"Purged {purged} task(s) from {dlq.name}.")
    else:
        ctx.obj.echo(f"Nothing to purge: {dlq.name} has no task(s){' from ' + repr(queue) if queue else ''}.")


# -- jobs-health ---------------------------------------------------------------------


@click.command(name="jobs-health", cls=CeleryCommand, epilog=EXIT_CODES)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "prometheus"]),
    default="table",
    show_default=True,
    cls=CeleryOption,
    help_group=_OUTPUT,
    help="An aligned table, JSON, or the Prometheus text format.",
)
@click.option(
    "-j",
    "--json",
    "as_json",
    is_flag=True,
    cls=CeleryOption,
    help_group=_OUTPUT,
    help="Same as --format json.",
)
@click.option(
    "--no-color",
    is_flag=True,
    cls=CeleryOption,
    help_group=_OUTPUT,
    help="No colours (as celery --no-color or NO_COLOR).",
)
@click.option(
    "--queue", type=QUEUE, metavar="NAME", cls=CeleryOption, help_group=_SELECT, help="Only this queue."
)
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="METRIC>N",
    cls=CeleryOption,
    help_group="Check Options",
    help="Exit 1 when crossed on any queue, e.g. failure_rate>10 or pending>1000 (repeatable).",
)
@click.pass_context
@handle_preload_options
def health_command(
    ctx: click.Context,
    /,
    output_format: str,
    as_json: bool,
    no_color: bool,
    queue: str | None,
    fail_on: tuple[str, ...],
    **kwargs: Any,
) -> None:
    """Queues, rate limits, dead letters and workers at a glance."""
    # Imported here, not at the top: Celery imports this module for every ``celery`` command.
    import os
    import sys

    from celery_jobs_ext import health

    try:
        thresholds = [health.parse_threshold(text) for text in fail_on]
    except ValueError as exc:
        raise click.UsageError(str(exc), ctx=ctx) from exc
    explicit = ctx.get_parameter_source("output_format") is click.core.ParameterSource.COMMANDLINE
    if as_json and explicit and output_format != "json":
        raise click.UsageError(f"--json and --format {output_format} conflict: give one of them.", ctx=ctx)
    require_app(ctx)
    color = not (no_color or ctx.obj.no_color or os.environ.get("NO_COLOR")) and sys.stdout.isatty()
    with command_errors():
        text, crossed = health.run(
            ctx.obj.app,
            output_format="json" if as_json else output_format,
            queue=queue,
            color=color,
            thresholds=thresholds,
        )
    if queue is not None and warn_if_unknown(ctx, queue) and thresholds:
        crossed.append(f"queue {queue!r} is unknown: no setting, rate limit, metric or worker knows it")
    click.echo(text, color=color)
    for line in crossed:
        ctx.obj.error(f"jobs-health: threshold crossed: {line}", fg="red")
    ctx.exit(1 if crossed else 0)


# -- jobs-ratelimit ------------------------------------------------------------------


@click.group(name="jobs-ratelimit", epilog=EXIT_CODES)
@click.pass_context
@handle_preload_options
def ratelimit_command(ctx: click.Context, **kwargs: Any) -> None:
    """Show and change per-queue rate limits at run time (every worker picks them up in ~2 s)."""
    require_app(ctx)


def _rate(per_minute: float) -> str:
    return f"{per_minute:,.2f}".rstrip("0").rstrip(".")


def _limiter(ctx: click.Context) -> Any:
    from celery_jobs_ext.ratelimit import RateLimiter

    return RateLimiter(ctx.obj.app)


@ratelimit_command.command(name="show", cls=CeleryCommand, epilog=EXIT_CODES)
@_json_option
@click.option(
    "--queue", type=QUEUE, cls=CeleryOption, default=None, help_group=_SELECT, help="Only this queue."
)
@click.pass_context
def ratelimit_show(ctx: click.Context, /, as_json: bool, queue: str | None, **kwargs: Any) -> None:
    """Effective limit of each queue, where it comes from, and starts in the last 60 s."""
    with command_errors():
        limiter = _limiter(ctx)
        from celery_jobs_ext.config import ConfigCache

        queues = sorted(set(ConfigCache.get(ctx.obj.app).queue_rate_limits) | set(limiter.overrides()))
        if queue is not None:
            queues = [queue]
            warn_if_unknown(ctx, queue)
        usage = limiter.usage_many(queues)
        rows = {}
        for name in queues:
            limit, source = limiter.effective_limit(name)
            rows[name] = {"limit_per_minute": limit, "source": source, "started_last_60s": usage[name]}
    if as_json:
        echo_json(ctx, rows)
        return
    if not rows:
        ctx.obj.echo("No rate-limited queues (jobs_queue_rate_limits is empty and nothing is set).")
        return
    width = max(len(name) for name in rows)
    ctx.obj.echo(f"{'queue':<{width}}  {'limit/min':>10}  {'source':<8}  {'last 60 s':>9}")
    for name, row in rows.items():
        limit = _rate(row["limit_per_minute"]) if row["limit_per_minute"] else "none"
        ctx.obj.echo(f"{name:<{width}}  {limit:>10}  {row['source']:<8}  {row['started_last_60s']:>9,}")


@ratelimit_command.command(name="set", cls=CeleryCommand, epilog=EXIT_CODES)
@_json_option
@click.argument("queue", type=QUEUE)
@click.argument("limit")
@click.pass_context
def ratelimit_set(ctx: click.Context, /, as_json: bool, queue: str, limit: str, **kwargs: Any) -> None:
    """Set QUEUE's limit to LIMIT: jobs per minute (50, 1.5) or a rate (10/s, 100/m, 1000/h); 0 = none.

    LIMIT is at most 100000/s and at least one job per day (0.042/h).
    """
    from celery_jobs_ext.errors import InvalidRate
    from celery_jobs_ext.rates import parse_rate

    try:
        value = parse_rate(limit)
    except InvalidRate as exc:
        raise click.BadParameter(str(exc), param_hint="LIMIT") from None
    warn_if_unknown(ctx, queue)
    with command_errors():
        per_minute = _limiter(ctx).set_limit(queue, value)
    if as_json:
        echo_json(ctx, {"queue": queue, "limit_per_minute": per_minute, "source": "override"})
        return
    shown = f"{_rate(per_minute)} jobs per minute" if per_minute else "no limit"
    ctx.obj.echo(f"{queue}: {shown} (override; workers pick it up within a few seconds)")


@ratelimit_command.command(name="unset", cls=CeleryCommand, epilog=EXIT_CODES)
@_json_option
@click.argument("queue", type=QUEUE)
@click.pass_context
def ratelimit_unset(ctx: click.Context, /, as_json: bool, queue: str, **kwargs: Any) -> None:
    """Drop QUEUE's run-time override: back to jobs_queue_rate_limits."""
    with command_errors():
        limiter = _limiter(ctx)
        existed = limiter.unset_limit(queue)
    if not existed:
        warn_if_unknown(ctx, queue)
    with command_errors():
        limit, source = limiter.effective_limit(queue)
    if as_json:
        echo_json(ctx, {"queue": queue, "removed": existed, "limit_per_minute": limit, "source": source})
        return
    shown = f"{_rate(limit)} jobs per minute ({source})" if limit else "no limit"
    ctx.obj.echo(f"{queue}: {'override removed' if existed else 'no override was set'}; now {shown}")
