"""`styleengine styles`: the built-in styles (name, preset, size, attribution)."""

from __future__ import annotations

import typer

from .common import flag, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command("styles")
    @handle_errors
    def styles(json: bool = flag("Print machine-readable JSON.", "--json"),
               sample: str = typer.Option(None, "--sample", help="Print the path of a bundled sample to try: photo | clip.")) -> None:
        """List the built-in styles: use a name anywhere a STYLE is taken (e.g. --style starry_night)."""
        from styleengine.engine.builtin_styles import list_builtins, sample_path

        if sample:
            print(sample_path(sample))
            return

        found = list_builtins()
        if json:
            print_json([s.to_dict() for s in found])
            return
        if not found:
            print("no built-in styles installed")
            return
        for s in found:
            print(f"{s.name:<16} {s.preset:<8} {s.artist}, {s.title} ({s.year})")
            t = s.train_summary
            init = t.get("init_from")
            origin = f" (fine-tuned from {init})" if init and init != "seed 0" else ""
            print(f"{'':<16} {t.get('steps', '?')} training steps{origin}; {s.attribution.split('; ', 1)[1]}")
