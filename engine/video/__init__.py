"""Streaming engine: video files and live sources through a Stylizer (decode, infer, encode overlap).

    from styleengine import Stylizer
    from styleengine.engine.video import stylize_video, live
    with Stylizer("starry_night", max_size=720) as st:
        stylize_video("in.mp4", "out.mp4", st)             # file -> file, audio copied, timestamps kept
        live("0", st, output="rec.mp4", preview=True)      # webcam / URL / file at real pace, MJPEG preview

PyAV is imported inside the functions, so importing this package needs only numpy.
"""

from .filters import FrameFilter, FrameMeta, StreamInfo
from .live import LiveResult, live
from .pipeline import VideoResult, stylize_video
from .probe import MediaInfo, probe

__all__ = ["FrameFilter", "FrameMeta", "LiveResult", "MediaInfo", "StreamInfo", "VideoResult", "live", "probe",
           "stylize_video"]
