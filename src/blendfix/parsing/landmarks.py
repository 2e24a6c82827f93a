"""Offline face landmarks: MediaPipe's 478-point face mesh, run from the models inside its wheel.

The face mesh of ``mediapipe==0.10.14`` (Apache-2.0) ships its TFLite models (short-range face
detector, face landmarks with attention refinement for eyes, lips and irises) inside the PyPI
wheel, so nothing is downloaded. Newer mediapipe releases (0.10.30 and later) no longer bundle
these models, so 0.10.14 is the supported version.

Only mediapipe's compiled graph runner is used (``mediapipe.python._framework_bindings``); its
Python ``solutions`` layer is bypassed because it needs ``protobuf<5`` (which clashes with current
onnx and tensorboard) and imports matplotlib. The runner itself needs only ``numpy`` and *some*
``protobuf`` to be importable; mediapipe is installed with ``pip install --no-deps
mediapipe==0.10.14`` (its declared opencv-contrib-python clashes with opencv-python-headless).

Coordinates are pixels, ``(x, y)`` with x to the right and y down, for the image as given.
"Left"/"right" in :data:`LANDMARK_REGIONS` are the *subject's* left/right (MediaPipe's
convention): ``left_eye`` appears on the image's right side in a frontal photo.

Several faces: :func:`detect_landmarks` returns the largest face (largest area inside the face
oval); :func:`detect_all_landmarks` returns all of them (up to ``max_faces``), largest first.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.machinery
import importlib.util
import io
import os
import re
import struct
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..errors import BlendfixError, NoFaceError

NUM_LANDMARKS = 478
MEDIAPIPE_VERSION = "0.10.14"
_GRAPH = "modules/face_landmark/face_landmark_front_cpu.binarypb"
_INSTALL_HINT = f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION} protobuf"

#: Mesh indices of face regions. Closed regions are polygons in boundary order; ``nose`` is the
#: outline of the nose (bridge sides, alae and the base) in boundary order as well.
LANDMARK_REGIONS: dict[str, list[int]] = {
    "face_oval": [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                  152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109],
    "left_brow": [276, 283, 282, 295, 285, 336, 296, 334, 293, 300],
    "right_brow": [46, 53, 52, 65, 55, 107, 66, 105, 63, 70],
    "left_eye": [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249],
    "right_eye": [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7],
    "left_iris": [474, 475, 476, 477],
    "right_iris": [469, 470, 471, 472],
    "lips_outer": [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146],
    "lips_inner": [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95],
    "nose": [168, 417, 360, 344, 278, 392, 462, 2, 242, 166, 48, 115, 131, 193],
}


class _FaceMesh:
    """One MediaPipe face-mesh graph per process, used under a lock (the graph is not re-entrant).

    Worker processes: each builds its own graph lazily. Use the 'spawn' or 'forkserver' start
    method, or fork before the parent parses a face (mediapipe's threads do not survive fork()).
    """

    _lock = threading.Lock()
    _instance: _FaceMesh | None = None

    def __init__(self, max_faces: int) -> None:
        fb, root = _bindings()
        self._fb = fb
        self.max_faces = max_faces
        self._pid = os.getpid()
        self._ts = 0
        self._out: dict[str, object] = {}
        with _quiet_stderr():
            fb.resource_util.set_resource_dir(str(root.parent))
            graph = fb.calculator_graph.CalculatorGraph(binary_graph_path=str(root / _GRAPH))
            graph.observe_output_stream("multi_face_landmarks", self._on_output, True)
            pc = fb._packet_creator
            graph.start_run({"num_faces": pc.create_int(max_faces), "with_attention": pc.create_bool(True),
                             "use_prev_landmarks": pc.create_bool(False)})
        self._graph = graph

    def _on_output(self, stream: str, packet) -> None:
        self._out[stream] = packet

    @classmethod
    def get(cls, max_faces: int) -> _FaceMesh:
        inst = cls._instance
        if inst is not None and inst._pid != os.getpid():
            # mediapipe is not fork-safe once its graph threads run: a second graph in a forked child
            # corrupts the heap, and the inherited one has no threads. Refuse clearly instead.
            raise BlendfixError("the face mesh was started before this process was forked; start worker "
                                "processes with multiprocessing's 'spawn' (or 'forkserver') method, or fork "
                                "them before the first face is parsed")
        if inst is None or inst.max_faces < max_faces:
            inst = cls._instance = _FaceMesh(max(max_faces, 4))
        return inst

    def run(self, rgb: np.ndarray) -> list[np.ndarray]:
        """uint8 (H, W, 3) RGB -> list of float32 (478, 3) normalised landmarks (x, y, z)."""
        fb = self._fb
        self._out.clear()
        self._ts += 1
        packet = fb._packet_creator._create_image_frame_from_pixel_data(fb.image_frame.ImageFormat.SRGB, rgb, True)
        # the models log their set-up lazily (on first use, on a first second face...)
        with _quiet_stderr():
            self._graph.add_packet_to_input_stream("image", packet.at(self._ts))
            self._graph.wait_until_idle()
        packet = self._out.get("multi_face_landmarks")
        if packet is None or packet.is_empty():
            return []
        return [_parse_landmark_list(b) for b in fb._packet_getter._get_serialized_proto_list(packet)]


# mediapipe's routine start-up chatter on stderr: glog-style info/warning lines, TFLite's delegate
# notice, absl's pre-init notice, and a harmless protobuf-API probe when its bindings load.
_NOISE = re.compile(r"^(?:[IW]\d{4} |INFO: Created TensorFlow Lite|WARNING: All log messages before absl|"
                    r"AttributeError: 'MessageFactory' object has no attribute 'GetPrototype')")


@contextlib.contextmanager
def _quiet_stderr():
    """Capture what mediapipe's C++ code prints on stderr; pass on everything but its routine chatter."""
    fd = 2  # the C++ code writes to file descriptor 2 whatever sys.stderr is
    try:
        sys.stderr.flush()
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):
        yield
        return
    py_err = io.StringIO()  # Python-level chatter (protobuf's API probe) goes to sys.stderr, which may not be fd 2
    with tempfile.TemporaryFile() as tmp, contextlib.redirect_stderr(py_err):
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace") + py_err.getvalue()
            kept = [line for line in text.splitlines(keepends=True) if not _NOISE.match(line)]
            if kept:
                os.write(fd, "".join(kept).encode("utf-8", "replace"))


