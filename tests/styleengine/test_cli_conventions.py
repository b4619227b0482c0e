"""CLI conventions over EVERY command and group (walked from the typer app, so a new command is checked too):

- an option string means one thing everywhere: it maps to the same python parameter name in every command
  (short options included: `-s` cannot be --style in one command and --size in another); hidden options are
  deprecated aliases and are left out;
- `-h`, `--help` and `--version` work on every command and group;
- booleans are shown as flags: no `<bool>`/BOOLEAN in any --help;
- pip extras named in messages exist in pyproject.toml.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from styleengine.cli import app
from styleengine.core import __version__

ROOT = Path(__file__).resolve().parents[2]


def walk(cmd, path: tuple[str, ...] = ()):
    """(path, click command) for the root, every group and every command under it."""
    yield path, cmd
    for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
        yield from walk(sub, path + (name,))


COMMANDS = list(walk(typer.main.get_command(app)))
PATHS = [p for p, _ in COMMANDS]


def _options(cmd):
    return [p for p in cmd.params if getattr(p, "param_type_name", "") == "option"]


def test_the_walk_finds_every_command_and_subgroup():
    names = {" ".join(p) for p in PATHS}
    assert {"stylize", "live", "bench", "build", "export", "train", "env", "styles", "eval",
            "eval flicker"} <= names


def test_an_option_string_means_the_same_parameter_in_every_command():
    uses: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, cmd in COMMANDS:
        for opt in _options(cmd):
            if opt.hidden:  # deprecated aliases (warned about when used) may reuse an old name
                continue
            for s in (*opt.opts, *opt.secondary_opts):
                uses[s][opt.name].append(" ".join(path) or "styleengine")
    clashes = {s: dict(names) for s, names in uses.items() if len(names) > 1}
    assert not clashes, f"option strings with two meanings (string -> {{parameter: [commands]}}): {clashes}"


def test_no_hidden_alias_shadows_a_visible_option_of_its_command():
    for path, cmd in COMMANDS:
        for opt in _options(cmd):
            if opt.hidden:
                own = {s for o in _options(cmd) if not o.hidden for s in (*o.opts, *o.secondary_opts)}
                assert not set(opt.opts) & own, f"{' '.join(path)}: alias {opt.opts} shadows a visible option"


def test_short_options_are_few_and_single_letter():
    for path, cmd in COMMANDS:
        for opt in _options(cmd):
            for s in (*opt.opts, *opt.secondary_opts):
                if not s.startswith("--"):
                    assert re.fullmatch(r"-[a-zA-Z]", s), f"{' '.join(path)}: odd short option {s}"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "styleengine" for p in PATHS])
def test_help_and_version_work_and_booleans_are_flags(runner, path):
    for flag in ("-h", "--help"):
        r = runner.invoke(app, [*path, flag], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert r.exit_code == 0, (path, flag, r.output)
        assert "Usage" in r.output
        assert "<bool>" not in r.output and "BOOLEAN" not in r.output, r.output
    r = runner.invoke(app, [*path, "--version"])
    assert r.exit_code == 0, (path, r.output)
    assert r.output.strip() == f"styleengine {__version__}"


@pytest.mark.parametrize("path", [p for p, c in COMMANDS if not getattr(c, "commands", None)],
                         ids=[" ".join(p) for p, c in COMMANDS if not getattr(c, "commands", None)])
def test_every_boolean_option_is_a_flag(path):
    """--x or --x/--no-x, never `--x true`: a bool option that takes a value would swallow the next argument."""
    cmd = dict(COMMANDS)[path]
    for opt in _options(cmd):
        annotation = getattr(getattr(opt, "type_descriptor", None), "annotation", None)
        if annotation is bool or getattr(getattr(opt, "type", None), "name", "") == "boolean":
            assert opt.is_flag, f"{' '.join(path)}: {opt.opts} takes a value; make it a flag"


def test_pip_extras_named_in_messages_exist():
    import tomllib

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named: dict[str, set[str]] = defaultdict(set)
    for folder in ("styleengine", "engine", "export", "train"):
        for f in (ROOT / folder).rglob("*.py"):
            for m in re.finditer(r"styleengine\[([\w,-]+)\]", f.read_text()):
                for e in m.group(1).split(","):
                    named[e].add(str(f.relative_to(ROOT)))
    missing = {e: sorted(files) for e, files in named.items() if e not in extras}
    assert not missing, f"pip extras named in messages but not defined in pyproject.toml: {missing}"
