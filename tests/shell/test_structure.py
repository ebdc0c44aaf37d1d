"""Structure: parsing and policy work without Celery; the public names stay where they were."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import celery_jobs_ext
from celery_jobs_ext import errors, shell
from tests.harness import ROOT

PUBLIC_NAMES = [
    "ShellCommandNotAllowed", "ShellCommandFailed", "ShellCommandTimedOut", "validate_command",
    "run_command", "shell_task", "register_shell_task", "ShellTask", "SHELL_TASK_NAME",
    "DENIED_ARGUMENTS", "REFUSED_PROGRAMS", "DEFAULT_SEARCH_PATH", "MAX_COMMAND_LENGTH",
    "STDERR_TAIL_BYTES", "DEFAULT_ALLOWED_ENVIRONMENT", "check_environment",
]  # fmt: skip


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_validating_a_command_imports_nothing_from_celery() -> None:
    result = run_python(
        "import sys\n"
        "from celery_jobs_ext.shell import validate_command, check_environment\n"
        "argv = validate_command('ls -l', ['ls'], denied_arguments={}, search_path='/usr/bin:/bin')\n"
        "check_environment({'LANG': 'C'})\n"
        "assert argv[1:] == ['-l'], argv\n"
        "assert 'celery' not in sys.modules, sorted(m for m in sys.modules if m.startswith('celery'))\n"
    )
    assert result.returncode == 0, result.stderr


def test_validate_command_without_settings_and_without_an_app_reads_no_configuration() -> None:
    result = run_python(
        "from celery_jobs_ext.shell import validate_command\n"
        "try:\n"
        "    validate_command('ls', [], denied_arguments={}, search_path='/usr/bin:/bin')\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    assert "ShellCommandNotAllowed" in result.stdout and "jobs_allowed_shell_commands" in result.stdout


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_name_is_importable_from_the_shell_package(name: str) -> None:
    assert getattr(shell, name) is not None


@pytest.mark.parametrize("name", ["ShellCommandNotAllowed", "ShellCommandFailed", "ShellCommandTimedOut"])
def test_shell_errors_live_in_errors_and_are_the_same_class_everywhere(name: str) -> None:
    assert getattr(shell, name) is getattr(errors, name) is getattr(celery_jobs_ext, name)
    assert issubclass(getattr(errors, name), errors.JobsError)


def test_each_shell_module_is_well_under_600_lines() -> None:
    package = Path(shell.__file__).parent
    sizes = {
        str(path.relative_to(package)): len(path.read_text().splitlines()) for path in package.rglob("*.py")
    }
    assert max(sizes.values()) < 600, sizes