_filter_installed = False


def filter_native_stderr() -> None:
    """For a whole command-line run: pass file descriptor 2 through a filter that drops mediapipe's
    chatter, including lines its graph threads print after :func:`_quiet_stderr` has ended (TFLite's
    delegate notice comes from a thread, at an unpredictable moment). Everything else is passed on
    unchanged; at exit the pipe is drained before the process ends. Idempotent."""
    global _filter_installed
    if _filter_installed:
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        read_end, write_end = os.pipe()
    except (AttributeError, OSError, ValueError):
        return
    os.dup2(write_end, 2)
    os.close(write_end)
    _filter_installed = True

    def pump() -> None:
        with os.fdopen(read_end, "rb") as src:
            for line in src:
                if not _NOISE.match(line.decode("utf-8", "replace")):
                    os.write(real, line)

    thread = threading.Thread(target=pump, name="blendfix-stderr-filter", daemon=True)
    thread.start()

    def drain() -> None:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.flush()
        os.dup2(real, 2)  # the pipe's last writer is gone: the pump reads to its end and stops
        thread.join(timeout=5)

    atexit.register(drain)


def _bindings():
    """Import mediapipe's compiled graph runner without running ``mediapipe/__init__.py``."""
    loaded = sys.modules.get("mediapipe.python._framework_bindings")
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise BlendfixError(f"the offline face parser needs mediapipe: {_INSTALL_HINT}")
    root = Path(list(spec.submodule_search_locations)[0])
    if not (root / _GRAPH).is_file():
        raise BlendfixError(f"this mediapipe has no bundled face mesh ({root / _GRAPH} missing); {_INSTALL_HINT}")
    if loaded is not None:
        return loaded, root
    so = sorted((root / "python").glob("_framework_bindings*.so")) + sorted(
        (root / "python").glob("_framework_bindings*.pyd"))
    if not so:
        raise BlendfixError(f"mediapipe at {root} has no compiled graph runner; {_INSTALL_HINT}")
    name = "mediapipe.python._framework_bindings"
    loader = importlib.machinery.ExtensionFileLoader(name, str(so[0]))
    mod_spec = importlib.util.spec_from_file_location(name, so[0], loader=loader)
    try:
        with _quiet_stderr():
            module = importlib.util.module_from_spec(mod_spec)
            loader.exec_module(module)
    except ImportError as e:
        raise BlendfixError(f"mediapipe's graph runner failed to load ({e}); it needs protobuf: {_INSTALL_HINT}") from e
    sys.modules[name] = module
    return module, root


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one serialised protobuf message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        yield field, wire, value


