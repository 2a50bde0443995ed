"""/releases/NAME serves the shelf's bundles to boxes without a token (a box trusts the
signed digest, not the server), and nothing else: no listing, nothing outside the shelf."""

from collector.api.app import build_app
from collector.api.users import Role, Users
from collector.config import ApiSettings, CollectorConfig, RegistrySettings
from collector.fleet.releases import releases_folder
from collector.stores.sqlite import SqliteStore
from tests.collector.api.test_wall_languages import Wall


def test_a_bundle_is_served_to_anyone_and_nothing_beside_it(tmp_path):
    registry = tmp_path / "center" / "devices.sqlite"
    shelf = releases_folder(registry)
    shelf.mkdir(parents=True)
    (shelf / "edge-bundle-0.2.0.tar.gz").write_bytes(b"wheels")
    registry.write_bytes(b"the registry")
    users = Users(tmp_path / "users.sqlite")
    users.add("anna", Role.OPS)
    settings = CollectorConfig(
        api=ApiSettings(users_path=tmp_path / "users.sqlite"),
        registry=RegistrySettings(path=registry),
    )
    app = build_app(SqliteStore(tmp_path / "store.sqlite"), users, settings)
    box = Wall(app, "")
    served = box.get("/releases/edge-bundle-0.2.0.tar.gz", token=False)
    assert (served.status, served.text) == (200, "wheels")
    for elsewhere in ("/releases/", "/releases/../devices.sqlite", "/releases/missing.tar.gz"):
        assert box.get(elsewhere, token=False).status == 404, elsewhere
    assert box.get("/devices", token=False).status == 401
