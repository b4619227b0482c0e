"""Streaming figures are not biased by set-up: stylize_video lets the Stylizer prepare its backend (CUDA graph
capture, TensorRT contexts) for the clip's shapes BEFORE the pipeline's clock starts, and the reported wall
clock and frames/s exclude that time."""

from __future__ import annotations

import time

import pytest

from styleengine.engine.video.pipeline import stylize_video

from .helpers import InvertBackend, make_video, stylizer

pytest.importorskip("av")

PREPARE_S = 1.0


class SlowPrepareBackend(InvertBackend):
    """GPU-like (batches of several frames) test double whose prepare() takes a second, like a graph capture."""

    def __init__(self, **kw):
        super().__init__(device="cuda:0", **kw)
        self.events: list[tuple[str, object]] = []

    def prepare(self, shapes):
        super().prepare(shapes)
        shapes = [tuple(s) for s in shapes]
        time.sleep(PREPARE_S)
        self.events.append(("prepare", shapes))

    def _infer(self, batch):
        self.events.append(("infer", tuple(batch.shape)))
        return super()._infer(batch)


def test_prepare_runs_before_the_clock_and_is_not_in_the_figures(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, n=10, w=48, h=36, audio=None)
    be = SlowPrepareBackend()
    st = stylizer(be)
    assert st.batch_size == 4  # GPU-like: several frames per call

    t0 = time.perf_counter()
    res = stylize_video(src, tmp_path / "out.mp4", st, stats=True)
    total = time.perf_counter() - t0

    # prepared once, first, for every shape the pipeline then sends (batch 1 and the streaming batch)
    kinds = [k for k, _ in be.events]
    assert kinds[0] == "prepare" and kinds.count("prepare") == 1 and set(kinds[1:]) == {"infer"}
    assert be.events[0][1] == [(1, 36, 48, 3), (4, 36, 48, 3)]
    assert {s for k, s in be.events[1:]} <= {(1, 36, 48, 3), (2, 36, 48, 3), (3, 36, 48, 3), (4, 36, 48, 3)}
    assert res.frames == 10
    # The pipeline's wall clock starts after prepare(): it is at most the call's time minus the prepare time
    # (had the clock included prepare, wall >= PREPARE_S + the pipeline, i.e. more than total - PREPARE_S).
    assert res.wall_seconds <= total - PREPARE_S + 0.002
    assert res.stats["wall_seconds"] <= total - PREPARE_S + 0.002
    assert res.fps == pytest.approx(res.frames / res.stats["wall_seconds"], rel=0.01)
    assert "prepare" not in res.stats["stages"]
