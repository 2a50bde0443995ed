"""The part of InfluxDB 2.x's HTTP API the store's v2 mode uses (buckets, DBRP mappings,
/api/v2/write, InfluxQL on /query), as an in-process server: no InfluxDB 2.x server is
packaged for this machine, and the tests must still show what the store asks of one.

It answers with the JSON shapes InfluxDB 2.x documents and influxdb-client parses, checks
the token like the real server (401 without it), refuses InfluxQL on a database no DBRP
mapping names, and keeps what it is given for the test to read. It stores no points, so
every InfluxQL statement it accepts answers with no series."""

import json
from urllib.parse import parse_qs, urlsplit

from testbed.local_http import LocalHttpServer, QuietHandler

ORG_ID = "0f00000000000001"


class InfluxDB2Api(LocalHttpServer):
    def __init__(self, token: str, org: str, buckets: list[str]) -> None:
        self.token, self.org = token, org
        self.buckets = {name: f"b{i:015d}" for i, name in enumerate(buckets, 1)}
        self.dbrps: list[dict[str, object]] = []
        self.writes: list[tuple[dict[str, str], bytes]] = []
        self.queries: list[str] = []
        api = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/api/v2/buckets":
                    found: list[dict[str, object]] = [
                        {"id": bucket_id, "name": name, "orgID": ORG_ID, "retentionRules": []}
                        for name, bucket_id in api.buckets.items()
                        if query.get("name") in (None, name) and query.get("org") == api.org
                    ]
                    self._answer(200, {"buckets": found})
                elif url.path == "/api/v2/dbrps":
                    keys = {"db": "database", "rp": "retention_policy"}
                    found = [
                        d
                        for d in api.dbrps
                        if query.get("org") == api.org
                        and all(d[field] == query[k] for k, field in keys.items() if k in query)
                    ]
                    self._answer(200, {"content": found})
                else:
                    self._answer(404, {"code": "not found", "message": url.path})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self._authorised():
                    return
                url = urlsplit(self.path)
                if url.path == "/api/v2/dbrps":
                    asked = json.loads(body)
                    if asked.get("org") != api.org or asked["bucketID"] not in api.buckets.values():
                        self._answer(404, {"code": "not found", "message": "bucket or org"})
                        return
                    mapping = {
                        "id": f"d{len(api.dbrps) + 1:015d}",
                        "orgID": ORG_ID,
                        "bucketID": asked["bucketID"],
                        "database": asked["database"],
                        "retention_policy": asked["retention_policy"],
                        "default": asked["default"],
                        "virtual": False,
                    }
                    api.dbrps.append(mapping)
                    self._answer(201, mapping)
                elif url.path == "/query":
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    statements = form["q"].split(";")
                    if not any(d["database"] == form.get("db") for d in api.dbrps):
                        error = f"database not found: {form.get('db')}"
                        self._answer(200, {"results": [{"statement_id": 0, "error": error}]})
                        return
                    api.queries.append(form["q"])
                    self._answer(
                        200, {"results": [{"statement_id": i} for i, _ in enumerate(statements)]}
                    )
                elif url.path == "/api/v2/write":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    api.writes.append((query, body))
                    self.answer(204)
                else:
                    self._answer(404, {"code": "not found", "message": url.path})

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Token {api.token}":
                    return True
                self._answer(401, {"code": "unauthorized", "message": "unauthorized access"})
                return False

            def _answer(self, status: int, document: dict[str, object]) -> None:
                self.answer(status, json.dumps(document).encode())

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}"
