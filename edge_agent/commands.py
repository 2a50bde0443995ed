"""Commands from the collector, each answered with an acknowledgement.

`push_config` and `report_config` are remote configuration (edge_agent/remote_config.py):
a push the agent restarts on is answered by the process after the restart, when the
collector asks again. `update_software` is answered the same way, once the release is
installed and tried (edge_agent/software_update.py); until then the box stays silent and
the collector keeps asking.

They arrive on the device's own `cmd/{name}` topics, which the broker's ACL lets only the
collector write. A command older than MAX_AGE_S is refused rather than run: the session is
persistent, so one sent while the box was offline arrives when it returns, and re-reading
the config an hour after someone asked for it is not what they asked for. Every answer is
a `cmd_ack` with the command's id, ok or not, and a detail a person can read.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.config import AgentConfig, load_agent
from edge_agent.poller import describe
from edge_agent.remote_config import RemoteConfig
from edge_agent.software_update import SoftwareUpdates
from edge_agent.sources.base import Source, SourceError
from edge_agent.status import AgentStatus
from iotruntime.configfile import ConfigError
from iotwire.messages import MAX_CONFIG_CHARS, Command, CommandAck

log = logging.getLogger(__name__)
MAX_AGE_S = 300.0
READ_TIMEOUT_S = 10.0
DETAIL_MAX = 4096


class CommandHandler:
    def __init__(
        self,
        config: AgentConfig,
        status: Callable[[], AgentStatus],
        readers: dict[str, Source],
        config_path: Path | None,
        restart: Callable[[], None],
    ) -> None:
        device = config.device.id
        self._device = device
        self._status = status
        self._readers = readers
        self._config_path = config_path
        self._restart = restart
        self._remote = (
            RemoteConfig(device, config_path, restart) if config_path is not None else None
        )
        self._updates = SoftwareUpdates(device, config, restart)

    def _ack(
        self, command: Command, ok: bool, detail: str, config: str | None = None
    ) -> CommandAck:
        return CommandAck(
            device=self._device,
            seq=command.seq,
            id=command.id,
            ok=ok,
            ts=datetime.now(UTC),
            detail=detail[:DETAIL_MAX],
            config=config,
        )

    async def handle(self, command: Command) -> CommandAck | None:
        """The acknowledgement, or None while the answer is not known yet (a release
        being installed): the collector asks again."""
        age = datetime.now(UTC) - command.ts
        if age > timedelta(seconds=MAX_AGE_S):
            return self._ack(command, False, f"refused: sent {age.total_seconds():.0f} s ago")
        if command.name == "push_config":
            log.info("command %s (%s)", command.name, command.id)  # not kilobytes of config
            return await self._push(command)
        if command.name == "update_software":
            log.info("command %s (%s)", command.name, command.id)
            answered = await self._updates.offer(command)
            return self._ack(command, *answered) if answered is not None else None
        log.info("command %s (%s) %s", command.name, command.id, command.args or "")
        if command.name == "report_config":
            return self._report_config(command)
        if command.name == "report_status":
            return self._ack(command, True, self._status().to_json())
        if command.name == "read_sensor":
            return await self._read(command)
        return self._reload(command)

    async def _read(self, command: Command) -> CommandAck:
        name = str(command.args.get("source", ""))
        reader = self._readers.get(name)
        if reader is None:
            known = ", ".join(sorted(self._readers)) or "none"
            return self._ack(command, False, f"no source {name!r}; this box has: {known}")
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                readings = await reader.read()
        except (SourceError, TimeoutError) as exc:
            return self._ack(command, False, f"{name}: {exc or 'no answer'}")
        return self._ack(command, True, f"{name}: {describe(readings)}")

    def _reload(self, command: Command) -> CommandAck:
        if self._config_path is None:
            return self._ack(command, False, "this agent was not started from a config file")
        try:
            load_agent(self._config_path)
        except ConfigError as exc:
            return self._ack(command, False, f"config kept, the new one does not load: {exc}")
        self._restart()
        return self._ack(command, True, f"{self._config_path} loads; restarting with it")

    async def _push(self, command: Command) -> CommandAck:
        if self._remote is None:
            return self._ack(command, False, "refused: this agent was not started from a file")
        answered = await self._remote.push(command)
        if answered is not None:
            return self._ack(command, *answered)
        # Restarting on the pushed config: the next process answers when asked again, and
        # this one stops before this could be answered.
        never: asyncio.Future[CommandAck] = asyncio.get_running_loop().create_future()
        return await never

    def _report_config(self, command: Command) -> CommandAck:
        if self._remote is None:
            return self._ack(command, False, "this agent was not started from a config file")
        running = self._remote.running_text
        if len(running) > MAX_CONFIG_CHARS:
            return self._ack(command, False, f"the config is over {MAX_CONFIG_CHARS} characters")
        return self._ack(command, True, self._remote.report(), running)
