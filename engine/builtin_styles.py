"""Built-in painting styles shipped inside the package (styleengine/assets/styles/), usable with zero set-up.

Each built-in is a styleengine model file (FP16 weights, `save_model(..., half=True)`) whose metadata holds
the style image's attribution and the full training config. `index.json` beside them repeats the listing
data (name, file, preset, sha256, size, attribution) so that listing and resolving need neither torch nor
unpickling; tests check that the index and the checkpoints agree.

Names: `<painting>` is the `fast` preset; `<painting>_johnson` the full-width `johnson` preset where trained.
Only public-domain paintings (no Picasso: in copyright in the EU until 2043).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styleengine.errors import StyleEngineError


def _styles_dir() -> Path:
    # Works for editable and wheel installs alike (engine/ installs as styleengine.engine).
    from importlib.resources import files

    return Path(str(files("styleengine"))) / "assets" / "styles"


STYLES_DIR = _styles_dir()
INDEX_FILE = "index.json"
INDEX_FORMAT = "styleengine.builtins/1"

# The paintings built-ins are trained from (files in the project's shared style data); the attribution travels
# into each checkpoint's style metadata. Reproductions from jcjohnson/fast-neural-style (see SOURCES below).
PAINTINGS: dict[str, dict[str, str]] = {
    "starry_night": {"title": "The Starry Night", "artist": "Vincent van Gogh", "year": "1889",
                     "rights": "public domain worldwide (artist died 1890)"},
    "great_wave": {"title": "The Great Wave off Kanagawa (crop)", "artist": "Katsushika Hokusai", "year": "c. 1831",
                   "rights": "public domain worldwide (artist died 1849)"},
    "composition_vii": {"title": "Composition VII", "artist": "Wassily Kandinsky", "year": "1913",
                        "rights": "public domain (US: published before 1931; life+70 countries since 2015)"},
    "the_scream": {"title": "The Scream", "artist": "Edvard Munch", "year": "1893",
                   "rights": "public domain (US; life+70 countries since 2015)"},
}
REPRODUCTION_SOURCE = "photographic reproduction from github.com/jcjohnson/fast-neural-style (images/styles)"


SAMPLES = {"photo": "chelsea.jpg", "clip": "bunny_2s.mp4"}


def sample_path(kind: str = "photo") -> Path:
    """A bundled sample to try styles on with zero set-up: "photo" (a cat, CC0) or "clip" (2 s of Big Buck Bunny)."""
    try:
        p = STYLES_DIR.parent / "samples" / SAMPLES[kind]
    except KeyError:
        raise StyleEngineError(f"unknown sample {kind!r}; choose one of: {', '.join(SAMPLES)}") from None
    if not p.is_file():
        raise StyleEngineError(f"bundled sample missing from the installation: {p}")
    return p


def style_image_path(painting: str, styles_dir: Path | None = None) -> Path | None:
    """The bundled 512-px reproduction of a built-in's painting (reference for the style distance)."""
    p = Path(styles_dir or STYLES_DIR) / "images" / f"{painting}.jpg"
    return p if p.is_file() else None


def attribution_for(painting: str) -> str:
    p = PAINTINGS[painting]
    return f"{p['artist']}, {p['title']}, {p['year']}; {p['rights']}; {REPRODUCTION_SOURCE}"


@dataclass(frozen=True)
class BuiltinStyle:
    name: str
    path: Path
    preset: str
    painting: str
    title: str
    artist: str
    year: str
    attribution: str
    sha256: str
    bytes: int
    train_summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "preset": self.preset, "painting": self.painting,
                "title": self.title, "artist": self.artist, "year": self.year, "attribution": self.attribution,
                "sha256": self.sha256, "bytes": self.bytes, "train": self.train_summary}


def _read_index(styles_dir: Path) -> dict[str, Any]:
    f = styles_dir / INDEX_FILE
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise StyleEngineError(f"{f}: unreadable built-in style index ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or not isinstance(data.get("styles"), dict):
        raise StyleEngineError(f"{f}: unknown built-in style index format")
    return data["styles"]


def list_builtins(styles_dir: Path | None = None) -> list[BuiltinStyle]:
    """The built-in styles whose model file is present, sorted by name."""
    styles_dir = Path(styles_dir or STYLES_DIR)
    out = []
    for name, e in sorted(_read_index(styles_dir).items()):
        path = styles_dir / e["file"]
        if not path.is_file():
            continue
        out.append(BuiltinStyle(
            name=name, path=path, preset=e["preset"], painting=e["painting"], title=e["title"],
            artist=e["artist"], year=e["year"], attribution=e["attribution"], sha256=e["sha256"],
            bytes=path.stat().st_size, train_summary=dict(e.get("train") or {})))
    return out


def builtin_names(styles_dir: Path | None = None) -> list[str]:
    return [s.name for s in list_builtins(styles_dir)]


def get_builtin(name: str, styles_dir: Path | None = None) -> BuiltinStyle | None:
    for s in list_builtins(styles_dir):
        if s.name == name:
            return s
    return None


def builtin_path(name: str, styles_dir: Path | None = None) -> Path | None:
    """Path of the built-in's model file, or None if `name` is not a built-in."""
    s = get_builtin(name, styles_dir)
    return s.path if s else None


def index_entry(name: str, painting: str, file: str, preset: str, sha256: str,
                train_summary: dict[str, Any]) -> dict[str, Any]:
    """One index.json record (written by benchmarks/train_builtins.py after training)."""
    p = PAINTINGS[painting]
    return {"file": file, "preset": preset, "painting": painting, "title": p["title"], "artist": p["artist"],
            "year": p["year"], "attribution": attribution_for(painting), "sha256": sha256, "train": train_summary}


def write_index(entries: dict[str, dict[str, Any]], styles_dir: Path | None = None) -> Path:
    from styleengine.fsutil import atomic_path

    styles_dir = Path(styles_dir or STYLES_DIR)
    target = styles_dir / INDEX_FILE
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps({"format": INDEX_FORMAT, "styles": dict(sorted(entries.items()))}, indent=2) + "\n")
    return target
