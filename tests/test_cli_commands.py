"""The CLI's layout: one module per command in intonly/commands/, discovered, in help order; a new file there is a
new command with no other edit."""

import argparse
import sys

import pytest

from intonly import cli, commands

BUILT_IN = ["run", "inspect", "compare", "estimate", "targets", "build"]


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_every_command_module_has_a_parser_and_a_run():
    for module in commands.modules():
        assert callable(module.add_parser) and callable(module.run), module.__name__
    assert [m.__name__.rpartition(".")[2] for m in commands.modules()][:len(BUILT_IN)] == BUILT_IN


def test_help_lists_run_first_then_the_built_in_order():
    assert subcommands(cli.build_parser())[:len(BUILT_IN)] == BUILT_IN


def test_a_new_file_in_commands_is_a_new_command(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello.py").write_text(
        "def add_parser(sub):\n"
        "    p = sub.add_parser('hello', help='say hello')\n"
        "    p.add_argument('--code', type=int, default=0)\n"
        "    return p\n\n\n"
        "def run(args, console):\n"
        "    print('hello')\n"
        "    return args.code\n")
    (tmp_path / "_helper.py").write_text("raise AssertionError('a _helper module is not a command')\n")
    monkeypatch.setattr(commands, "__path__", [*commands.__path__, str(tmp_path)])
    try:
        names = subcommands(cli.build_parser())
        assert names[:len(BUILT_IN)] == BUILT_IN and names[-1] == "hello"   # no ORDER: after the built-in ones
        assert cli.main(["hello", "--code", "1"]) == 1
        assert capsys.readouterr().out == "hello\n"
    finally:
        sys.modules.pop("intonly.commands.hello", None)
        vars(commands).pop("hello", None)


@pytest.mark.parametrize("argv", [["targets", "show", "no-such-target"], ["inspect", "no-such-file.intonly"]])
def test_errors_exit_2_with_one_message(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
