"""Run options are declared once (adamkit.lab.run.RUN_OPTIONS, the fields of RunConfig) and
every command that takes one reads the same declaration."""

import argparse
import re
from dataclasses import fields
from pathlib import Path

from adamkit.lab import cli
from adamkit.lab.run import RUN_OPTIONS, RunConfig

COMMANDS = Path(cli.__file__).parent / "commands"


def _actions(command):
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.option_strings[0]: a for a in sub.choices[command]._actions if a.option_strings}


def test_every_run_option_is_a_runconfig_field_declared_once():
    assert set(RUN_OPTIONS) == {f.name for f in fields(RunConfig)} - {"task"}
    flags = {o.flag for o in RUN_OPTIONS.values()} - {"--lr", "--weight-decay"}  # sweep: ranges of them
    for path in COMMANDS.glob("*.py"):
        if path.name == "advise.py":  # trains nothing: its --lr and --decay describe the user's run
            continue
        declared = set(re.findall(r'add_argument\("(--[a-z-]+)"', path.read_text()))
        assert not declared & flags, (path.name, declared & flags)


def test_each_command_shows_the_same_option():
    for command, names in (("run", RUN_OPTIONS), ("compare", ("lr", "steps", "dtype", "threads")),
                           ("sweep", ("steps", "quick", "model", "schedule", "init", "data")),
                           ("demo", ("steps", "quick", "lr", "weight_decay", "init", "seed"))):
        actions = _actions(command)
        for name in names:
            option = RUN_OPTIONS[name]
            assert actions[option.flag].help.startswith(option.help), (command, name)
    assert _actions("sweep")["--schedule"].default == "cosine" and _actions("run")["--schedule"].default == "constant"
    assert _actions("demo")["--init"].default == "zeros"
