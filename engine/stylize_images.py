"""The library function behind `styleengine stylize`: many inputs, one output, per-file results.

Inputs: image files, video files (handed to the streaming engine), folders (walked recursively, the tree mirrored
under the output folder) and `-` (an image on stdin). Output: a file (one input), a folder (several inputs or a
folder input; created if missing) or `-` (stdout). Failures are per file: one line each, the rest still done.
Outputs are written atomically, never onto an input, and an existing output only with overwrite=True. A file
that cannot be written (read-only folder, a file where a folder should be, a folder where the file should go) is
that file's failure; problems of the whole request (style, backend, an unusable cache folder, a tampered bundle)
abort the run with one error.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

from styleengine.core.errors import Interrupted, StyleEngineError
from styleengine.core.fsutil import atomic_path
from styleengine.core.log import NullProgress, log, progress
from styleengine.core.paths import CacheError
from styleengine.core.shapes import check_max_size

from . import postprocess
from .images import format_for, load_image, save_image
from .styles import resolve_style
from .stylizer import Stylizer
from .video.pipeline import stylize_video

IMAGE_EXTS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".dib", ".gif", ".ppm",
              ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k", ".avif", ".heic", ".heif", ".jxl", ".ico"}
VIDEO_EXTS = {".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv",
              ".flv", ".ogv", ".3gp", ".gifv"}
STDIO = "-"
# What a stray value after a flag looks like (`--overwrite true` makes "true" an input).
FLAG_VALUES = {"true", "false", "yes", "no", "on", "off", "1", "0"}


@dataclass
class FileResult:
    input: str
    output: str | None
    ok: bool
    kind: str = "image"
    error: str | None = None
    width: int | None = None  # output size
    height: int | None = None
    backend: str | None = None
    seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extra"]:
            d.pop("extra")
        return d


@dataclass
class Job:
    src: Path | str  # Path, or STDIO
    dst: Path | str | None  # Path, STDIO, or None when planning failed
    kind: str
    error: str | None = None


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def _walk(folder: Path, skip: Path | None) -> list[Path]:
    """Images and videos under `folder`, sorted, hidden entries and the output folder skipped."""
    out = []
    for root, dirs, files in os.walk(folder):
        rootp = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or _resolve(rootp / d) != skip))
        for f in sorted(files):
            p = rootp / f
            if not f.startswith(".") and p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS:
                out.append(p)
    return out


def _resolve(p: Path) -> Path:
    try:
        return p.resolve()
    except OSError:
        return p.absolute()


def plan_jobs(inputs: list[str], output: str | None) -> list[Job]:
    """Map inputs to outputs (see module doc). Raises for a wrong overall shape; per-input problems are Jobs
    with .error set."""
    if not inputs:
        raise StyleEngineError("no inputs given")
    if output is None:
        if all(i == STDIO for i in inputs):
            output = STDIO
        else:
            raise StyleEngineError("missing -o/--output (a file for one input, a folder for several, - for stdout)")
    if inputs.count(STDIO) > 1:
        raise StyleEngineError("stdin (-) can be given only once")
    paths = [Path(i) for i in inputs if i != STDIO]
    many = len(inputs) > 1 or any(p.is_dir() for p in paths)
    out_dir_mode = output != STDIO and (many or output.endswith(("/", os.sep)) or Path(output).is_dir())
    if output == STDIO and many:
        raise StyleEngineError("-o - (stdout) takes exactly one input image")
    if out_dir_mode and Path(output).exists() and not Path(output).is_dir():
        raise StyleEngineError(f"output {output} is a file, but several inputs (or a folder) need an output folder")
    if out_dir_mode and not Path(output).exists() and Path(output).suffix.lower() in IMAGE_EXTS | VIDEO_EXTS:
        raise StyleEngineError(f"several inputs (or a folder) need an output folder, and {output} names a file; "
                               f"give a folder (e.g. -o styled/)")
    out = Path(output) if output != STDIO else None
    skip = _resolve(out) if out_dir_mode and out is not None else None
    jobs: list[Job] = []
    for raw in inputs:
        if raw == STDIO:
            if out_dir_mode:
                jobs.append(Job(STDIO, None, "image", "stdin (-) needs a file or - as output, not a folder"))
            else:
                jobs.append(Job(STDIO, out if out is not None else STDIO, "image"))
            continue
        src = Path(raw)
        if src.is_dir():
            files = _walk(src, skip)
            if not files:
                jobs.append(Job(src, None, "image", "folder has no images or videos"))
            for f in files:
                jobs.append(Job(f, out / f.relative_to(src), "video" if is_video(f) else "image"))
            continue
        kind = "video" if is_video(src) else "image"
        if not src.exists():
            hint = (f" (flags such as --overwrite take no value: drop the {raw!r})"
                    if raw.lower() in FLAG_VALUES else "")
            jobs.append(Job(src, None, kind, f"no such file{hint}"))
            continue
        dst: Path | str = (out / src.name) if out_dir_mode else (out if out is not None else STDIO)
        if dst == STDIO and kind == "video":
            jobs.append(Job(src, None, kind, "videos cannot be written to stdout"))
            continue
        jobs.append(Job(src, dst, kind))
    # Never write onto an input, nor twice to one output.
    inputs_resolved = {_resolve(j.src) for j in jobs if isinstance(j.src, Path)}
    seen: set[Path] = set()
    for j in jobs:
        if j.error or not isinstance(j.dst, Path):
            continue
        r = _resolve(j.dst)
        if r in inputs_resolved:
            j.error = f"output {j.dst} would overwrite an input; choose another output"
        elif r in seen:
            j.error = f"output {j.dst} is also the output of an earlier input (same file name)"
        seen.add(r)
    return jobs


def _stdout_format(loaded) -> str:
    from PIL import Image

    Image.init()
    return loaded.format if loaded.format in Image.SAVE else "PNG"


def stylize(inputs: list[str], output: str | None, style: Any, *, backend: str = "auto", device: str | None = None,
            precision: str | None = None, max_size: int | None = None, strength: float = 1.0,
            preserve_color: bool = False, overwrite: bool = False, video_options: dict[str, Any] | None = None,
            on_result: Callable[[FileResult], None] | None = None,
            stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> list[FileResult]:
    """Stylize images (and videos) from `inputs` into `output`. Returns one FileResult per input file; each is
    also handed to `on_result` as soon as it is done (the CLI prints failures from there).

    Errors about the whole request (bad style, backend, options, output shape) raise StyleEngineError.
    """
    postprocess.check_strength(strength)
    check_max_size(max_size)
    video_options = dict(video_options or {})
    stats_target = video_options.pop("stats", None)
    if stats_target not in (None, STDIO):
        _check_writable(Path(stats_target), "--stats")  # before any video is written, not after
    jobs = plan_jobs(list(inputs), output)
    results: list[FileResult] = []
    stats_docs: list[dict[str, Any]] = []
    stylizer = None

    def get_stylizer() -> Stylizer:
        nonlocal stylizer
        if stylizer is None:
            bundle = resolve_style(style)
            # Refuse a bundle modified after it was built before anything runs (whichever backend would run
            # which file; --backend auto would otherwise find out per file, on the first frame).
            bundle.verify_all()
            stylizer = Stylizer(bundle, backend, device=device, precision=precision, max_size=max_size,
                                strength=strength, preserve_color=preserve_color)
        return stylizer

    def report(res: FileResult, bar) -> None:
        results.append(res)
        bar.update(advance=1, info=Path(res.input).name)
        if on_result:
            on_result(res)

    if stats_target is not None:
        video_options["stats"] = stats_docs  # each video's stats document is collected, written once below
    try:
        with progress("stylize", len(jobs), unit="file") if len(jobs) > 1 else NullProgress() as bar:
            for job in jobs:
                report(_run_job(job, get_stylizer, overwrite, video_options, stdin, stdout), bar)
    finally:
        if stylizer is not None:
            stylizer.close()
        if stats_target is not None and stats_docs:
            _write_stats(stats_target, stats_docs)
    return results


def _write_stats(target: str, docs: list[dict[str, Any]]) -> None:
    """The --stats document: one video's stats object, or a list of them when several videos ran (so that
    `--stats -` is always exactly one JSON document on stdout)."""
    text = json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, default=str) + "\n"
    if target == STDIO:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text(text)


def _check_writable(path: Path, what: str) -> None:
    """A one-line error now for an output path that cannot be written later (missing folder, file in the way)."""
    if path.is_dir():
        raise StyleEngineError(f"{what} {path}: a folder of that name is in the way")
    parent = path.parent
    if not parent.is_dir():
        raise StyleEngineError(f"{what} {path}: {_missing_folder(parent)}")


def _missing_folder(folder: Path) -> str:
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        return f"{blocker} is a file, not a folder"
    return f"output folder does not exist: {folder}"


def _make_parent(dst: Path) -> None:
    """Create the output's folder (a folder run mirrors the input tree); a file in the way is one line."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StyleEngineError(f"cannot write {dst}: {_missing_folder(dst.parent)}") from None


