"""Running one argv without a shell, with capped output, and nothing left running afterwards.

The program runs under a small helper process (:mod:`.reaper`) that, on Linux, is a child
subreaper: when the program exits or the timeout passes, every process it started is killed
and reaped, including ones that called ``setsid`` or double-forked. Where the kernel has
Landlock, the helper confines the program to the plan of :mod:`.sandbox` (what it may
execute, write and signal), with a private ``TMPDIR`` made here and removed after.
Imports nothing from Celery.
"""

from __future__ import annotations

import contextlib
import math
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from celery_jobs_ext.errors import ShellCommandFailed, ShellCommandTimedOut
from celery_jobs_ext.shell.environment import child_environment
from celery_jobs_ext.shell.policy import checked_search_path, current_settings
from celery_jobs_ext.shell.sandbox import (
    EXECUTABLES_SETTING,
    SANDBOX_SETTING,
    WRITABLE_SETTING,
    SandboxPlan,
    checked_mode,
    checked_paths,
    kernel_abi,
    plan_sandbox,
)
from celery_jobs_ext.shell.syntax import refuse

STDERR_TAIL_BYTES = 2048
"""How much of the end of stderr a :class:`ShellCommandFailed` carries."""

REAPER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reaper.py")

_READ_SIZE = 65536
# Once the helper has exited, how long the pipes may stay open (only a process that escaped
# the helper, where there is no subreaper, can hold them) before its group is killed.
_EXIT_DRAIN_SECONDS = 1.0
_POLL_INTERVAL_SECONDS = 0.2
# How long the helper gets to kill and reap everything after SIGTERM before it is killed too.
_STOP_GRACE_SECONDS = 5.0


class _CapturedStream:
    """Keeps the first ``limit`` bytes of a stream (and optionally its last bytes), counts the rest."""

    def __init__(self, limit: int, keep_tail: bool) -> None:
        self.head = bytearray()
        self.tail = b""
        self.dropped = 0
        self.limit = limit
        self.keep_tail = keep_tail

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))
        if self.keep_tail:
            self.tail = (self.tail + chunk)[-STDERR_TAIL_BYTES:]

    def text(self) -> str:
        text = self.head.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[... truncated {self.dropped} bytes]"
        return text

    def tail_text(self) -> str:
        return self.tail.decode("utf-8", errors="replace")


# How a denial reads in a program's error: EACCES, EPERM (a signal), EXDEV (a link or rename
# that would carry a file into a writable place).
_SANDBOX_DENIALS = ("Permission denied", "Operation not permitted", "Invalid cross-device link")
_SANDBOX_NOTE = (
    f"\n[jobs.shell: the command ran in the kernel sandbox ({SANDBOX_SETTING}): writing outside its "
    f"TMPDIR, /dev/null and {WRITABLE_SETTING}, and running programs other than the command's own and "
    f"{EXECUTABLES_SETTING}, fail with 'Permission denied' (signals: 'Operation not permitted')]"
)


class _TimedOut(Exception):
    """Internal: the deadline passed while the program was still running."""


