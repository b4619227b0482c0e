"""What a benchmark grid covers, parsed from user strings with one-line errors."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from styleengine.core.errors import StyleEngineError
from styleengine.core.hostinfo import cuda_device_count
from styleengine.core.shapes import MIN_SIDE

# Named sizes: (height, width). "4k" is UHD 3840x2160, the size video users mean.
NAMED_SIZES: dict[str, tuple[int, int]] = {
    "256": (256, 256),
    "512": (512, 512),
    "1024": (1024, 1024),
    "360p": (360, 640),
    "480p": (480, 854),
    "540p": (540, 960),
    "720p": (720, 1280),
    "1080p": (1080, 1920),
    "1440p": (1440, 2560),
    "4k": (2160, 3840),
    "2160p": (2160, 3840),
}
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
MAX_PIXELS = 64 * 2160 * 3840  # one batch; beyond this a typo is likelier than a real request
BASELINE = "baseline"
DEFAULT_SIZES = {"cpu": "256,512", "cuda": "720p,1080p,4k"}


@dataclass(frozen=True)
class Size:
    label: str
    height: int
    width: int

    @property
    def pixels(self) -> int:
        return self.height * self.width


def _items(value: str | Iterable[Any], what: str) -> list[str]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    else:
        items = [str(v).strip() for v in value]
    items = [v for v in items if v]
    if not items:
        raise StyleEngineError(f"--{what}: empty list")
    return items


def parse_size(text: str) -> Size:
    key = text.strip().lower()
    if key in NAMED_SIZES:
        h, w = NAMED_SIZES[key]
        return Size(key, h, w)
    m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", key)
    if m:
        h, w = int(m.group(1)), int(m.group(2))
    elif key.isdigit():
        h = w = int(key)
    else:
        raise StyleEngineError(
            f"--size: {text!r} is not a size; use HxW (e.g. 720x1280), a side (e.g. 384) or one of: {', '.join(NAMED_SIZES)}")
    if min(h, w) < MIN_SIDE:
        raise StyleEngineError(f"--size: {text!r} is too small; both sides must be at least {MIN_SIDE} px")
    if h * w > MAX_PIXELS:
        raise StyleEngineError(f"--size: {text!r} is too large ({h * w / 1e6:.0f} MP per frame)")
    return Size(f"{h}x{w}", h, w)


def parse_sizes(value: str | Iterable[Any]) -> list[Size]:
    sizes = [parse_size(s) for s in _items(value, "size")]
    return list(dict.fromkeys(sizes))


def parse_batches(value: str | Iterable[Any]) -> list[int]:
    out = []
    for item in _items(value, "batch"):
        if not item.isdigit() or int(item) < 1:
            raise StyleEngineError(f"--batch: {item!r} is not a positive whole number")
        if int(item) > 256:
            raise StyleEngineError(f"--batch: {item} is more than 256 frames per batch")
        out.append(int(item))
    return list(dict.fromkeys(out))


def parse_precisions(value: str | Iterable[Any] | None, device: str) -> list[str]:
    """Explicit list, or 'auto': fp32 on CPU (fp16 there is emulated and slow), fp32 and fp16 on CUDA."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return ["fp32"] if device == "cpu" else ["fp32", "fp16"]
    out = []
    for item in _items(value, "precision"):
        p = item.lower()
        if p not in PRECISIONS:
            raise StyleEngineError(f"--precision: unknown precision {item!r}; choose from: auto, {', '.join(PRECISIONS)}")
        out.append(p)
    return list(dict.fromkeys(out))


def parse_backends(value: str | Iterable[Any] | None, registry: Iterable[str]) -> list[str]:
    """'all' (every registered backend; unavailable ones are listed with the reason), 'none' (only the baseline
    and torch variants), or a list of names."""
    names = list(registry)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("all", "auto")):
        return names
    if (isinstance(value, str) and value.strip().lower() == "none") or (not isinstance(value, str) and not list(value)):
        return []
    out = []
    for item in _items(value, "backend"):
        b = item.lower()
        if b in ("all", "auto"):
            out.extend(names)
        elif b in names:
            out.append(b)
        elif b == BASELINE:
            raise StyleEngineError("--backend: the baseline row is always measured; use --no-baseline to leave it out")
        else:
            raise StyleEngineError(f"--backend: unknown backend {item!r}; choose from: all, none, {', '.join(names)}")
    return list(dict.fromkeys(out))


def parse_device(value: str | None) -> str:
    """'auto' -> 'cuda' where the CUDA driver sees a GPU (asked directly: no torch needed), else 'cpu'."""
    v = (value or "auto").strip().lower()
    if v == "auto":
        return "cuda" if cuda_device_count() else "cpu"
    if v == "cpu":
        return v
    if re.fullmatch(r"cuda(:\d+)?", v):
        count = cuda_device_count()  # asks the driver: no torch needed
        index = int(v.split(":")[1]) if ":" in v else 0
        if index >= count:
            raise StyleEngineError(f"--device {value}: no such NVIDIA GPU here ({count} visible to the CUDA driver)")
        return v
    raise StyleEngineError(f"--device: {value!r} is not a device; use auto, cpu, cuda or cuda:N")


@dataclass
class GridSpec:
    """Everything that decides which rows a run measures and how long each is timed."""

    backends: list[str]
    precisions: list[str]
    sizes: list[Size]
    batches: list[int]
    device: str
    warmup: int = 3
    iters: int | None = None
    seconds: float | None = 2.0
    min_iters: int = 3
    max_iters: int = 100_000
    baseline: bool = True
    variants: list[str] = field(default_factory=list)
    seed: int = 0
    threads: int | None = None
    rounds: int = 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sizes"] = [asdict(s) for s in self.sizes]
        return d


def check_timing(warmup: int, iters: int | None, seconds: float | None) -> tuple[int, int | None, float | None]:
    """Validate --warmup/--iters/--seconds; --iters and --seconds are alternatives (default: 2 s per row)."""
    if warmup is None or warmup < 0:
        raise StyleEngineError(f"--warmup: must be 0 or more, got {warmup}")
    if iters is not None and seconds is not None:
        raise StyleEngineError("--iters and --seconds are alternatives; give one of them")
    if iters is not None and iters < 1:
        raise StyleEngineError(f"--iters: must be at least 1, got {iters}")
    if seconds is not None and not seconds > 0:
        raise StyleEngineError(f"--seconds: must be more than 0, got {seconds}")
    if iters is None and seconds is None:
        seconds = 2.0
    return warmup, iters, seconds
