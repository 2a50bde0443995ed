"""What the FTP and SFTP upload tests share: a station file in the collector's folder and
an uploader on a fresh ledger."""

from pathlib import Path

from collector.config import Tt10Settings
from collector.tt10.ledger import Ledger
from collector.tt10.upload import Tt10Uploader


def write(
    directory: Path, name: str, text: str = "COD\t42.000\tmg/L\t20261120100000\t00\n"
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def uploader(config: Tt10Settings, password: str) -> Tt10Uploader:
    assert config.ledger_path is not None
    return Tt10Uploader(config, Ledger(config.ledger_path), password)
