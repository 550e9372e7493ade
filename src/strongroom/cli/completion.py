"""Shell completion scripts for `strongroom`, generated from the CLI's own argparse tree.

`strongroom completion bash|zsh|fish` prints one; nothing is written by hand per command, so a new
subcommand or option completes as soon as it is in `build_parser`. The tree becomes four lookup
functions (a `case` per command path, e.g. ``strongroom wallets create``): its subcommands, its
options, the options that take a value, and the choices of an option that has them. A small
walker per shell finds the command path of the words typed so far (skipping options and their
values) and completes the current word: a subcommand, an option (``-...``), an option's choices,
or a file name where an option takes a free value.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

PROG: Final = "strongroom"
SHELLS: Final = ("bash", "zsh", "fish")


@dataclass
class Command:
    """One command path of the tree and what may follow it."""

    path: str
    commands: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    valued: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)


def walk(parser: argparse.ArgumentParser, path: str = PROG) -> Iterator[Command]:
    """Every command path of `parser`, its own first, then its subcommands' (depth first)."""
    here = Command(path)
    below: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:  # argparse has no public view of its tree
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                here.commands.append(name)
                below.append((name, sub))
            continue
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        here.options.extend(action.option_strings)
        if action.nargs != 0:
            here.valued.extend(action.option_strings)
            if action.choices is not None:
                for option in action.option_strings:
                    here.choices[option] = [str(c) for c in action.choices]
    yield here
    for name, sub in below:
        yield from walk(sub, f"{path} {name}")


def _words(items: list[str]) -> str:
    for item in items:
        if not item or any(c.isspace() or c in "'\"\\$`" for c in item):
            raise ValueError(f"cannot complete `{item}`: it has a space or a quote")  # never in this CLI
    return " ".join(items)


def _case_functions(tree: list[Command], prefix: str) -> str:
    """The lookups, as POSIX `case` functions (bash and zsh read the same syntax)."""
    out = []
    for name, pick in (
        ("commands", lambda c: {c.path: c.commands}),
        ("options", lambda c: {c.path: c.options}),
        ("valued", lambda c: {c.path: c.valued}),
        ("choices", lambda c: {f"{c.path} {o}": v for o, v in c.choices.items()}),
    ):
        lines = [f"{prefix}_{name}() {{", '    case "$1" in']
        for command in tree:
            for key, values in pick(command).items():
                if values:
                    lines.append(f"        '{key}') echo '{_words(values)}' ;;")
        lines += ["    esac", "}"]
        out.append("\n".join(lines))
    return "\n".join(out)


_BASH_WALK: Final = """
# The command path of the words before the current one, and the word before it.
_strongroom_path() {
    local word skip=0 i
    _strongroom_cmd=strongroom
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $skip == 1 ]]; then skip=0; continue; fi
        case " $(_strongroom_valued "$_strongroom_cmd") " in *" $word "*) skip=1; continue ;; esac
        [[ $word == -* ]] && continue
        case " $(_strongroom_commands "$_strongroom_cmd") " in
            *" $word "*) _strongroom_cmd="$_strongroom_cmd $word" ;;
        esac
    done
}

_strongroom() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} _strongroom_cmd
    _strongroom_path
    COMPREPLY=()
    case " $(_strongroom_valued "$_strongroom_cmd") " in
        *" $prev "*)
            local choices
            choices=$(_strongroom_choices "$_strongroom_cmd $prev")
            # an option's value: its choices, else file names (complete -o default)
            [[ -n $choices ]] && COMPREPLY=($(compgen -W "$choices" -- "$cur"))
            return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_strongroom_options "$_strongroom_cmd")" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(_strongroom_commands "$_strongroom_cmd")" -- "$cur"))
    fi
    return 0
}
complete -o default -F _strongroom strongroom
"""

_ZSH_WALK: Final = """
_strongroom() {
    local word skip=0 i cmd=strongroom cur=${words[CURRENT]} prev=${words[CURRENT-1]}
    for ((i = 2; i < CURRENT; i++)); do
        word=${words[i]}
        if [[ $skip == 1 ]]; then skip=0; continue; fi
        if [[ " $(_strongroom_valued "$cmd") " == *" $word "* ]]; then skip=1; continue; fi
        [[ $word == -* ]] && continue
        if [[ " $(_strongroom_commands "$cmd") " == *" $word "* ]]; then cmd="$cmd $word"; fi
    done
    if [[ " $(_strongroom_valued "$cmd") " == *" $prev "* ]]; then
        local choices=$(_strongroom_choices "$cmd $prev")
        if [[ -n $choices ]]; then compadd -- ${=choices}; else _files; fi
    elif [[ $cur == -* ]]; then
        compadd -- ${=$(_strongroom_options "$cmd")}
    else
        local commands=$(_strongroom_commands "$cmd")
        if [[ -n $commands ]]; then compadd -- ${=commands}; else _files; fi
    fi
}
# From a file in $fpath (autoloaded as _strongroom): complete now; sourced: register.
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _strongroom "$@"
else
    compdef _strongroom strongroom
fi
"""


def _fish(tree: list[Command]) -> str:
    lines = []
    for name, pick in (
        ("commands", lambda c: {c.path: c.commands}),
        ("options", lambda c: {c.path: c.options}),
        ("valued", lambda c: {c.path: c.valued}),
        ("choices", lambda c: {f"{c.path} {o}": v for o, v in c.choices.items()}),
    ):
        lines += [f"function __strongroom_{name}", "    switch $argv[1]"]
        for command in tree:
            for key, values in pick(command).items():
                if values:
                    lines += [f"        case '{key}'", f"            printf '%s\\n' {_words(values)}"]
        lines += ["    end", "end", ""]
    lines.append("""function __strongroom_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd strongroom
    set -l skip 0
    for word in $words[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if contains -- $word (__strongroom_valued $cmd)
            set skip 1
            continue
        end
        string match -q -- '-*' $word; and continue
        contains -- $word (__strongroom_commands $cmd); and set cmd "$cmd $word"
    end
    if test (count $words) -gt 1; and contains -- $words[-1] (__strongroom_valued $cmd)
        set -l choices (__strongroom_choices "$cmd $words[-1]")
        if test (count $choices) -gt 0
            printf '%s\\n' $choices
        else
            __fish_complete_path $cur
        end
    else if string match -q -- '-*' $cur
        __strongroom_options $cmd
    else
        __strongroom_commands $cmd
    end
end
complete -c strongroom -f -a '(__strongroom_complete)'""")
    return "\n".join(lines)


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of `parser` for `shell` (one of `SHELLS`)."""
    tree = list(walk(parser))
    head = f"# {PROG} completion for {shell}, generated from the CLI's argparse tree by `{PROG} completion {shell}`.\n"
    if shell == "bash":
        return head + _case_functions(tree, "_strongroom") + "\n" + _BASH_WALK
    if shell == "zsh":
        return f"#compdef {PROG}\n" + head + _case_functions(tree, "_strongroom") + "\n" + _ZSH_WALK
    if shell == "fish":
        return head + _fish(tree) + "\n"
    raise ValueError(f"no completion for the shell `{shell}` (bash, zsh or fish)")


__all__ = ["SHELLS", "Command", "script", "walk"]
