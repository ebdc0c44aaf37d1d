"""ansible, kubectl, helm and terraform listed by bare name: what they run and where.

``ansible localhost -m shell -a 'cmd'`` runs a command on the worker, and so does a template
lookup in ``-e`` (``{{ lookup('pipe', 'cmd') }}``), an inventory that is an executable
(``-i /usr/bin/prog`` is run as a dynamic inventory script), a vault password file that is an
executable, ``--ssh-common-args -oProxyCommand=...``; ``ansible-playbook /path/x.yml`` runs
whatever tasks a playbook anywhere on disk holds; ``ansible-pull`` clones and runs a
repository. ``kubectl NAME`` runs any ``kubectl-NAME`` on the search path, ``kubectl cp``
writes local files, ``create -f URL``/``apply``/``exec``/``run`` change a cluster or run code
in it, ``--kubeconfig``/``--server``/``--token`` point it at another cluster, ``--profile``
writes a file. ``helm install``/``upgrade`` deploy, ``--post-renderer`` runs a program,
``template --output-dir`` writes files. ``terraform apply``/``destroy``/``import`` change
real infrastructure, ``-chdir`` runs another configuration, ``-out`` writes a plan file.

So: ansible runs bare only the modules ``ping`` and ``setup`` (no ``-a``), playbooks only by
a relative path inside the working directory, inventories only as host lists or relative
files; kubectl, helm and terraform only their read-only subcommands; and each refuses the
options above. Anything else needs an argument pattern that spells it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.syntax import refuse


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ANSIBLE_REFUSED = (
    "-a", "--args", "-e", "--extra-vars", "-M", "--module-path", "--vault-password-file",
    "--vault-pass-file", "--vault-id", "--ssh-common-args", "--ssh-extra-args", "--sftp-extra-args",
    "--scp-extra-args", "--tree", "--playbook-dir", "--become-password-file",
    "--connection-password-file", "--output", "--start-at-task", "--step",
)  # fmt: skip
_ANSIBLE_MODULES = frozenset(
    {"ping", "setup", "ansible.builtin.ping", "ansible.builtin.setup", "gather_facts",
     "ansible.builtin.gather_facts"}
)  # fmt: skip
_ANSIBLE_ALLOWED_TOOLS = frozenset({"ansible", "ansible-playbook", "ansible-inventory", "ansible-doc",
                                    "ansible-config"})  # fmt: skip


def _long_option(word: str, options: Sequence[str]) -> str | None:
    """The option of ``options`` that ``word`` spells or abbreviates (argparse takes prefixes)."""
    name = word.split("=", 1)[0]
    if name in options:
        return name
    if name.startswith("--") and len(name) > 2:
        found = [option for option in options if option.startswith(name)]
        return found[0] if found else None
    if name.startswith("-") and not name.startswith("--"):
        # argparse: a short option with its value glued (-eFOO, -mshell, -a'cmd')
        return next((option for option in options if len(option) == 2 and name.startswith(option)), None)
    return None


def _value(word: str, option: str, following: str) -> str:
    """The value ``option`` gets from ``word``: after ``=``, glued to a short option, or next."""
    if "=" in word:
        return word.partition("=")[2]
    if len(option) == 2 and word != option:
        return word[2:]
    return following


def check_ansible(
    program: str, tool: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset()
) -> None:
    """Refuse what makes ansible run commands on the worker or hosts, or load code from a path."""
    if tool not in _ANSIBLE_ALLOWED_TOOLS:
        if arguments and all(word in ("--help", "--version", "-h") for word in arguments):
            return
        refuse(f"{program!r} installs, encrypts or runs code from elsewhere; pin it with a pattern")
    for position, word in enumerate(arguments):
        if position in trusted:
            continue
        following = arguments[position + 1] if position + 1 < len(arguments) else ""
        option = _long_option(word, (*_ANSIBLE_REFUSED, "-m", "--module-name", "-i", "--inventory", "-t"))
        if option == "-t" and tool == "ansible":
            refuse(f"argument {word!r} of {program!r} writes output files into a directory (--tree)")
        if option in _ANSIBLE_REFUSED:
            refuse(
                f"argument {word!r} of {program!r} runs commands or templates on the worker or "
                "loads code or writes files (-a, -e, -M, vault password files, ssh arguments)"
            )
        if option in ("-m", "--module-name") and _value(word, option, following) not in _ANSIBLE_MODULES:
            refuse(
                f"argument {word!r} of {program!r}: a bare-listed ansible runs only the modules "
                f"{', '.join(sorted(_ANSIBLE_MODULES))}; pin others with a pattern"
            )
        if option in ("-i", "--inventory") and "/" in _value(word, option, following):
            refuse(
                f"argument {word!r} of {program!r} names an inventory by path (an executable one "
                "is run); give a host list (host1,host2,) or a file in the working directory"
            )
        # a playbook (any name) runs every task it holds: only one of the working directory
        outside = word.startswith("/") or ".." in word.split("/")
        if tool == "ansible-playbook" and not word.startswith("-") and outside:
            refuse(
                f"argument {word!r} of {program!r} is a playbook outside the working directory; "
                "a playbook runs every task it holds, so pin it with a pattern"
            )


# Read-only subcommands, and for those with actions, the read-only actions.
_KUBECTL_VERBS: Mapping[str, frozenset[str] | None] = MappingProxyType(
    {
        "get": None, "describe": None, "logs": None, "top": None, "explain": None,
        "api-resources": None, "api-versions": None, "version": None, "events": None,
        "cluster-info": frozenset({""}), "auth": frozenset({"can-i", "whoami"}),
        "config": frozenset({"view", "get-contexts", "current-context", "get-clusters", "get-users"}),
        "rollout": frozenset({"status", "history"}),
    }
)  # fmt: skip
_HELM_VERBS: Mapping[str, frozenset[str] | None] = MappingProxyType(
    {
        "list": None, "ls": None, "status": None, "get": None, "history": None, "hist": None,
        "show": None, "inspect": None, "search": None, "version": None, "env": None, "lint": None,
        "template": None, "repo": frozenset({"list", "ls"}), "dependency": frozenset({"list", "ls"}),
    }
)  # fmt: skip
_TERRAFORM_VERBS: Mapping[str, frozenset[str] | None] = MappingProxyType(
    {
        "version": None, "validate": None, "plan": None, "show": None, "output": None,
        "providers": frozenset({""}), "graph": None, "state": frozenset({"list", "show"}),
        "workspace": frozenset({"list", "show"}),
    }
)  # fmt: skip
_VERBS = MappingProxyType({"kubectl": _KUBECTL_VERBS, "helm": _HELM_VERBS, "terraform": _TERRAFORM_VERBS})
# Options whose value is the next word when not given with "=" or glued.
_VALUE_OPTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "kubectl": _words(
            "-n --namespace -o --output -l --selector -c --container -f --filename -L --label-columns "
            "--field-selector --sort-by --since --since-time --tail --template -k --kustomize "
            "--request-timeout -v --v --chunk-size --raw --subresource --for --timeout"
        ),
        "helm": _words(
            "-n --namespace -o --output --version --revision --max -f --values --set --set-string "
            "--set-file --set-json --timeout -l --selector --filter"
        ),
        "terraform": _words("-var -var-file -target -replace -parallelism"),
    }
)
# Options (by words in their names) that point the tool at another cluster or configuration,
# run a program, or write a file.
_REFUSED_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "kubectl": ("kubeconfig", "server", "token", "as", "as-group", "as-uid", "certificate-authority",
                    "client-certificate", "client-key", "insecure-skip-tls-verify", "context", "cluster",
                    "user", "cache-dir", "output-directory", "profile", "profile-output", "log-file",
                    "log-dir", "username", "password", "tls-server-name"),
        "helm": ("post-renderer", "post-renderer-args", "kubeconfig", "kube-apiserver", "kube-token",
                 "kube-as-user", "kube-as-group", "kube-ca-file", "kube-context", "kube-tls-server-name",
                 "kube-insecure-skip-tls-verify", "registry-config", "repository-config",
                 "repository-cache", "output-dir", "plugins", "ca-file", "cert-file", "key-file",
                 "repo", "username", "password", "post-renderer"),
        "terraform": ("chdir", "out", "state", "state-out", "backup", "plugin-dir", "lock-timeout",
                      "generate-config-out", "json-into"),
    }
)  # fmt: skip


def check_cluster_tool(
    program: str, tool: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset()
) -> None:
    """Refuse subcommands outside the read-only allow list and options that point elsewhere."""
    refused = _REFUSED_WORDS[tool]
    words: list[str] = []
    skip = False
    for position, word in enumerate(arguments):
        if skip:
            skip = False
            continue
        if word.startswith("-") and word != "-":
            skip = "=" not in word and word in _VALUE_OPTIONS[tool]
            name = word.lstrip("-").split("=", 1)[0]
            if position not in trusted and (name in refused or (tool == "kubectl" and name == "s")):
                refuse(
                    f"argument {word!r} of {program!r} points {tool} at another cluster or "
                    "configuration, runs a program or writes a file; pin it with a pattern"
                )
            continue
        if position not in trusted and word.startswith("@"):
            refuse(f"argument {word!r} of {program!r} reads more arguments from a file")
        words.append(word)
    verbs = _VERBS[tool]
    if not words or 0 in trusted:
        return
    verb = words[0]
    if verb not in verbs:
        refuse(
            f"'{tool} {verb}' is not a subcommand jobs.shell runs for a bare-listed {tool} "
            f"({', '.join(sorted(verbs))}); the others change a cluster or real infrastructure, "
            "run code or run a plugin program, so pin them with a pattern"
        )
    actions = verbs[verb]
    action = words[1] if len(words) > 1 else ""
    if actions is not None and action not in actions:
        refuse(f"'{tool} {verb} {action}' changes state or writes files; pin it with a pattern")