def _parse_landmark_list(buf: bytes) -> np.ndarray:
    """Serialised ``mediapipe.NormalizedLandmarkList`` -> float32 (N, 3) of (x, y, z)."""
    points = []
    for field, wire, value in _fields(buf):
        if field != 1 or wire != 2:
            continue
        xyz = [0.0, 0.0, 0.0]
        for f, w, v in _fields(value):
            if 1 <= f <= 3 and w == 5:
                xyz[f - 1] = struct.unpack("<f", v)[0]
        points.append(xyz)
    return np.asarray(points, dtype=np.float32).reshape(-1, 3)


def _to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]} is too small to find a face")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected float in [0, 1] or uint8, got {image.dtype}")
    return np.ascontiguousarray((np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def polygon_area(points: np.ndarray) -> float:
    """Area of a closed polygon given as (N, 2) vertices (shoelace formula)."""
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def detect_all_landmarks(image: np.ndarray, source: str | os.PathLike | None = None,
                         max_faces: int = 4) -> list[np.ndarray]:
    """All faces' landmarks, largest face first.

    Args:
        image: float32 (H, W, 3) RGB in [0, 1], or uint8 (H, W, 3) RGB.
        source: the file the image came from, named in errors.
        max_faces: at most this many faces are returned.

    Returns:
        A list of float32 (478, 2) arrays of pixel (x, y) coordinates; empty when no face is found.
    """
    rgb = _to_uint8_rgb(image)
    h, w = rgb.shape[:2]
    with _FaceMesh._lock:
        faces = _FaceMesh.get(max_faces).run(rgb)
    out = []
    for lm in faces:
        if lm.shape[0] != NUM_LANDMARKS:
            raise BlendfixError(f"{source or 'image'}: face mesh returned {lm.shape[0]} points, expected "
                                f"{NUM_LANDMARKS}; use mediapipe=={MEDIAPIPE_VERSION}")
        out.append((lm[:, :2] * np.array([w, h], dtype=np.float32)).astype(np.float32))
    out.sort(key=lambda p: polygon_area(p[LANDMARK_REGIONS["face_oval"]]), reverse=True)
    return out[:max_faces]


def detect_landmarks(image: np.ndarray, source: str | os.PathLike | None = None) -> np.ndarray:
    """The 478 face-mesh landmarks of the largest face in ``image``.

    Args:
        image: float32 (H, W, 3) RGB in [0, 1], or uint8 (H, W, 3) RGB.
        source: the file the image came from, named in the error when no face is found.

    Returns:
        float32 (478, 2) pixel coordinates (x, y) of the largest face (by area inside the face oval).

    Raises:
        NoFaceError: no face was found; the message names ``source``.
        ValueError: the image is not (H, W, 3) float or uint8.
    """
    faces = detect_all_landmarks(image, source)
    if not faces:
        name = str(source) if source is not None else "image"
        raise NoFaceError(f"{name}: no face found; use a photo with one clearly visible, roughly frontal face "
                          "(aligned crops such as FFHQ / CelebA-HQ work best).")
    return faces[0]
