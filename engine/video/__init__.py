"""Streaming engine: video files and live sources through a Stylizer (decode, infer, encode overlap).

    from styleengine.engine.video.pipeline import stylize_video
    from styleengine.engine.video.live import live
    stylize_video("in.mp4", "out.mp4", stylizer)           # file -> file, audio copied, timestamps kept
    live("0", stylizer, output="rec.mp4", preview=True)    # webcam / URL / file at real pace, MJPEG preview

Modules: pipeline (file -> file), live, reader/writer/probe (PyAV, imported inside their functions), queues,
stats, filters (the per-stream hook temporal smoothing plugs into), mjpeg (the preview server). This package
file imports none of them, so engine.temporal can use the filter base class without loading the pipeline.
"""
