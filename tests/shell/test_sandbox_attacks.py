"""The author's own attack pass on the kernel sandbox: real programs, each attack confirmed.

Each attack is run twice through ``run_command`` with the argument rules bypassed: without the
sandbox it must get through (it writes outside the writable paths, or runs a program by a
route the program offers), so the case is a real attack on this machine; with the sandbox it
must not. Write attacks target a directory that is the command's working directory and not
writable; exec attacks write their marker into the writable directory, so only the exec
denial can stop them. A program not installed skips its cases. Counts in docs/security.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from celery_jobs_ext.errors import ShellCommandFailed
from celery_jobs_ext.shell import run_command
from celery_jobs_ext.shell.sandbox import kernel_abi

pytestmark = pytest.mark.skipif(kernel_abi() < 1, reason="this kernel has no Landlock")
PATH = "/usr/local/bin:/usr/bin:/bin"

# {m}: the marker; {src}: a readable file; {existing}: a file in {dir} whose content must stay;
# {dir}: the directory that must stay unchanged (also the working directory); {out}: writable;
# {repo}: a git repository; {tarball}, {zipfile}, {arglist}, {tcl_write}, {tcl_exec}: inputs;
# {shm}: a name under /dev/shm.
WRITE = [
    ("tee", ["tee", "{m}"]),
    ("cp", ["cp", "{src}", "{m}"]),
    ("dd of=", ["dd", "if={src}", "of={m}"]),
    ("sort -o", ["sort", "-o", "{m}", "{src}"]),
    ("shuf -o", ["shuf", "-o", "{m}", "{src}"]),
    ("uniq IN OUT", ["uniq", "{src}", "{m}"]),
    ("split", ["split", "{src}", "{dir}/split-"]),
    ("csplit", ["csplit", "-f", "{dir}/csplit-", "{src}", "1"]),
    ("tar -cf", ["tar", "-cf", "{m}", "{src}"]),
    ("tar -xf into cwd", ["tar", "-xf", "{tarball}"]),
    ("zip", ["zip", "{m}", "{src}"]),
    ("unzip into cwd", ["unzip", "-o", "{zipfile}"]),
    ("gzip -k", ["gzip", "-k", "{existing}"]),
    ("xz -k", ["xz", "-k", "{existing}"]),
    ("bzip2 -k", ["bzip2", "-k", "{existing}"]),
    ("zstd -o", ["zstd", "-q", "{src}", "-o", "{m}"]),
    ("sed -i", ["sed", "-i", "s/original/changed/", "{existing}"]),
    ("sed w", ["sed", "-n", "w {m}", "{src}"]),
    ("gawk print >", ["gawk", 'BEGIN {{ print 1 > "{m}" }}']),
    ("mawk print >", ["mawk", 'BEGIN {{ print 1 > "{m}" }}']),
    ("perl open", ["perl", "-e", 'open(F, ">{m}") or die "$!\\n"']),
    ("python open", ["python3", "-c", "open('{m}', 'w')"]),
    ("node writeFileSync", ["node", "-e", "require('fs').writeFileSync('{m}', 'x')"]),
    ("find -fprint", ["find", "{src}", "-fprint", "{m}"]),
    ("git clone", ["git", "clone", "-q", "{repo}", "{dir}/clone"]),
    ("git init", ["git", "init", "-q", "{dir}/newrepo"]),
    ("git archive -o", ["git", "-C", "{repo}", "archive", "-o", "{m}", "HEAD"]),
    ("git bundle create", ["git", "-C", "{repo}", "bundle", "create", "{m}", "HEAD"]),
    ("make $(file >)", ["make", "-f", "/dev/null", "--eval", "$(file >{m},x)"]),
    ("vim -es w", ["vim", "-u", "NONE", "-es", "-c", "w {m}", "-c", "q!"]),
    ("ex w", ["ex", "-u", "NONE", "-s", "-c", "w! {m}", "-c", "q!", "{src}"]),
    ("curl -o", ["curl", "-s", "-o", "{m}", "file://{src}"]),
    ("curl --trace", ["curl", "-s", "--trace", "{m}", "file://{src}"]),
    ("wget -o log", ["wget", "-q", "-o", "{m}", "http://127.0.0.1:9/"]),
    ("sqlite3 new db", ["sqlite3", "{m}", "create table t(a)"]),
    ("rsync", ["rsync", "{src}", "{m}"]),
    ("install", ["install", "{src}", "{m}"]),
    ("mktemp -p", ["mktemp", "-p", "{dir}"]),
    ("mkfifo", ["mkfifo", "{m}"]),
    ("mknod block", ["mknod", "{m}", "b", "7", "0"]),
    ("ln -s", ["ln", "-s", "{src}", "{m}"]),
    ("ln (hard)", ["ln", "{existing}", "{out}/hard"]),
    ("mv out", ["mv", "{existing}", "{out}/moved"]),
    ("rm", ["rm", "-f", "{existing}"]),
    ("truncate", ["truncate", "-s", "0", "{existing}"]),
    ("python os.truncate", ["python3", "-c", "import os; os.truncate('{existing}', 0)"]),
    ("xxd IN OUT", ["xxd", "{src}", "{m}"]),
    ("openssl rand -out", ["openssl", "rand", "-out", "{m}", "8"]),
    ("cmake -E touch", ["cmake", "-E", "touch", "{m}"]),
    ("as -o", ["as", "-o", "{m}", "/dev/null"]),
    ("gcc -o", ["gcc", "-x", "c", "-c", "/dev/null", "-o", "{m}"]),
    ("socat CREATE", ["socat", "-u", "OPEN:{src}", "CREATE:{m}"]),
    ("script typescript", ["script", "-q", "-c", "true", "{m}"]),
    (
        "ssh -E log",
        ["ssh", "-E", "{m}", "-o", "BatchMode=yes", "-o", "ConnectTimeout=1", "-p", "9", "127.0.0.1", "true"],
    ),
    ("touch", ["touch", "{m}"]),
    ("mkdir", ["mkdir", "{m}"]),
    ("bash >", ["bash", "-c", "echo x > {m}"]),
    ("dash >", ["dash", "-c", "echo x > {m}"]),
    ("tclsh", ["tclsh", "{tcl_write}"]),
    ("gpg -o", ["gpg", "--batch", "--homedir", "{out}", "-o", "{m}", "--dearmor", "{src}"]),
    ("python /dev/shm", ["python3", "-c", "open('{shm}', 'w')"]),
]
EXEC = [
    ("find -exec", ["find", "{src}", "-exec", "/bin/sh", "-c", "touch {m}", ";"]),
    (
        "gcc -wrapper",
        ["gcc", "-wrapper", "/bin/sh,-c,touch {m}", "-x", "c", "-c", "/dev/null", "-o", "/dev/null"],
    ),
    (
        "tar checkpoint-action",
        ["tar", "-cf", "/dev/null", "--checkpoint=1", "--checkpoint-action=exec=touch {m}", "{src}"],
    ),
    ("tar -I", ["tar", "-I", "/usr/bin/touch {m}", "-cf", "/dev/null", "{src}"]),
    ("git alias !", ["git", "-C", "{repo}", "-c", "alias.x=!touch {m}", "x"]),
    ("git ext::", ["git", "-c", "protocol.ext.allow=always", "ls-remote", "ext::/usr/bin/touch {m}"]),
    ("git clone -u", ["git", "clone", "-q", "-u", "/usr/bin/touch {m};", "{repo}", "{out}/c2"]),
    ("ssh ProxyCommand", ["ssh", "-o", "BatchMode=yes", "-o", "ProxyCommand=touch {m}", "x"]),
    ("make recipe", ["make", "-f", "/dev/null", "--eval", "x:;touch {m}", "x"]),
    ("vim !", ["vim", "-u", "NONE", "-es", "-c", "!touch {m}", "-c", "q!"]),
    ("gawk system", ["gawk", 'BEGIN {{ system("touch {m}") }}']),
    ("mawk system", ["mawk", 'BEGIN {{ system("touch {m}") }}']),
    ("perl system", ["perl", "-e", 'system("/usr/bin/touch", "{m}") == 0 or die "$!\\n"']),
    ("perl exec sh", ["perl", "-e", 'exec("/bin/sh", "-c", "touch {m}") or die "$!\\n"']),
    ("python os.system", ["python3", "-c", "import os, sys; sys.exit(os.system('touch {m}'))"]),
    (
        "python subprocess",
        ["python3", "-c", "import subprocess; subprocess.run(['touch', '{m}'], check=True)"],
    ),
    ("node execSync", ["node", "-e", "require('child_process').execSync('touch {m}')"]),
    ("sed e", ["sed", "1e touch {m}", "{src}"]),
    ("sqlite3 .shell", ["sqlite3", ":memory:", ".shell touch {m}"]),
    ("sqlite3 .system", ["sqlite3", ":memory:", ".system touch {m}"]),
    ("env", ["env", "/usr/bin/touch", "{m}"]),
    ("nohup", ["nohup", "/usr/bin/touch", "{m}"]),
    ("timeout", ["timeout", "5", "/usr/bin/touch", "{m}"]),
    ("xargs", ["xargs", "-a", "{arglist}", "/usr/bin/touch"]),
    ("bash external", ["bash", "-c", "/usr/bin/touch {m}"]),
    ("dash external", ["dash", "-c", "/usr/bin/touch {m}"]),
    ("socat EXEC", ["socat", "-u", "/dev/null", "EXEC:/usr/bin/touch {m}"]),
    ("script -c", ["script", "-q", "-c", "/usr/bin/touch {m}", "/dev/null"]),
    ("zip -TT", ["zip", "-q", "{out}/a.zip", "{src}", "-T", "-TT", "/usr/bin/touch {m}"]),
    ("cmake -E env", ["cmake", "-E", "env", "/usr/bin/touch", "{m}"]),
    ("tclsh exec", ["tclsh", "{tcl_exec}"]),
    ("python execv", ["python3", "-c", "import os; os.execv('/usr/bin/touch', ['touch', '{m}'])"]),
]


def snapshot(directory: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for root, directories, files in os.walk(directory):
        for name in directories + files:
            path = Path(root, name)
            try:
                found[str(path)] = path.read_bytes() if path.is_file() and not path.is_symlink() else "node"
            except OSError:
                found[str(path)] = "unreadable"
    return found


def prepare(base: Path, kind: str) -> tuple[dict[str, str], Path, Path]:
    """The inputs of one attempt: values for the templates, the directory to watch, ``out``."""
    inputs, out, watched = base / "inputs", base / "out", base / "dir"
    for directory in (inputs, out, watched):
        directory.mkdir(parents=True)
    src = inputs / "src.txt"
    src.write_text("hello\nhello\nworld\n")
    (watched / "existing").write_text("original\n")
    repo = inputs / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f").write_text("x\n")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    subprocess.run(["tar", "-cf", str(inputs / "t.tar"), "-C", str(inputs), "src.txt"], check=True)
    if shutil.which("zip"):
        subprocess.run(["zip", "-qj", str(inputs / "z.zip"), str(src)], check=True)
    marker = (out if kind == "exec" else watched) / "MARK"
    (inputs / "args").write_text(f"{marker}\n")
    (inputs / "w.tcl").write_text(f"set f [open {marker} w]\nclose $f\n")
    (inputs / "x.tcl").write_text(f"exec /usr/bin/touch {marker}\n")
    values = {
        "m": str(marker), "src": str(src), "existing": str(watched / "existing"), "dir": str(watched),
        "out": str(out), "repo": str(repo), "tarball": str(inputs / "t.tar"),
        "zipfile": str(inputs / "z.zip"), "arglist": str(inputs / "args"),
        "tcl_write": str(inputs / "w.tcl"), "tcl_exec": str(inputs / "x.tcl"),
        "shm": f"/dev/shm/jobs-sandbox-test-{os.getpid()}-{base.name}",
    }  # fmt: skip
    return values, watched, out


def attempt(base: Path, kind: str, template: list[str], sandbox: str) -> bool:
    """Run one attack; whether it got through."""
    values, watched, out = prepare(base, kind)
    argv = [word.format(**values) for word in template]
    program = shutil.which(argv[0], path=PATH)
    if program is None:
        pytest.skip(f"{argv[0]} is not installed")
    before = snapshot(watched)
    with contextlib.suppress(ShellCommandFailed):  # failing is how most attacks end in the sandbox
        run_command([program, *argv[1:]], env={}, search_path=PATH, cwd=str(watched), timeout=30,
                    sandbox=sandbox, writable_paths=[str(out)])  # fmt: skip
    shm = Path(values["shm"])
    try:
        if kind == "exec":
            return Path(values["m"]).exists()
        return snapshot(watched) != before or shm.exists() or (out / "hard").exists()
    finally:
        if shm.exists():
            shm.unlink()
        subprocess.run(["chmod", "-R", "u+rwx", str(base)], check=False)


CASES = [pytest.param("write", t, id=f"write: {n}") for n, t in WRITE]
CASES += [pytest.param("exec", t, id=f"exec: {n}") for n, t in EXEC]


@pytest.mark.parametrize(("kind", "template"), CASES)
def test_the_attack_gets_through_without_the_sandbox_and_not_with_it(
    tmp_path: Path, kind: str, template: list[str]
) -> None:
    assert attempt(tmp_path / "off", kind, template, "off"), "not an attack on this machine"
    assert not attempt(tmp_path / "on", kind, template, "auto")
