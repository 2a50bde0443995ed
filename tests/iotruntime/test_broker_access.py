"""The ACL lines every broker listener is given: a box writes its own channels and reads
only its own commands and confirmations; only collectors write commands and
confirmations. (Enforced by a real Mosquitto: tests/system/test_broker_settings.py.)"""

from iotruntime.broker_access import certificate_username, collector_acl, device_acl


def test_a_box_reads_its_own_confirmations_and_writes_none():
    base = "pq/v1/dd/air-dd-01"
    assert device_acl("pq", "dd", "air-dd-01", plates=False) == [
        "user air-dd-01",
        f"topic write {base}/telemetry",
        f"topic write {base}/health",
        f"topic write {base}/batch",
        f"topic write {base}/status",
        f"topic readwrite {base}/cmd_ack",
        f"topic read {base}/cmd/+",
        f"topic read {base}/committed",
    ]


def test_a_camera_pole_with_a_certificate_also_writes_plate_reads():
    username = certificate_username("cam-dd-07")
    acl = device_acl("pq", "dd", "cam-dd-07", plates=True, username=username)
    assert acl[0] == "user CN=cam-dd-07"
    assert [line for line in acl if "committed" in line or "plate" in line] == [
        "topic write pq/v1/dd/cam-dd-07/plate",
        "topic read pq/v1/dd/cam-dd-07/committed",
    ]


def test_a_collector_writes_every_boxs_confirmations():
    assert collector_acl("pq", "col-a") == [
        "user col-a",
        "topic read pq/v1/+/+/#",
        "topic write pq/v1/+/+/cmd/+",
        "topic write pq/v1/+/+/committed",
        "topic readwrite pq/v1/alerts/#",
        "topic readwrite pq/v1/dispatch/#",
        "topic readwrite pq/v1/alarms/#",
    ]
