"""jobs.checkpoint_upload against the session's real SeaweedFS: a checkpoint arrives whole, and
only the thread that uploads it gives up CPU priority, never the training thread beside it."""

import os
import threading

from jobs.checkpoint_upload import LOWEST_PRIORITY, copy_at_low_priority
from jobs.storage import s3_filesystem


def test_a_checkpoint_lands_whole_from_a_thread_at_the_lowest_priority(s3_store, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_store.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("LAUNCH_S3_PATH_STYLE", "true")
    checkpoint = tmp_path / "checkpoint"
    files = {"model.safetensors": os.urandom(12 * 2**20 + 5),  # more than one multipart part
             "global_step4/zero_pp_rank_0_mp_rank_00_optim_states.pt": os.urandom(3 * 2**20),
             "trainer_state.json": b'{"global_step": 4}'}
    for name, data in files.items():
        (checkpoint / name).parent.mkdir(parents=True, exist_ok=True)
        (checkpoint / name).write_bytes(data)
    destination = f"{s3_store.bucket}/upload/checkpoint_000001/checkpoint"
    niceness: dict[str, int] = {}

    def upload() -> None:  # as Ray's upload thread runs it
        copy_at_low_priority(str(checkpoint), destination, s3_filesystem())
        niceness["upload"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=upload)
    thread.start()
    thread.join(timeout=120)

    assert niceness["upload"] == LOWEST_PRIORITY
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
    client = s3_store.client()
    for name, data in files.items():
        stored = client.get_object(Bucket=s3_store.bucket,
                                   Key=f"upload/checkpoint_000001/checkpoint/{name}")
        assert stored["Body"].read() == data, name
