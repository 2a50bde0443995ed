"""Cameras on the agent: a video of a passing vehicle, a stream that dies and comes back,
files that cannot be read, and garbage in a stream. Real OpenCV capture, real ONNX models,
a real HTTP MJPEG server; plates end in the agent's real outbox."""

import asyncio
import base64
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
import yaml

from edge_agent.agent import Agent
from edge_agent.config import CameraSettings, load_agent
from edge_agent.outbox import Outbox
from edge_agent.sources.base import SourceStats
from edge_agent.sources.camera import FrameGrabber
from iotwire import decode
from iotwire.messages import PlateRead
from iotwire.topics import Channel
from testbed.plate_scenes import Condition, Layout, make_scene, passing_vehicle, write_video
from testbed.waiting import free_port, wait_until


def agent_config(tmp_path, cameras: list[dict]) -> Agent:
    path = tmp_path / "agent.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "cam-1", "site": "dd", "kind": "camera_pole", "name": "Pole 1"},
                "broker": {"host": "127.0.0.1", "port": free_port()},  # nobody listens
                "state_dir": str(tmp_path / "state"),
                "cameras": cameras,
                "health": {"interval_s": 3600},
            }
        )
    )
    return Agent(load_agent(path))


def plates_in(outbox: Outbox) -> list[PlateRead]:
    return [decode(e.payload, PlateRead) for e in outbox.peek(1000) if e.channel is Channel.PLATE]


def committed(tmp_path) -> Outbox:
    """The agent's outbox as it is on disk after the agent stopped."""
    return Outbox(tmp_path / "state" / "outbox.sqlite")


def run_agent(agent: Agent, until: object, timeout_s: float = 60) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        deadline = time.monotonic() + timeout_s
        while not until() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(main())


def test_a_passing_vehicle_in_a_video_file_is_one_plate_event(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    images, plate = passing_vehicle(random.Random(3), Layout.MOTORBIKE, frames=30)
    video = tmp_path / "pass.avi"
    write_video(str(video), images, fps=10)
    agent = agent_config(tmp_path, [{"name": "north", "url": str(video), "max_fps": 10}])
    # The video plays at 10 fps for 4 s; when it ends the camera decides what it saw.
    run_agent(agent, lambda: plates_in(agent.outbox), timeout_s=60)
    outbox = committed(tmp_path)
    [read] = plates_in(outbox)
    assert read.text == plate.canonical
    assert read.display == plate.display
    assert read.camera == "north"
    assert read.colour == "white"
    assert 0.5 < read.confidence <= 1
    jpeg = base64.b64decode(read.crop_jpeg_b64)
    assert len(jpeg) <= 24 * 1024
    crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None
    assert crop.shape[1] >= read.box[2]
    outbox.close()
    # A plate is personal data: the log and the status say a plate was read, not which.
    assert "north: a plate read" in caplog.text
    assert plate.display not in caplog.text
    assert plate.canonical not in caplog.text
    assert agent.source_stats["north"].last_value == "plates read: 1"


class MjpegStream:
    """An HTTP MJPEG camera that can be switched off and on, on the same port."""

    def __init__(self, frame: np.ndarray, garbage_every: int = 0) -> None:
        self.port = free_port()
        self.jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
        self.garbage_every = garbage_every
        self.on = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        stream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                sent = 0
                try:
                    while stream.on.is_set():
                        sent += 1
                        body = stream.jpeg
                        if stream.garbage_every and sent % stream.garbage_every == 0:
                            body = bytes(random.Random(sent).randbytes(len(body)))
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode()
                            + body
                            + b"\r\n"
                        )
                        time.sleep(0.05)
                except OSError:
                    return

            def log_message(self, *args: object) -> None:
                return

        self.on.set()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.on.clear()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"


@pytest.fixture
def scene_frame():
    return make_scene(random.Random(5), Layout.CAR_ONE_ROW, Condition.DAY).image


@pytest.mark.servers
def test_a_stream_that_dies_and_comes_back_is_reconnected(scene_frame):
    stream = MjpegStream(scene_frame)
    stream.start()
    stats = SourceStats()
    grabber = FrameGrabber(CameraSettings(name="east", url=stream.url, reconnect_max_s=1), stats)
    grabber.start()
    try:
        wait_until(lambda: grabber.newest(0) is not None, 20, "first frame")
        stream.stop()
        wait_until(
            lambda: "lost" in stats.last_error or "cannot open" in stats.last_error, 20, "loss"
        )
        before = grabber.newest(0).seq
        stream.start()
        wait_until(
            lambda: grabber.newest(before) is not None, 30, "frames after the stream returned"
        )
        assert grabber.reconnects >= 1
        assert stats.errors >= 1
    finally:
        grabber.stop()
        stream.stop()


@pytest.mark.servers
def test_garbage_frames_in_a_stream_do_not_stop_the_camera(scene_frame):
    stream = MjpegStream(scene_frame, garbage_every=3)
    stream.start()
    stats = SourceStats()
    grabber = FrameGrabber(CameraSettings(name="west", url=stream.url, reconnect_max_s=1), stats)
    grabber.start()
    try:
        wait_until(lambda: grabber.newest(0) is not None, 20, "first frame")
        seen = grabber.newest(0).seq
        wait_until(lambda: grabber.newest(seen + 5) is not None, 30, "frames past the garbage")
        frame = grabber.newest(0)
        assert frame.image.shape == scene_frame.shape
    finally:
        grabber.stop()
        stream.stop()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.avi", None, "no such file"),
        ("corrupt.avi", b"\x00garbage" * 100, "not a video OpenCV can decode"),
    ],
)
def test_an_unreadable_file_is_a_clear_error_and_the_agent_keeps_running(
    tmp_path, name, content, message
):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    agent = agent_config(tmp_path, [{"name": "south", "url": str(path)}])
    stats = agent.source_stats["south"]
    run_agent(agent, lambda: stats.errors > 0, timeout_s=20)
    assert message in stats.last_error
    assert stats.errors == 1
    # The agent ran on: its health message was committed and it stopped cleanly.
    outbox = committed(tmp_path)
    assert [e.channel for e in outbox.peek(10)] == [Channel.HEALTH]
    outbox.close()
