"""The import rules of docs/architecture.md, checked on the source: a rule that only a
document states is broken by the first hurried change."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = ("iotwire", "iotruntime", "edge_agent", "collector")

# package (or module prefix) -> project packages it must never import
FORBIDDEN = {
    "iotwire": ("iotruntime", "edge_agent", "collector", "testbed"),
    "iotruntime": ("edge_agent", "collector", "testbed"),
    "edge_agent": ("collector", "testbed"),
    "collector": ("edge_agent", "testbed"),
    "collector.stores": ("collector.ingest", "collector.police", "collector.api", "collector.cli"),
    "collector.fleet": ("collector.ingest", "collector.police", "collector.api", "collector.cli"),
    "collector.compliance": ("collector.ingest", "collector.police", "collector.api"),
    "collector.tt10": ("collector.ingest", "collector.police", "collector.api", "collector.cli"),
    "collector.police": ("collector.ingest", "collector.api", "collector.cli"),
    "collector.ingest": ("collector.api", "collector.cli"),
    "collector.alarms": ("collector.ingest", "collector.police", "collector.api", "collector.cli"),
    "collector.api": ("collector.cli",),
    "edge_agent.sources": ("edge_agent.poller", "edge_agent.uplink", "edge_agent.outbox"),
    "edge_agent.modbus": ("edge_agent.poller", "edge_agent.uplink", "edge_agent.outbox"),
    "edge_agent.plates": ("edge_agent.poller", "edge_agent.uplink", "edge_agent.outbox"),
}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(root: Path) -> list[str]:
    found = []
    for package in PRODUCTION:
        for path in sorted((root / package).rglob("*.py")):
            module = _module_name(path, root)
            for imported in _imports(path):
                for owner, banned in FORBIDDEN.items():
                    if not _within(module, owner):
                        continue
                    found += [
                        f"{module} imports {imported} ({owner} may not import {b})"
                        for b in banned
                        if _within(imported, b)
                    ]
    return found


def test_no_production_module_imports_what_its_package_may_not():
    assert _violations(REPO) == []


def test_the_check_names_each_forbidden_import(tmp_path):
    stores = tmp_path / "collector" / "stores"
    stores.mkdir(parents=True)
    (stores / "leaky.py").write_text("from collector.api.app import build_app\nimport testbed\n")
    wire = tmp_path / "iotwire"
    wire.mkdir()
    (wire / "codec.py").write_text("from iotruntime.configfile import load_model\n")
    found = _violations(tmp_path)
    assert any(v.startswith("collector.stores.leaky imports collector.api.app") for v in found)
    assert any(v.startswith("collector.stores.leaky imports testbed") for v in found)
    assert any(v.startswith("iotwire.codec imports iotruntime.configfile") for v in found)
