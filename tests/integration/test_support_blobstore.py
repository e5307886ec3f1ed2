"""The support service's blob stores: one contract, run against the filesystem store and the
S3 store (against moto's S3 server, started as a real process); the service keeping its
attachments in S3 end to end; and the sweep of uploads that were never attached."""

import base64
import hashlib
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from common.clock import Clock
from common.db import create_engine
from common.errors import ValidationFailed
from common.eventstore import utcnow
from deploy.components import migrate
from services.support.adapters import BlobNotFound
from services.support.adapters.factory import build_blob_store
from services.support.projections import schema
from services.support.service import SupportService
from services.support.usecases import SupportUseCases
from tests.support import ChildProcess, free_port, http_ok, wait_for

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
S3_KEYS = {"SUPPORT_S3_ACCESS_KEY": "testing", "SUPPORT_S3_SECRET_KEY": "testing"}


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory):
    port = free_port()
    process = ChildProcess("moto s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                           Path(tmp_path_factory.mktemp("moto")) / "moto.log")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: process.check_alive() or http_ok(f"{url}/moto-api/"), timeout=30, message="moto server")
    yield url
    process.terminate()
    process.stop()


def s3_config(url, bucket):
    return dict(S3_KEYS, SUPPORT_BLOB_BACKEND="s3", SUPPORT_S3_ENDPOINT=url, SUPPORT_S3_BUCKET=bucket,
                SUPPORT_S3_REGION="us-east-1", SUPPORT_S3_CREATE_BUCKET=True, SUPPORT_BLOB_TIMEOUT_SECONDS=5)


@pytest.fixture(params=["filesystem", "s3"])
def blobs(request, tmp_path):
    if request.param == "filesystem":
        config = {"SUPPORT_BLOB_DIR": str(tmp_path / "blobs")}
    else:
        config = s3_config(request.getfixturevalue("moto_s3"), f"support-{os.urandom(4).hex()}")
    observed = []
    store = build_blob_store(config, observe=lambda *args: observed.append(args))
    store.observed = observed
    return store


def test_a_blob_comes_back_byte_for_byte_and_goes_away(blobs):
    key, data = "a" * 32, os.urandom(300_000)
    blobs.put(key, data, "application/pdf")
    assert blobs.get(key) == data and blobs.size(key) == len(data)
    blobs.delete(key)
    assert blobs.size(key) is None
    with pytest.raises(BlobNotFound):
        blobs.get(key)
    blobs.delete(key)  # deleting twice is harmless
    # a missing blob is an answer, not a failure of the store
    assert {(adapter, outcome) for adapter, _, outcome, _ in blobs.observed} == {("blobstore", "ok")}


def test_keys_are_generated_names_only(blobs):
    for key in ("../etc/passwd", "a" * 31, "A" * 32, "a" * 32 + "/x"):
        with pytest.raises(ValueError):
            blobs.put(key, b"x", "text/plain")


def test_old_keys_are_listed_for_the_sweep(blobs):
    blobs.put("b" * 32, b"one", "text/plain")
    blobs.put("c" * 32 + ".meta", b"{}", "application/json")
    assert set(blobs.keys_older_than(utcnow() + timedelta(minutes=1))) == {"b" * 32, "c" * 32 + ".meta"}
    assert list(blobs.keys_older_than(utcnow() - timedelta(minutes=1))) == []


def test_the_service_keeps_attachments_in_s3(start_service, amqp_uri, tmp_path, moto_s3):
    url = f"sqlite:///{tmp_path / 'support.db'}"
    migrate("support", create_engine(url))
    start_service(SupportService, DATABASE_URL=url, METRICS_PORT="off", **s3_config(moto_s3, "support-e2e"))
    data = PDF + os.urandom(2_000_000)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, context_data={"user_id": "ann"}, timeout=30) as cluster:
        upload = cluster.support.stage_attachment("r.pdf", "application/pdf", base64.b64encode(data).decode())
        ticket = cluster.support.open_ticket("S3", "Stored in a bucket.", uploads=[upload["upload_id"]])
        attachment = ticket["attachments"][0]
        got = cluster.support.read_attachment(ticket["id"], attachment["id"])
    assert hashlib.sha256(base64.b64decode(got["data_base64"])).digest() == hashlib.sha256(data).digest()
    s3 = build_blob_store(s3_config(moto_s3, "support-e2e"))
    assert s3.size(upload["upload_id"]) == len(data)
    assert s3.size(upload["upload_id"] + ".meta") is None  # the description goes once attached


def test_uploads_never_attached_are_swept_and_attached_ones_kept(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    migrate("support", engine)
    store = schema.create_store(engine)
    blobs = build_blob_store({"SUPPORT_BLOB_DIR": str(tmp_path / "blobs")})
    support = SupportUseCases(store, blobs, Clock(), {})
    kept = support.stage_upload("ann", "kept.pdf", "application/pdf", base64.b64encode(PDF + b"1").decode())
    support.open_ticket("ann", "Files", "Attached.", uploads=[kept["upload_id"]])
    dropped = support.stage_upload("ann", "dropped.pdf", "application/pdf", base64.b64encode(PDF + b"2").decode())
    assert support.sweep_uploads() == 0  # nothing is old yet

    later = SupportUseCases(store, blobs, Clock(), {"SUPPORT_UPLOAD_TTL_SECONDS": 0.001})
    swept = []  # a sweep may find the file old before its description (mtimes): count them all

    def gone():
        swept.append(later.sweep_uploads())
        return blobs.size(dropped["upload_id"]) is None and blobs.size(dropped["upload_id"] + ".meta") is None

    wait_for(gone, message="the unattached upload and its description swept")
    assert sum(swept) == 2
    assert blobs.size(kept["upload_id"]) == len(PDF) + 1
    assert blobs.size(dropped["upload_id"]) is None and blobs.size(dropped["upload_id"] + ".meta") is None
    with pytest.raises(ValidationFailed) as refused:
        support.open_ticket("ann", "Late", "Too late.", uploads=[dropped["upload_id"]])
    assert "attachments" in refused.value.fields