def _run_job(job: Job, get_stylizer: Callable[[], Stylizer], overwrite: bool, video_options: dict[str, Any],
             stdin: BinaryIO | None, stdout: BinaryIO | None) -> FileResult:
    """One input -> one FileResult. Problems with this file (unreadable, unwritable output) are its result;
    style and backend problems abort the run (they raise)."""
    name = str(job.src) if job.src != STDIO else "<stdin>"
    if job.error:
        return FileResult(name, None, False, job.kind, job.error)
    dst = job.dst
    if isinstance(dst, Path) and dst.is_dir():
        return FileResult(name, str(dst), False, job.kind, f"cannot write {dst}: a folder of that name is in the way")
    if isinstance(dst, Path) and not overwrite and dst.exists():
        return FileResult(name, str(dst), False, job.kind, f"output exists (use --overwrite): {dst}")
    loaded = None
    try:
        if job.kind == "image":
            # Read the input and check the output format before (lazily) loading a model.
            loaded = _read_input(job, stdin)
            if isinstance(dst, Path):
                format_for(dst)
    except StyleEngineError as exc:
        return FileResult(name, str(dst), False, job.kind, _strip(str(exc), name))
    st = get_stylizer()  # style/backend errors abort the whole run (raise)
    t0 = time.perf_counter()  # per-file seconds exclude the one-time model load
    try:
        if job.kind == "video":
            res = _do_video(st, job, overwrite, video_options)
        else:
            res = _do_image(st, job, loaded, overwrite, stdout)
    except (Interrupted, CacheError):  # the whole run stops: Ctrl-C, or no usable cache for any file
        raise
    except StyleEngineError as exc:
        return FileResult(name, str(dst), False, job.kind, _strip(str(exc), name))
    except MemoryError:
        return FileResult(name, str(dst), False, job.kind, "out of memory; use --max-size to downscale")
    except OSError as exc:  # read-only filesystem, permission denied, disk full, a file where a folder should be
        return FileResult(name, str(dst), False, job.kind, f"cannot write {dst}: {write_error(exc)}")
    res.seconds = round(time.perf_counter() - t0, 4)
    return res


