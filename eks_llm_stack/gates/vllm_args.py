"""Gate: every ``vllm serve`` command we generate parses with vLLM 0.29.0's own argument list.

The judge is ``third_party/vllm-0.29.0/serve-args.json``, a dump of the parser vLLM itself builds
(``make_arg_parser``): every option string, its action, ``nargs``, type and ``choices``. From it this
module builds a strict parser that reads an argv the way argparse does and reports, all at once:

* an option the release does not have (argparse: "unrecognized arguments"), including a prefix of a
  real option — we never rely on argparse's abbreviations;
* an option that needs a value and has none (``--max-model-len`` at the end, or followed by another
  option), and a flag given a value (``--enforce-eager=1``);
* a value of the wrong type (``--tensor-parallel-size two``, ``--gpu-memory-utilization high``);
* a value outside ``choices`` (``--dtype bf16``, ``--kv-cache-dtype fp4``);
* a missing or repeated model (the positional ``model_tag``: we always name the model).

Like vLLM's ``FlexibleArgumentParser``, ``--max_model_len`` is read as ``--max-model-len``.
Types that vLLM checks with its own callables (``_optional_type``, ``parse_dataclass``, ``loads``…)
are checked where their rule is plain (JSON for ``loads``, an integer with an optional k/m/g/t
suffix for ``human_readable_int``); the others accept any string, as we cannot run vLLM's code here.

:func:`serve_argv` extracts the argv from a container (a direct ``command`` or the ``exec vllm serve``
line of a ``bash -c`` script, with the LeaderWorkerSet variables substituted), so the gate reads
exactly what a pod runs.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import Problem

SERVE_ARGS = Path(__file__).resolve().parents[1] / "third_party" / "vllm-0.29.0" / "serve-args.json"

#: Values the LeaderWorkerSet controller puts in every pod's environment, used to expand a
#: multi-node script before parsing it (a group of 2, the first worker, the leader's DNS name).
LWS_SAMPLE_ENV: Mapping[str, str] = {
    "LWS_GROUP_SIZE": "2",
    "LWS_WORKER_INDEX": "1",
    "LWS_LEADER_ADDRESS": "model-group-0.model-group.llm-serving",
}


@dataclass(frozen=True)
class ServeOption:
    """One option of ``vllm serve``, as serve-args.json describes it."""

    options: tuple[str, ...]
    dest: str
    action: str
    type: str | None
    choices: tuple[str, ...] | None
    nargs: str | None

    @property
    def takes_value(self) -> bool:
        return self.nargs != "0"


@dataclass(frozen=True)
class ServeArgs:
    """The parser of one vLLM release: option string -> option."""

    version: str
    by_option: Mapping[str, ServeOption]


@cache
def load_serve_args(path: Path = SERVE_ARGS) -> ServeArgs:
    """serve-args.json as a lookup table (cached; the file is the release's, never ours)."""
    data = json.loads(path.read_text())
    by_option: dict[str, ServeOption] = {}
    for arg in data["arguments"]:
        if "options" not in arg:  # the positional model_tag
            continue
        opt = ServeOption(
            options=tuple(arg["options"]),
            dest=arg["dest"],
            action=arg["action"],
            type=arg.get("type"),
            choices=tuple(str(c) for c in arg["choices"]) if arg.get("choices") is not None else None,
            nargs=arg.get("nargs"),
        )
        for name in opt.options:
            by_option[name] = opt
    return ServeArgs(version=data["vllm_version"], by_option=by_option)


_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
_HUMAN_INT = re.compile(r"^\d+(\.\d+)?[kKmMgGtT]?$")


def _type_error(type_name: str | None, value: str) -> str | None:
    """Why ``value`` is not of vLLM's ``type`` (None when it is, or when we cannot tell)."""
    try:
        if type_name == "int":
            int(value)
        elif type_name == "float":
            float(value)
        elif type_name == "loads":
            json.loads(value)
        elif type_name == "human_readable_int" and not _HUMAN_INT.match(value):
            return "is not a whole number (a k/m/g/t suffix is allowed)"
        elif type_name == "human_readable_int_or_auto" and value not in ("auto", "-1") and not _HUMAN_INT.match(value):
            return "is not a whole number, -1 or auto"
    except ValueError:
        return f"is not a valid {type_name}"
    return None


def _looks_like_option(token: str) -> bool:
    # argparse: a token starting with "-" is an option unless it is a negative number
    # (vLLM's parser has no option that looks like one).
    return token.startswith("-") and not _NUMBER.match(token) and token != "-"


def check_serve_argv(argv: Iterable[str], *, where: str = "vllm serve", spec: ServeArgs | None = None) -> list[Problem]:
    """Every problem vLLM's parser would find in ``argv`` (``["vllm", "serve", model, ...]``)."""
    spec = spec or load_serve_args()
    tokens = list(argv)
    problems: list[Problem] = []
    fix_help = f"use an option of vllm serve {spec.version} (see eks_llm_stack/third_party/vllm-{spec.version}/)"
    if tokens[:2] != ["vllm", "serve"]:
        return [Problem(where, "is not a `vllm serve` command", "start the command with `vllm serve <model>`", tokens)]
    positionals: list[str] = []
    i = 2
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            positionals += tokens[i:]
            break
        if not _looks_like_option(token):
            positionals.append(token)
            continue
        name, eq, inline = token.partition("=")
        if name.startswith("--"):
            # FlexibleArgumentParser: underscores in long option names are read as dashes.
            name = "--" + name[2:].replace("_", "-")
        opt = spec.by_option.get(name)
        if opt is None:
            near = sorted(o for o in spec.by_option if o.startswith(name) or name.startswith(o))[:3]
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            problems.append(
                Problem(f"{where}: {name}", f"is not an option of vllm serve {spec.version}{hint}", fix_help, token)
            )
            # Skip what would be its values, so one unknown option gives one problem.
            if not eq:
                while i < len(tokens) and not _looks_like_option(tokens[i]) and positionals:
                    i += 1
            continue
        if not opt.takes_value:
            if eq:
                problems.append(
                    Problem(f"{where}: {name}", "is a flag and takes no value", f"write {name} alone", token)
                )
            continue
        values: list[str] = []
        if eq:
            values = [inline]
        elif opt.nargs in (None, "?"):
            if i < len(tokens) and not _looks_like_option(tokens[i]):
                values = [tokens[i]]
                i += 1
        else:  # "+" or "*": every following non-option token
            while i < len(tokens) and not _looks_like_option(tokens[i]):
                values.append(tokens[i])
                i += 1
        if not values and opt.nargs != "?":
            problems.append(Problem(f"{where}: {name}", "expects a value and has none", f"write {name} <value>", token))
            continue
        for value in values:
            why = _type_error(opt.type, value)
            if why:
                problems.append(Problem(f"{where}: {name}", why, f"give {name} a value of type {opt.type}", value))
            elif opt.choices is not None and value not in opt.choices:
                problems.append(
                    Problem(
                        f"{where}: {name}",
                        "is not one of its choices",
                        f"use one of {', '.join(opt.choices)}",
                        value,
                    )
                )
    if not positionals:
        problems.append(Problem(f"{where}: model", "is missing", "write `vllm serve <model path or id> ...`"))
    elif len(positionals) > 1:
        problems.append(
            Problem(
                f"{where}: model",
                "is given more than once (unrecognized arguments)",
                "pass exactly one model; quote values that contain spaces",
                positionals,
            )
        )
    return problems


def _expand(token: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: env.get(m.group(1), m.group(0)), token)


def serve_argv(container: Mapping[str, Any], env: Mapping[str, str] = LWS_SAMPLE_ENV) -> list[str] | None:
    """The ``vllm serve`` argv a container runs, or None when it runs something else.

    A direct ``command: [vllm, serve, ...]`` is returned as is; for ``[bash|sh, -c, script]`` the
    script's ``vllm serve`` line (after an optional ``exec``) is split like the shell does and its
    ``$VARS`` are expanded from ``env``.
    """
    command = list(container.get("command", [])) + list(container.get("args", []))
    if command[:2] == ["vllm", "serve"]:
        return command
    if len(command) >= 3 and command[0].endswith("sh") and command[1] == "-c":
        for line in command[2].splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["exec"]:
                words = words[1:]
            if words[:2] == ["vllm", "serve"]:
                return [_expand(w, env) for w in words]
    return None


def check_manifests(manifests: Mapping[str, list[dict[str, Any]]], *, subject: str = "") -> list[Problem]:
    """Every vLLM container of every Deployment / LeaderWorkerSet (leader and worker) in ``manifests``.

    A container named ``vllm`` that runs no ``vllm serve`` is itself a problem: the gate must not
    pass because it found nothing to read.
    """
    problems: list[Problem] = []
    for chart, docs in manifests.items():
        for doc in docs:
            for role, pod in _pod_specs(doc):
                for c in pod.get("containers", []):
                    if c.get("name") != "vllm":
                        continue
                    where = f"{subject}{chart}/{doc['kind']}/{doc['metadata']['name']}/{role}"
                    argv = serve_argv(c)
                    if argv is None:
                        problems.append(
                            Problem(where, "runs no `vllm serve` command", "start vLLM with `vllm serve`", c["command"])
                        )
                    else:
                        problems += check_serve_argv(argv, where=where)
    return problems


def _pod_specs(doc: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    spec = doc.get("spec", {})
    if doc.get("kind") in ("Deployment", "StatefulSet", "Job"):
        return [("pod", spec["template"]["spec"])]
    if doc.get("kind") == "LeaderWorkerSet":
        lwt = spec["leaderWorkerTemplate"]
        out = [("worker", lwt["workerTemplate"]["spec"])]
        if "leaderTemplate" in lwt:
            out.insert(0, ("leader", lwt["leaderTemplate"]["spec"]))
        return out
    return []


def vllm_containers(manifests: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(where, container)`` for every container named ``vllm`` (what :func:`check_manifests` reads)."""
    out = []
    for chart, docs in manifests.items():
        for doc in docs:
            for role, pod in _pod_specs(doc):
                for c in pod.get("containers", []):
                    if c.get("name") == "vllm":
                        out.append((f"{chart}/{doc['metadata']['name']}/{role}", c))
    return out
