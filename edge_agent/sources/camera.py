"""A camera read for plates: frames in, one plate message per vehicle out to the outbox.

A capture thread keeps only the newest frame, so a slow reader skips frames rather than
falling behind the street; a stream that dies is reopened with backoff, for as long as
the agent runs. A video file is played at its own frame rate, as a camera would deliver
it, and ends. Reading runs in a worker thread (ONNX Runtime releases the GIL), and each
vehicle's decided plate is committed to the outbox like any other message, so plates
survive outages too. Errors (a stream that will not open, a frame that will not decode,
a reader failure) are counted on the camera's source stats and logged once per kind of
failure; none stops the agent.
"""

import asyncio
import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.config import CameraSettings
from edge_agent.plates.detector import PlateDetector, load_detector
from edge_agent.plates.ocr import Runtime
from edge_agent.plates.reader import SECOND_LOOK_MIN_SCORE, OcrOptions, PlateReader
from edge_agent.plates.recogniser import PlateRecogniser
from edge_agent.plates.tracker import PlateEvent, PlateTracker, Sighting
from edge_agent.sources.base import ReopenBackoff, SourceStats

log = logging.getLogger(__name__)
Image = NDArray[np.uint8]


@dataclass(frozen=True)
class Frame:
    seq: int
    image: Image
    at: float


def open_capture(url: str) -> cv2.VideoCapture:
    if url.startswith("usb:"):
        return cv2.VideoCapture(int(url.removeprefix("usb:")))
    return cv2.VideoCapture(url)


def is_file(url: str) -> bool:
    return "://" not in url and not url.startswith("usb:")


