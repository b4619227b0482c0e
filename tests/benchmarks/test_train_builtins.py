"""benchmarks/train_builtins.py: the lineage written into the index for an installed built-in."""

from __future__ import annotations

from .scripts import load_script

train_builtins = load_script("train_builtins")
chain = train_builtins.lineage_chain


def rec(name: str, sha: str, steps: int = 400) -> dict:
    return {"name": name, "sha256": sha, "steps": steps}


# Three study runs, each started from the one before; the first from the built-in shipped before them (sha "old").
RUNS = {"a": {"init_from": rec("wave", "old")}, "b": {"init_from": rec("wave_a", "a")},
        "c": {"init_from": rec("wave_b", "b", 200)}}


def find(name: str, sha: str | None) -> dict | None:
    return RUNS.get(sha)


def test_a_chain_of_runs_reaches_the_shipped_builtin_by_its_parent():
    # Shipped now: run "a", re-saved into its bundle (its own hash differs, its parent is "old").
    got = chain(rec("wave_c", "c"), find_run=find, shipped_sha="bundle", shipped_parent="old",
                shipped_lineage="wave (1000 steps) <- seed 0")
    assert got == ("wave_c (400 steps) <- wave_b (200 steps) <- wave_a (400 steps) <- wave (1000 steps) <- seed 0")


def test_started_from_the_shipped_builtin_itself():
    got = chain(rec("wave", "bundle"), find_run=find, shipped_sha="bundle", shipped_parent="old",
                shipped_lineage="wave (1000 steps) <- seed 0")
    assert got == "wave (400 steps) <- wave (1000 steps) <- seed 0"


def test_a_chain_that_leaves_the_runs_stops_there():
    got = chain(rec("wave_c", "c"), find_run=find, shipped_sha=None, shipped_parent=None, shipped_lineage=None)
    assert got == "wave_c (400 steps) <- wave_b (200 steps) <- wave_a (400 steps) <- wave (400 steps)"
    assert chain(rec("x", "unknown"), find_run=find, shipped_sha="bundle", shipped_parent="old",
                 shipped_lineage="seed 0") == "x (400 steps)"
    assert chain(None, find_run=find, shipped_sha=None, shipped_parent=None, shipped_lineage=None) == "seed 0"


def test_a_loop_in_the_records_ends():
    loop = {"p": {"init_from": rec("q", "q")}, "q": {"init_from": rec("p", "p")}}
    got = chain(rec("p", "p"), find_run=lambda n, s: loop.get(s), shipped_sha=None, shipped_parent=None,
                shipped_lineage=None)
    assert got == "p (400 steps) <- q (400 steps) <- p (400 steps)"
