"""The helper process that runs one command and leaves no descendant behind.

Run as a script, never imported by the worker: ``python -I -S reaper.py STATUS_FD ENV_FD
PARENT_PID SANDBOX -- PROGRAM ARG...``. It uses only the standard library (and
:mod:`.landlock` beside it, loaded by path), so it starts in milliseconds and needs no
installed package. The program's environment arrives on ``ENV_FD``
(``NAME=value`` entries separated by NUL bytes) rather than as the helper's own: Python adds
``LC_CTYPE`` to its environment when the locale is C (PEP 538), which the program must not
inherit.

Why a helper: a process that calls ``setsid`` or double-forks (``wget -b``) leaves the
command's process group, so killing the group misses it, and it is re-parented to init when its
parent exits. On Linux the helper makes itself a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``): orphaned descendants are re-parented to it instead of
init, so when the command exits, or when the runner asks it to stop (SIGTERM, on a timeout),
it kills and reaps every process left below it before exiting. Doing this in the worker
process itself would make a prefork pool child (or the solo worker) the parent of every
stray process of every job; the helper confines that to one command. The helper also asks to
receive SIGTERM when the worker dies (``PR_SET_PDEATHSIG``), and then cleans up the same way.

``SANDBOX`` is ``-`` or the JSON of a :class:`~.sandbox.SandboxPlan` (``{"abi", "exec",
"write", "proc"}``): the helper then confines the command with Landlock between fork and exec, so the command
and everything it starts may execute and write only what the plan lists, read under ``/proc``
only the plan's system-wide files and the command's own ``/proc/<pid>``, and signal only
processes inside the sandbox: not the helper (which stays outside and can still kill them),
not the worker.

Elsewhere (no ``prctl``, no ``/proc``) the helper kills the command's process group only; a
descendant that left it survives.

``STATUS_FD`` gets ``started PID`` once the command runs (so the runner can still kill its
process group should the helper itself be killed), then the outcome: ``exit N``,
``signal N``, ``error ERRNO MESSAGE`` (it could not start) or ``sandbox MESSAGE`` (the
sandbox could not be set up; nothing ran).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _children(parent: int) -> list[int]:
    """Pids whose parent is ``parent``, read from /proc (the stat field after the name)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry))
    return found


def _kill_and_reap_descendants(use_proc: bool, group: int) -> None:
    """SIGKILL everything below this process and reap it, until nothing is left.

    Killed processes cannot fork any more, and their own children are re-parented here (we
    are a subreaper), so each round sees the next generation until there is none.
    """
    with contextlib.suppress(OSError):
        os.killpg(group, signal.SIGKILL)
    me = os.getpid()
    while True:
        if use_proc:
            for pid in _children(me):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _prepare_sandbox(plan_json: str) -> Callable[[], None]:
    """The Landlock ruleset of the plan, and a function that confines the calling process to it.

    The helper calls that function in the command's process, between fork and exec: the
    helper itself stays outside the sandbox, so (with signals scoped) the command cannot kill
    it and escape the clean-up. Everything that can fail is done here, before the fork.
    """
    plan = json.loads(plan_json)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "landlock.py")
    spec = importlib.util.spec_from_file_location("_jobs_landlock", path)
    if spec is None or spec.loader is None:
        raise OSError(0, f"cannot load {path}")
    landlock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(landlock)
    ruleset = landlock.create_ruleset(int(plan["abi"]), plan["exec"], plan["write"], plan.get("proc", ()))
    os.set_inheritable(ruleset, False)

    def enter() -> None:
        try:
            landlock.allow_own_process(ruleset)  # /proc/<this pid>: known only after the fork
            landlock.enforce(ruleset)
        except OSError as error:  # Popen reports only "Exception occurred in preexec_fn"
            os.write(2, f"jobs.shell: {error}\n".encode(errors="replace"))
            raise

    return enter


def main(argv: list[str]) -> int:
    status_fd, env_fd, parent, sandbox, separator, *command = argv
    if separator != "--" or not command:
        print("usage: reaper.py STATUS_FD ENV_FD PARENT_PID SANDBOX -- PROGRAM [ARG...]", file=sys.stderr)
        return 2
    status = os.fdopen(int(status_fd), "w")
    os.set_inheritable(status.fileno(), False)
    with os.fdopen(int(env_fd), "rb") as env_pipe:
        entries = env_pipe.read().split(b"\0")
    environment = dict(entry.split(b"=", 1) for entry in entries if b"=" in entry)
    linux = sys.platform.startswith("linux")
    subreaper = linux and _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if linux:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != int(parent):  # the worker died before the line above
            return 1
    enter_sandbox = None
    if sandbox != "-":
        try:
            enter_sandbox = _prepare_sandbox(sandbox)
        except (OSError, ValueError, KeyError, TypeError) as error:
            status.write(f"sandbox {error}\n")
            status.close()
            return 0
    try:
        # Its own session, so the helper can kill the command's group without killing itself.
        child = subprocess.Popen(
            command, env=environment, close_fds=True, start_new_session=True, preexec_fn=enter_sandbox
        )
    except subprocess.SubprocessError as error:  # enter_sandbox failed in the child
        status.write(f"sandbox {error}\n")
        status.close()
        return 0
    except OSError as error:
        status.write(f"error {error.errno or 0} {error.strerror or error}\n")
        status.close()
        return 0
    status.write(f"started {child.pid}\n")
    status.flush()
    if stopping:
        stop(signal.SIGTERM, None)
    while True:
        try:
            _, wait_status = os.waitpid(child.pid, 0)
            break
        except InterruptedError:
            continue
    child.returncode = 0  # reaped above; keeps Popen from waiting again
    if os.WIFSIGNALED(wait_status):
        outcome = f"signal {os.WTERMSIG(wait_status)}"
    else:
        outcome = f"exit {os.waitstatus_to_exitcode(wait_status)}"
    _kill_and_reap_descendants(use_proc=subreaper and os.path.isdir("/proc"), group=child.pid)
    status.write(outcome + "\n")
    status.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
