"""Optical flow on input frames, backward warping and the forward-backward occlusion check.

Shared by the `--temporal` stabilizer (engine/temporal.py) and the flicker metric (engine/flicker.py).

Convention used everywhere here: `flow = backward_flow(cur, prev)` satisfies cur(x) ~= prev(x + flow(x)),
so `warp(prev_image, flow)` brings the previous frame (or its stylized output) onto the current frame's
pixel grid. That is the map cv2.remap wants (OpenCV DIS: calc(I0=cur, I1=prev) gives I0(x) ~= I1(x+flow)).

Occlusion test (Ruder et al. GCPR 2016, as in Lai et al. 2018's detect_occlusion): a pixel is unreliable
where following the flow to the other frame and back does not return home,
|f + b~|^2 > 0.01 (|f|^2 + |b~|^2) + 0.5, at motion boundaries |grad f|^2 > 0.01 |f|^2 + 0.002,
or where the flow leaves the frame. Thresholds are in pixels of the grid the flow lives on. The flicker meter
applies all three; the stabilizer can leave the motion-boundary test out (TemporalConfig.motion_boundaries).

cv2 is imported inside functions (engine modules must import without it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from styleengine.core.errors import StyleEngineError

DIS_PRESETS = ("ultrafast", "fast", "medium")
METHODS = DIS_PRESETS + ("farneback",)


def _cv2():
    try:
        import cv2
    except ImportError:
        raise StyleEngineError("optical flow needs OpenCV: pip install 'styleengine[video]' "
                               "(opencv-python-headless)") from None
    return cv2


class _Farneback:
    """Gunnar Farneback's dense flow with the same calc(I0, I1) -> flow (I0(x) ~= I1(x+flow)) interface as DIS."""

    def calc(self, i0: np.ndarray, i1: np.ndarray, init) -> np.ndarray:
        return _cv2().calcOpticalFlowFarneback(i0, i1, None, 0.5, 4, 15, 3, 5, 1.2, 0)


def make_dis(preset: str = "ultrafast"):
    """A dense optical-flow estimator: OpenCV DIS at `preset`, or "farneback". One per stream (scratch buffers)."""
    cv2 = _cv2()
    if preset == "farneback":
        return _Farneback()
    try:
        code = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset]
    except KeyError:
        raise StyleEngineError(f"unknown optical-flow preset {preset!r}; choose one of: {', '.join(METHODS)}") from None
    return cv2.DISOpticalFlow_create(code)


def scale_for(width: int, height: int, max_side: int | None) -> float:
    """The factor that brings the long side down to max_side (1.0 when already smaller or None)."""
    if not max_side or max(width, height) <= max_side:
        return 1.0
    return max_side / max(width, height)


def small_gray(frame: np.ndarray, scale: float) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 grey at `scale` (area filter). Sides never drop below 16 px."""
    cv2 = _cv2()
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise StyleEngineError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    sw, sh = max(16, round(w * scale)), max(16, round(h * scale))
    if (sw, sh) == (w, h):
        return gray
    return cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_AREA)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(x) = image(x + flow(x)), bilinear, edges replicated. flow: (H, W, 2) float32."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of an (H, W[, C]) float32 image, sigma in pixels, edges reflected."""
    return _cv2().GaussianBlur(image, (0, 0), sigma)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a flow field to (width, height), rescaling the vectors to the new pixel units."""
    cv2 = _cv2()
    w, h = size
    fh, fw = flow.shape[:2]
    if (fw, fh) == (w, h):
        return flow
    out = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= w / fw
    out[..., 1] *= h / fh
    return out


def consistent_mask(flow_cur: np.ndarray, flow_prev: np.ndarray, *, boundaries: bool = True) -> np.ndarray:
    """Forward-backward check. flow_cur: cur->prev backward map; flow_prev: prev->cur. Bool (H, W), True = reliable.
    `boundaries`: also distrust steep flow gradients (motion boundaries)."""
    h, w = flow_cur.shape[:2]
    back = warp(flow_prev, flow_cur)  # b~(x) = flow_prev(x + flow_cur(x))
    s = flow_cur + back
    ok = (s ** 2).sum(-1) <= 0.01 * ((flow_cur ** 2).sum(-1) + (back ** 2).sum(-1)) + 0.5
    if boundaries:
        ok &= _smooth_flow(flow_cur)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = gx + flow_cur[..., 0], gy + flow_cur[..., 1]
    ok &= (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return ok


def _smooth_flow(flow_cur: np.ndarray) -> np.ndarray:
    """Bool (H, W): no motion boundary, |grad f|^2 <= 0.01 |f|^2 + 0.002."""
    cv2 = _cv2()
    gx_u = cv2.Sobel(flow_cur[..., 0], cv2.CV_32F, 1, 0, ksize=1)
    gy_u = cv2.Sobel(flow_cur[..., 0], cv2.CV_32F, 0, 1, ksize=1)
    gx_v = cv2.Sobel(flow_cur[..., 1], cv2.CV_32F, 1, 0, ksize=1)
    gy_v = cv2.Sobel(flow_cur[..., 1], cv2.CV_32F, 0, 1, ksize=1)
    grad2 = gx_u ** 2 + gy_u ** 2 + gx_v ** 2 + gy_v ** 2
    return grad2 <= 0.01 * (flow_cur ** 2).sum(-1) + 0.002


@dataclass
class FlowField:
    """Motion from the previous to the current input frame, on the grid it was computed on."""

    flow: np.ndarray  # (h, w, 2) float32, cur(x) ~= prev(x + flow(x))
    mask: np.ndarray  # (h, w) bool, True where the flow passed the forward-backward check
    residual: float  # mean |cur - warp(prev)| of the grey frames, 0-1 (flow-compensated change)

    def at(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(flow, float mask in 0..1) resized to (width, height); the mask edges become soft."""
        return resize_flow(self.flow, size), self.mask_at(size)

    def mask_at(self, size: tuple[int, int]) -> np.ndarray:
        """The mask alone as at() gives it (float 0..1 at (width, height), soft edges), without resizing the flow."""
        cv2 = _cv2()
        w, h = size
        mask = self.mask.astype(np.float32)
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return mask

    def reliable_at(self, size: tuple[int, int]) -> np.ndarray:
        """Bool (H, W) at size=(W, H): where mask_at() is at least half reliable. The flicker meter measures there;
        the temporal stabilizer (mostly) keeps the fresh stylization everywhere else."""
        return self.mask_at(size) >= 0.5


def flow_between(dis, prev_gray: np.ndarray, cur_gray: np.ndarray, *, boundaries: bool = True) -> FlowField:
    """Backward and forward DIS flow between two small grey frames, with their consistency mask
    (consistent_mask's `boundaries`)."""
    fw_cur = dis.calc(cur_gray, prev_gray, None)  # cur -> prev
    fw_prev = dis.calc(prev_gray, cur_gray, None)  # prev -> cur
    mask = consistent_mask(fw_cur, fw_prev, boundaries=boundaries)
    warped = warp(prev_gray, fw_cur)
    residual = float(np.abs(cur_gray.astype(np.float32) - warped.astype(np.float32)).mean() / 255.0)
    return FlowField(fw_cur, mask, residual)