def write_error(exc: OSError) -> str:
    """A short reason for a failed write, from the OS error (no traceback)."""
    return exc.strerror or type(exc).__name__


def _strip(msg: str, path: Any) -> str:
    """Per-file messages are printed as `error: PATH: msg`; drop a duplicated leading path."""
    prefix = f"{path}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


def _read_input(job: Job, stdin: BinaryIO | None):
    if job.src == STDIO:
        data = (stdin or sys.stdin.buffer).read()
        if not data:
            raise StyleEngineError("empty input")
        return load_image(data, "<stdin>")
    return load_image(job.src)


def _do_image(st: Stylizer, job: Job, loaded, overwrite: bool, stdout: BinaryIO | None) -> FileResult:
    out = st.stylize_loaded(loaded)
    h, w = out.rgb.shape[:2]
    if job.dst == STDIO:
        buf = io.BytesIO()
        save_image(buf, out.rgb, alpha=out.alpha, icc_profile=out.icc_profile, exif=out.exif,
                   format=_stdout_format(loaded))
        sink = stdout or sys.stdout.buffer
        sink.write(buf.getvalue())
        sink.flush()
        dst_name = "-"
    else:
        dst = Path(job.dst)
        _make_parent(dst)
        fmt = format_for(dst)
        if fmt == "JPEG" and out.alpha is not None:
            log.warning("note: %s: JPEG has no alpha channel; transparency dropped", dst)
        with atomic_path(dst, overwrite=overwrite, suffix=dst.suffix) as tmp:
            save_image(tmp, out.rgb, alpha=out.alpha, icc_profile=out.icc_profile, exif=out.exif, format=fmt)
        dst_name = str(dst)
    name = "<stdin>" if job.src == STDIO else str(job.src)
    return FileResult(name, dst_name, True, "image", width=w, height=h, backend=st.backend_name)


def _do_video(st: Stylizer, job: Job, overwrite: bool, video_options: dict[str, Any]) -> FileResult:
    dst = Path(job.dst)
    _make_parent(dst)
    opts = {k: v for k, v in video_options.items() if v is not None}
    stats_docs = opts.pop("stats", None)
    if stats_docs is not None:
        opts["stats"] = True  # fill result.stats; the caller writes the document (one for all videos)
    try:
        res = stylize_video(job.src, dst, st, overwrite=overwrite, **opts)
    except StyleEngineError as exc:  # interrupted or a damaged input: a partial output still has its stats
        partial = getattr(exc, "result", None)
        if stats_docs is not None and partial is not None:
            stats_docs.append(partial.to_dict())
        raise
    d = res.to_dict()
    if stats_docs is not None:
        stats_docs.append(d)
    enc = d.get("encoder") or {}
    return FileResult(str(job.src), str(dst), True, "video", width=enc.get("width"), height=enc.get("height"),
                      backend=st.backend_name,
                      extra={k: d[k] for k in ("frames", "fps", "partial", "encoder") if k in d})