def finite(number: float) -> bool:
    """``math.isfinite``, also for an int too big for a float (not finite, for our purpose)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ask the helper to kill and reap everything; kill its whole session if it does not."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_STOP_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
        process.wait()


def _collect_output(
    process: subprocess.Popen[bytes],
    deadline: float | None,
    stdout: _CapturedStream,
    stderr: _CapturedStream,
) -> None:
    """Read both pipes into ``stdout`` and ``stderr`` until they close or the deadline passes."""
    if process.stdout is None or process.stderr is None:
        raise RuntimeError("the program was started without pipes")
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, stdout)
        selector.register(process.stderr, selectors.EVENT_READ, stderr)
        while selector.get_map():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise _TimedOut
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at >= _EXIT_DRAIN_SECONDS:
                _stop(process)  # something outside the helper's reach still holds the pipes
                return
            wait = _POLL_INTERVAL_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - now)
            for key, _ in selector.select(wait):
                chunk = os.read(key.fd, _READ_SIZE)
                if chunk:
                    key.data.feed(chunk)
                else:
                    selector.unregister(key.fileobj)


def _send_environment(fd: int, environment: Mapping[str, str]) -> None:
    """Write the program's environment to the helper from a thread (it may exceed a pipe's buffer)."""
    data = b"\0".join(os.fsencode(name) + b"=" + os.fsencode(value) for name, value in environment.items())

    def write() -> None:
        with os.fdopen(fd, "wb") as pipe, contextlib.suppress(BrokenPipeError):
            pipe.write(data)

    if len(data) < 4096:  # fits any pipe buffer: no thread needed
        write()
    else:
        threading.Thread(target=write, name="jobs-shell-env", daemon=True).start()


def _final_status(fd: int) -> str:
    """The helper's last status line; kills the command's group if the helper died before it."""
    with os.fdopen(fd, "r") as pipe:
        lines = pipe.read().splitlines()
    started = [int(line.split()[1]) for line in lines if line.startswith("started ")]
    status = lines[-1] if lines and not lines[-1].startswith("started ") else ""
    if not status and started:
        # The helper was killed before reporting (by the command itself?): kill what it ran.
        with contextlib.suppress(OSError):
            os.killpg(started[0], signal.SIGKILL)
    return status


def _remove_tree(path: str) -> None:
    """Remove the command's temporary directory, also parts it made unreadable (chmod 000).

    Directories are made accessible before they are entered; symbolic links are never
    followed (the command may have left one pointing anywhere). Runs once the helper has
    killed everything the command started.
    """
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IRWXU)
    for root, directories, _files in os.walk(path):
        for name in directories:
            inner = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(inner).st_mode):
                    os.chmod(inner, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def _program_path(program: str, cwd: str | None, search_path: str) -> str:
    """Where the helper will find ``program``: what the sandbox must allow to run."""
    if "/" in program:
        return os.path.join(cwd or os.getcwd(), program)
    return shutil.which(program, path=search_path) or program


def _sandbox_plan(
    program: str,
    cwd: str | None,
    environment: dict[str, str],
    mode: str,
    executables: Sequence[str],
    writable: Sequence[str],
) -> tuple[SandboxPlan | None, str | None]:
    """The command's sandbox and its private TMPDIR (set in ``environment``), or ``(None, None)``."""
    mode = checked_mode(mode)
    executables = checked_paths(executables, EXECUTABLES_SETTING)
    writable = checked_paths(writable, WRITABLE_SETTING)
    search_path = environment.get("PATH", os.defpath)
    program = _program_path(program, cwd, search_path)
    if mode == "off" or kernel_abi() < 1:
        return plan_sandbox(program, mode=mode, executables=(), writable=(), search_path=search_path), None
    private = tempfile.mkdtemp(prefix="jobs-shell-")
    try:
        plan = plan_sandbox(
            program,
            mode=mode,
            executables=executables,
            writable=(private, *writable),
            search_path=search_path,
        )
    except BaseException:
        _remove_tree(private)
        raise
    environment["TMPDIR"] = private
    return plan, private


