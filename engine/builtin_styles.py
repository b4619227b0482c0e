"""Built-in painting styles shipped inside the package (styleengine/assets/styles/), usable with zero set-up
and without torch.

Each built-in is a complete bundle folder `<name>.engine/` (manifest with every file's sha256, FP32 and FP16
ONNX, and model.pt with FP16 weights for the torch backend), made by benchmarks/train_builtins.py from a model
our trainer wrote. Its metadata holds the painting's attribution, the lineage and the full training config.
`index.json` beside them repeats the listing data (name, folder, preset, attribution, training summary) so
listing needs no model file; tests check that index, bundles and checkpoints agree.

Only public-domain paintings (no Picasso: in copyright in the EU until 2043).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styleengine.core.bundle import Bundle, is_bundle, load_bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path
from styleengine.core.paths import assets_dir

STYLES_DIR = assets_dir("styles")
INDEX_FILE = "index.json"
INDEX_FORMAT = "styleengine.builtins/2"

# The paintings built-ins are trained from (files in the project's shared style data); the attribution travels
# into each model's style metadata. Reproductions from jcjohnson/fast-neural-style and jcjohnson/neural-style.
PAINTINGS: dict[str, dict[str, str]] = {
    "starry_night": {"title": "The Starry Night", "artist": "Vincent van Gogh", "year": "1889",
                     "rights": "public domain worldwide (artist died 1890)"},
    "great_wave": {"title": "The Great Wave off Kanagawa (crop)", "artist": "Katsushika Hokusai", "year": "c. 1831",
                   "rights": "public domain worldwide (artist died 1849)"},
    "composition_vii": {"title": "Composition VII", "artist": "Wassily Kandinsky", "year": "1913",
                        "rights": "public domain (US: published before 1931; life+70 countries since 2015)"},
    "the_scream": {"title": "The Scream", "artist": "Edvard Munch", "year": "1893",
                   "rights": "public domain (US; life+70 countries since 2015)"},
    "udnie": {"title": "Udnie (Young American Girl, The Dance)", "artist": "Francis Picabia", "year": "1913",
              "rights": "public domain (US: published before 1931; EU since 2024)"},
    "woman_with_hat": {"title": "Woman with a Hat", "artist": "Henri Matisse", "year": "1905",
                       "rights": "public domain (US: published before 1931; EU since 2025)",
                       "source": "photographic reproduction from github.com/jcjohnson/neural-style (examples/inputs)"},
    "shipwreck": {"title": "The Shipwreck", "artist": "J. M. W. Turner", "year": "c. 1805",
                  "rights": "public domain worldwide (artist died 1851)",
                  "source": "photographic reproduction from github.com/jcjohnson/neural-style (examples/inputs)"},
}
REPRODUCTION_SOURCE = "photographic reproduction from github.com/jcjohnson/fast-neural-style (images/styles)"

SAMPLES = {"photo": "chelsea.jpg", "clip": "bunny_2s.mp4"}


def sample_path(kind: str = "photo") -> Path:
    """A bundled sample to try styles on with zero set-up: "photo" (a cat, CC0) or "clip" (2 s of Big Buck Bunny)."""
    try:
        p = assets_dir("samples", SAMPLES[kind])
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
    return f"{p['artist']}, {p['title']}, {p['year']}; {p['rights']}; {p.get('source', REPRODUCTION_SOURCE)}"


@dataclass(frozen=True)
class BuiltinStyle:
    name: str
    path: Path  # the bundle folder
    preset: str
    painting: str
    title: str
    artist: str
    year: str
    attribution: str
    train_summary: dict[str, Any]

    @property
    def checkpoint(self) -> Path:
        return self.path / "model.pt"

    def bundle(self) -> Bundle:
        return load_bundle(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bundle": str(self.path), "preset": self.preset, "painting": self.painting,
                "title": self.title, "artist": self.artist, "year": self.year, "attribution": self.attribution,
                "train": self.train_summary}


def read_index(styles_dir: Path | None = None) -> dict[str, Any]:
    """index.json's entries {name: record} ({} where there is none)."""
    styles_dir = Path(styles_dir or STYLES_DIR)
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
    """The built-in styles whose bundle is present, sorted by name."""
    styles_dir = Path(styles_dir or STYLES_DIR)
    out = []
    for name, e in sorted(read_index(styles_dir).items()):
        path = styles_dir / e["bundle"]
        if not is_bundle(path):
            continue
        out.append(BuiltinStyle(name=name, path=path, preset=e["preset"], painting=e["painting"], title=e["title"],
                                artist=e["artist"], year=e["year"], attribution=e["attribution"],
                                train_summary=dict(e.get("train") or {})))
    return out


def builtin_names(styles_dir: Path | None = None) -> list[str]:
    return [s.name for s in list_builtins(styles_dir)]


def get_builtin(name: str, styles_dir: Path | None = None) -> BuiltinStyle | None:
    for s in list_builtins(styles_dir):
        if s.name == name:
            return s
    return None


def builtin_bundle(name: str, styles_dir: Path | None = None) -> Bundle | None:
    """The built-in's bundle, or None if `name` is not a built-in."""
    s = get_builtin(name, styles_dir)
    return s.bundle() if s else None


def index_entry(name: str, painting: str, bundle: str, preset: str, train_summary: dict[str, Any]) -> dict[str, Any]:
    """One index.json record (written by benchmarks/train_builtins.py after training)."""
    p = PAINTINGS[painting]
    return {"bundle": bundle, "preset": preset, "painting": painting, "title": p["title"], "artist": p["artist"],
            "year": p["year"], "attribution": attribution_for(painting), "train": train_summary}


def write_index(entries: dict[str, dict[str, Any]], styles_dir: Path | None = None) -> Path:
    styles_dir = Path(styles_dir or STYLES_DIR)
    target = styles_dir / INDEX_FILE
    with atomic_path(target) as tmp:
        # The paintings' own order (the README's), then any others by name.
        order = {name: i for i, name in enumerate(PAINTINGS)}
        ordered = dict(sorted(entries.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
        tmp.write_text(json.dumps({"format": INDEX_FORMAT, "styles": ordered}, indent=2) + "\n")
    return target
