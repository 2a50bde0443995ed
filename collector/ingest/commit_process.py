"""A committer (collector/ingest/committer.py) in a process of its own, for `collector run`.

The ingest process receives, records plate reads and acknowledges; this process decodes
and commits to the store, with its own connection opened from the same configuration
file. Batches go over a pipe and each waits for its answer, so acknowledgement after
commit holds exactly as in one process.

The process ends when the ingest process closes the pipe, whether it stopped or died: a
collector killed with SIGKILL leaves no committer behind, and one stopped by a signal
sent to its whole group (a terminal's Ctrl-C, systemd's stop) lets the committer finish
the batch in hand rather than dying inside it.
"""

import contextlib
import gc
import logging
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

from collector.arrivals import Arrival
from collector.config import load_collector
from collector.i18n import services
from collector.ingest.committer import CommitResult, Committer, CommitterFailed
from collector.stores import Store, open_store
from iotruntime.logs import configure_logging

_ = services.gettext

log = logging.getLogger("collector.ingest.commit_process")  # also when run as __main__

START_TIMEOUT_S = 60.0
T = TypeVar("T")


class CommitProcessError(RuntimeError):
    pass


# Batches the process has begun in the store at once: the next one is decoded, formatted
# and sent while the server still writes the one before it.
OVERLAP = 2


class CommitProcess:
    """Up to `depth` batches are in the pipe at once: `OVERLAP` begun in the store and one
    more waiting, so the process begins the next batch as soon as it has answered one. It
    answers them in order."""

    depth = OVERLAP + 1

    def __init__(self, config_path: Path, log_level: str = "info") -> None:
        self._args = [str(config_path), log_level]
        self._sending = threading.Lock()
        self._turn = threading.Condition()
        self._sent = self._answered = 0
        self._start()

    def _start(self) -> None:
        # A plain `python -m` child rather than multiprocessing's spawn, which would run
        # the parent's main script again; the pipe is a socket pair handed over by number.
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, *self._args, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()  # so the committer sees the pipe close when this process ends
        self._conn = Connection(ours.detach())
        if not self._conn.poll(START_TIMEOUT_S):
            self.close()
            raise CommitProcessError(_("the commit process did not start"))
        try:
            self._answer()
        except CommitProcessError:
            self.close()
            raise

    def commit(self, batch: Sequence[Arrival], received: datetime) -> CommitResult:
        with self._sending:
            if self._process.poll() is not None and self._answered == self._sent:
                # It died (killed, out of memory): the batches that were in it were never
                # acknowledged, so a new one takes over where it stopped.
                log.warning("commit process ended (%s); starting it again", self._process.poll())
                self._conn.close()
                self._start()
            self._conn.send((list(batch), received))
            ticket = self._sent
            self._sent += 1
        with self._turn:
            self._turn.wait_for(lambda: self._answered == ticket)
            try:
                answer = self._answer()
            finally:
                self._answered += 1
                self._turn.notify_all()
        if not isinstance(answer, CommitResult):
            raise CommitProcessError(
                _("the commit process answered {answer}").format(answer=repr(answer))
            )
        return answer

    def _answer(self) -> object:
        try:
            answer = self._conn.recv()
        except EOFError:
            raise CommitProcessError(
                _("the commit process ended (exit code {code})").format(code=self._process.poll())
            ) from None
        if isinstance(answer, CommitterFailed):
            raise CommitProcessError(
                _("the commit process failed: {why}").format(why=answer.reason)
            )
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already gone
            self._conn.send(None)
        self._conn.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def main() -> None:
    config_path, log_level, fd = sys.argv[1:]
    _serve(Connection(int(fd)), Path(config_path), log_level)


def _serve(conn: Connection, config_path: Path, log_level: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(log_level)
    started = _answer_of(lambda: _open(config_path))
    if isinstance(started, CommitterFailed):
        with contextlib.suppress(OSError):  # the ingest process ended meanwhile
            conn.send(started)
        return
    store, committer = started
    _collect_rarely()
    try:
        conn.send("ready")
        _commit_batches(conn, committer)
    except OSError:
        return  # the ingest process ended: what was begun here was never acknowledged
    finally:
        store.close()


def _commit_batches(conn: Connection, committer: Committer) -> None:
    """Answer batches in order until the pipe closes or says stop."""
    begun: deque[Callable[[], object]] = deque()
    while True:
        if not begun or (len(begun) < OVERLAP and conn.poll()):
            try:
                request = conn.recv()
            except EOFError:
                return
            if request is None:
                return
            begun.append(_begin(committer, request))
            continue
        conn.send(begun.popleft()())


# Allocations between two collections of the youngest generation, up from 700: decoding
# a batch makes several objects per message, none in a cycle, and each collection of them
# scanned the batch made so far again (a third of the time a backlog took to commit).
GC_THRESHOLD = (100_000, 50, 100)


def _collect_rarely() -> None:
    """Set this process's garbage collector for batches: what exists once the store is
    open (modules, models' validators) stays for good and is never scanned again, and
    what a batch makes is freed by reference counting long before a collection is due."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _open(config_path: Path) -> tuple[Store, Committer]:
    """The store and a committer on it, from the collector's configuration file; a failure
    is answered in place of `ready`, so the ingest process can say why it cannot start."""
    settings = load_collector(config_path)
    store = open_store(settings)
    return store, Committer(store, settings.broker.topic_prefix)


def _begin(committer: Committer, request: tuple[list[Arrival], datetime]) -> Callable[[], object]:
    """Begin a batch's commit; returns what finishes it and gives the answer. A batch
    never finished (the pipe closed first) was never acknowledged either."""
    begun = _answer_of(lambda: committer.begin(*request))
    if isinstance(begun, CommitterFailed):
        return lambda: begun
    return lambda: _answer_of(lambda: committer.finish(begun))


def _answer_of(step: Callable[[], T]) -> T | CommitterFailed:
    """What `step` returns, or the failure to answer with: the ingest process decides
    what to do about it, backing off and retrying."""
    try:
        return step()
    except Exception as exc:
        log.exception("commit process failed")
        return CommitterFailed(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