def _checked_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not finite(timeout):
        raise ValueError(f"timeout must be a finite positive number of seconds, got {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def run_command(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_output: int = 65536,
    search_path: str | None = None,
    allowed_env: Sequence[str] = (),
    mask: Callable[[str], str] | None = None,
    sandbox: str = "auto",
    sandbox_executables: Sequence[str] = (),
    writable_paths: Sequence[str] = (),
) -> dict[str, object]:
    """Run one program from an argv without a shell and return its exit code and output.

    The argv is not validated here; pass it through :func:`validate_command` first. The
    program gets stdin from ``/dev/null`` and runs under a helper that, when the program
    exits or the timeout passes, kills and reaps every process it started (on Linux, even
    ones that left its session; elsewhere, its process group). Output is read as it comes and
    capped, so a program printing gigabytes costs the worker ``max_output`` bytes per stream.

    Arguments:
        argv: The program (best an absolute path) and its arguments.
        cwd: Working directory of the program (not checked against
            ``jobs_shell_allowed_cwd`` here: the task does that, see :func:`check_cwd`).
        env: If given, the program's whole environment besides ``PATH`` (set to the search
            path); only names of the allow list (``LANG``, ``LC_*``, ``TZ`` ... plus
            ``allowed_env``) pass. If ``None``, the program inherits the worker's environment.
        timeout: Seconds before the program and everything it started are killed; ``None``
            waits.
        max_output: Bytes of stdout and of stderr kept each; the rest is drained and replaced
            by a ``[... truncated N bytes]`` marker.
        search_path: ``PATH`` given to the program with ``env``; ``None`` reads
            ``jobs_shell_path`` (only when ``env`` is given).
        allowed_env: Variable names (or ``PREFIX_*``) allowed in ``env`` besides the defaults.
        mask: Applied to the argv and stderr tail a :class:`ShellCommandFailed` carries, as
            that error travels to the result backend; e.g. the secret masker.
        sandbox: ``"auto"`` (the default), ``"required"`` or ``"off"``: the kernel sandbox
            (see :mod:`.sandbox`; the task passes ``jobs_shell_sandbox``). When it is on, the
            program gets a private ``TMPDIR``, removed afterwards.
        sandbox_executables: More files or directories the program may execute (the task
            passes ``jobs_shell_sandbox_executables``).
        writable_paths: Files or directories the program may write besides its ``TMPDIR``
            and ``/dev/null`` (the task passes ``jobs_shell_writable_paths``).

    Returns:
        ``{"returncode": 0, "stdout": str, "stderr": str}``, decoded as UTF-8 with invalid
        bytes replaced.

    Raises:
        ShellCommandFailed: The program exited non-zero, was killed by a signal, or could not
            start (code 127 when not found, 126 otherwise), with the last
            :data:`STDERR_TAIL_BYTES` of stderr.
        ShellCommandTimedOut: The timeout passed (a ShellCommandFailed).
        ShellCommandNotAllowed: ``env`` names a variable outside the allow list or holds a NUL;
            ``sandbox`` is ``"required"`` and the kernel has no Landlock; a path the program
            may execute is also writable.
        TypeError: ``argv`` is a str or holds non-str items, or ``cwd`` is not a str.
        ValueError: ``argv`` is empty, ``cwd`` is not an existing directory, ``timeout`` is
            not a finite positive number or ``max_output`` negative.
    """
    if isinstance(argv, (str, bytes)):
        raise TypeError("run_command() takes an argv list; use validate_command() on a string")
    arguments = list(argv)
    if not arguments:
        raise ValueError("run_command() needs a non-empty argv")
    if not all(isinstance(argument, str) for argument in arguments):
        raise TypeError("every argv item must be a str")
    if any("\x00" in argument for argument in arguments):
        refuse("an argument contains a NUL character")
    timeout = _checked_timeout(timeout)
    if cwd is not None:
        if not isinstance(cwd, str) or not cwd or "\x00" in cwd:
            raise TypeError(f"cwd must be a directory path as a non-empty str without NUL, got {cwd!r}")
        if not os.path.isdir(cwd):
            raise ValueError(f"cwd {cwd!r} is not an existing directory")
    if isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 0:
        raise ValueError(f"max_output must be a non-negative int, got {max_output!r}")
    if env is not None:
        path = current_settings().shell_path if search_path is None else search_path
        child_env = dict(child_environment(env, checked_search_path(path), allowed_env))
    else:
        child_env = dict(os.environ)
    try:
        plan, private = _sandbox_plan(
            arguments[0], cwd, child_env, sandbox, sandbox_executables, writable_paths
        )
    except OSError as error:  # no temporary directory (disk full, TMPDIR of the worker gone)
        shown = [mask(argument) if mask else argument for argument in arguments]
        raise ShellCommandFailed(shown, 126, f"could not start: no temporary directory: {error}") from error
    try:
        return _run(arguments, cwd, child_env, timeout, max_output, mask, plan)
    finally:
        if private is not None:
            _remove_tree(private)


