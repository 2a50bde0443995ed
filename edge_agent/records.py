"""What the agent keeps about a command across its own restarts (a pushed config, an
offered release): one pydantic model as JSON in the state folder, written whole and
private, since the process that answers the collector may be the next one."""

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from iotruntime.private_files import make_private_dirs, write_private_file

Record = TypeVar("Record", bound=BaseModel)


def read_record_file(path: Path, model: type[Record]) -> Record | None:
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None


def write_record_file(path: Path, record: Record) -> Record:
    make_private_dirs(path.parent)
    write_private_file(path, record.model_dump_json().encode())
    return record