class FrameGrabber:
    """The capture thread: the newest frame, reconnection. Frames the reader had no time
    for are skipped and counted as the camera's overruns."""

    def __init__(self, settings: CameraSettings, stats: SourceStats) -> None:
        self._settings = settings
        self._stats = stats
        self._lock = threading.Lock()
        self._newest: Frame | None = None
        self._stop = threading.Event()
        self.ended = threading.Event()
        self.reconnects = 0
        self._thread = threading.Thread(
            target=self._run, name=f"camera-{settings.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def newest(self, after: int) -> Frame | None:
        """The newest frame if it is newer than `after`; frames between are skipped and
        counted, the price of never falling behind."""
        with self._lock:
            frame = self._newest
        if frame is None or frame.seq <= after:
            return None
        self._stats.overruns += frame.seq - after - 1
        return frame

    def _error(self, message: str) -> None:
        self._stats.errors += 1
        if message != self._stats.last_error:
            log.warning("camera %s: %s", self._settings.name, message)
        self._stats.last_error = message

    def _run(self) -> None:
        url, seq = self._settings.url, 0
        backoff = ReopenBackoff(cap_s=self._settings.reconnect_max_s)
        while not self._stop.is_set():
            if is_file(url) and not Path(url).is_file():
                self._error(f"cannot read {url}: no such file")
                self.ended.set()
                return
            capture = open_capture(url)
            if not capture.isOpened() and is_file(url):
                self._error(f"cannot read {url}: not a video OpenCV can decode")
                self.ended.set()
                return
            if not capture.isOpened():
                self._error(f"cannot open {url}")
                backoff.failed()
                self._stop.wait(backoff.wait_left())
                continue
            if backoff.succeeded() and seq:
                self.reconnects += 1
                log.info("camera %s: stream back after a loss", self._settings.name)
            pace = 1 / (capture.get(cv2.CAP_PROP_FPS) or 25) if is_file(url) else 0.0
            seq = self._read(capture, seq, pace)
            capture.release()
            if is_file(url):
                self.ended.set()
                return
            self._error(f"stream {url} lost")
            backoff.failed()

    def _read(self, capture: cv2.VideoCapture, seq: int, pace: float) -> int:
        while not self._stop.is_set():
            ok, image = capture.read()
            if not ok or image is None:
                return seq
            seq += 1
            with self._lock:
                # A video stream decodes to 8-bit BGR; OpenCV's stubs type it as any array.
                self._newest = Frame(seq, cast(Image, image), time.time())
            if pace:
                self._stop.wait(pace)
        return seq


def plate_crop(image: Image, box: tuple[int, int, int, int]) -> Image:
    """The plate with a margin, copied out of the frame so the frame can go."""
    x, y, w, h = box
    mx, my = w // 6, h // 4
    return image[max(0, y - my) : y + h + my, max(0, x - mx) : x + w + mx].copy()


def jpeg_crop(crop: Image, max_bytes: int) -> str:
    """The crop as base64 JPEG no larger than `max_bytes`: quality first, then size,
    gives way."""
    quality = 85
    while True:
        ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(data) <= max_bytes:
            return base64.b64encode(data.tobytes()).decode()
        if quality > 40:
            quality -= 15
        else:
            crop = cast(Image, cv2.resize(crop, None, fx=0.75, fy=0.75))


def build_reader(settings: CameraSettings) -> PlateReader:
    runtime = Runtime(settings.ocr.threads, settings.ocr.providers)
    detector = load_detector(settings.detector, runtime) if settings.detector else None
    options = OcrOptions(
        runtime,
        settings.ocr.side_px,
        settings.ocr.min_score,
        settings.ocr.det_model,
        settings.ocr.rec_model,
        settings.ocr.rectify,
    )
    plate_rows = PlateRecogniser(runtime) if settings.ocr.rectify else None
    second_look = (
        PlateDetector(runtime, min_score=SECOND_LOOK_MIN_SCORE)
        if settings.ocr.second_look and settings.ocr.rectify and detector is None
        else None
    )
    return PlateReader(options, detector, plate_rows, second_look)


async def watch_camera(
    settings: CameraSettings,
    reader: PlateReader,
    stats: SourceStats,
    commit: Callable[[str, PlateEvent, str], None],
    stop: asyncio.Event,
) -> None:
    """Read the camera's newest frames at most `max_fps` times a second until `stop` (or
    a video file's end), and commit each vehicle's plate with `commit(camera, event,
    crop)`."""
    grabber = FrameGrabber(settings, stats)
    tracker = PlateTracker(settings.gap_s, settings.repeat_after_s, settings.min_frames)
    grabber.start()
    last, period, read = 0, 1 / settings.max_fps, 0
    try:
        while not stop.is_set():
            began = time.monotonic()
            frame = grabber.newest(after=last)
            if frame is None:
                if grabber.ended.is_set():
                    break
                await asyncio.sleep(min(period, 0.02))
                events = tracker.update([], time.time())
            else:
                last = frame.seq
                whole = read % settings.full_frame_every == 0
                read += 1
                events = await _read_frame(settings, reader, stats, tracker, frame, whole)
            for event in events:
                commit(settings.name, event, _crop(settings, event))
            await asyncio.sleep(max(0.0, period - (time.monotonic() - began)))
        for event in tracker.flush():
            commit(settings.name, event, _crop(settings, event))
    finally:
        await asyncio.to_thread(grabber.stop)


def _crop(settings: CameraSettings, event: PlateEvent) -> str:
    return jpeg_crop(event.best.crop, settings.crop_max_kb * 1024)


async def _read_frame(
    settings: CameraSettings,
    reader: PlateReader,
    stats: SourceStats,
    tracker: PlateTracker,
    frame: Frame,
    whole: bool,
) -> list[PlateEvent]:
    image, (ox, oy) = frame.image, (0, 0)
    if settings.roi is not None:
        ox, oy, w, h = settings.roi
        image = image[oy : oy + h, ox : ox + w]
    regions = [] if whole else [(x - ox, y - oy, w, h) for x, y, w, h in tracker.regions()]
    try:
        candidates = await asyncio.to_thread(reader.read, image, regions)
    except (cv2.error, ValueError, RuntimeError) as exc:
        stats.errors += 1
        if str(exc) != stats.last_error:
            log.warning("camera %s: frame %d not read: %s", settings.name, frame.seq, exc)
        stats.last_error = str(exc)
        return []
    stats.reads += 1
    sightings = []
    for c in candidates:
        box = (c.box[0] + ox, c.box[1] + oy, c.box[2], c.box[3])
        sightings.append(
            Sighting(c.plate, c.confidence, box, c.colour, frame.at, plate_crop(frame.image, box))
        )
    return tracker.update(sightings, frame.at)