def _run(
    arguments: list[str],
    cwd: str | None,
    child_env: Mapping[str, str],
    timeout: float | None,
    max_output: int,
    mask: Callable[[str], str] | None,
    plan: SandboxPlan | None,
) -> dict[str, object]:
    """Run the validated argv under the helper; see :func:`run_command`."""

    def masked(text: str) -> str:
        return mask(text) if mask is not None else text

    def failure(code: int, tail: str) -> ShellCommandFailed:
        tail = masked(tail)
        if plan is not None and any(sign in tail for sign in _SANDBOX_DENIALS):
            tail = tail.rstrip("\n") + _SANDBOX_NOTE
        return ShellCommandFailed([masked(argument) for argument in arguments], code, tail)

    if not sys.executable:
        raise failure(126, "could not start: no Python interpreter (sys.executable) to run the helper")
    deadline = None if timeout is None else time.monotonic() + timeout
    status_read, status_write = os.pipe()
    env_read, env_write = os.pipe()
    helper = [
        sys.executable, "-I", "-S", REAPER_SCRIPT,
        str(status_write), str(env_read), str(os.getpid()),
        "-" if plan is None else plan.to_json(), "--",
    ]  # fmt: skip
    try:
        process = subprocess.Popen(
            [*helper, *arguments],
            shell=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env={},
            start_new_session=True,
            close_fds=True,
            pass_fds=(status_write, env_read),
        )
    except OSError as error:
        os.close(status_read)
        os.close(env_write)
        code = 127 if isinstance(error, FileNotFoundError) else 126
        raise failure(code, f"could not start: {error}") from error
    finally:
        os.close(status_write)
        os.close(env_read)
    _send_environment(env_write, child_env)

    stdout = _CapturedStream(max_output, keep_tail=False)
    stderr = _CapturedStream(max_output, keep_tail=True)
    try:
        _collect_output(process, deadline, stdout, stderr)
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            raise _TimedOut from None
    except _TimedOut:
        _stop(process)
        _final_status(status_read)
        raise ShellCommandTimedOut(
            [masked(argument) for argument in arguments],
            -signal.SIGKILL,
            masked(stderr.tail_text()),
            float(timeout or 0.0),
        ) from None
    except BaseException:
        # Celery's soft time limit and worker shutdown arrive as exceptions here: never
        # leave the program running behind the task.
        _stop(process)
        _final_status(status_read)
        raise
    finally:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()

    status = _final_status(status_read)
    kind, _, detail = status.partition(" ")
    if kind == "error":
        number, _, message = detail.partition(" ")
        code = 127 if number == "2" else 126
        raise failure(code, f"could not start: {message} ({arguments[0]})")
    if kind == "sandbox":
        raise failure(126, f"could not start: the kernel sandbox could not be set up: {detail}")
    if kind == "signal":
        returncode = -int(detail)
    elif kind == "exit":
        returncode = int(detail)
    else:  # the helper itself died before reporting
        returncode = process.returncode if process.returncode else -signal.SIGKILL
    if returncode != 0:
        raise failure(returncode, stderr.tail_text())
    errors = stderr.text()
    if plan is not None and any(sign in errors for sign in _SANDBOX_DENIALS):
        # A wrapper that ignores its failed exec (Debian's pg_wrapper before round 5) exits 0
        # with nothing done: the note makes the denial visible in the result too.
        errors = errors.rstrip("\n") + _SANDBOX_NOTE + "\n"
    return {"returncode": returncode, "stdout": stdout.text(), "stderr": errors}
