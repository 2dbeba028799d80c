"""Checkpoint uploads that leave the CPUs to training.

Ray Train's asynchronous mode uploads a reported checkpoint in a thread of the training worker
at the training's own priority, and pyarrow sends S3 writes from its I/O threads. Where training
keeps every core busy, that upload slowed its steps 1.3× (store on other CPUs) to 9× (store on
the training's CPUs; bench/checkpoint_transfer.py). Here every byte goes out through the upload
thread itself, niced to the lowest priority (Linux gives each thread its own nice value), so
training keeps the CPUs it uses and the upload takes what is left: steps ran 1.00× and 0.99×.
The price: on a busy machine the upload lasts longer (about 20 s instead of 3 s for 256 MB
there); Ray still registers checkpoints in order and waits for the last one before the run ends.
"""

from __future__ import annotations

import os
import threading

import pyarrow.fs

from jobs.storage import PatientS3FileSystem

LOWEST_PRIORITY = 19
CHUNK_BYTES = 64 * 2**20  # Ray's chunk size for checkpoint copies


def copy_at_low_priority(source: str, destination: str,
                         filesystem: pyarrow.fs.FileSystem) -> None:
    """Copy the local folder `source` to `destination` on `filesystem` from this thread, which
    stays at the lowest CPU priority: call it only from a thread that does nothing else.

    One file after another, one stream: parallel streams (4 files at once, also niced) won
    ~10% of idle throughput and slowed training steps 1.38× during the upload, against 1.05×
    (bench/checkpoint_transfer.py, the store on the training's CPUs)."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    if isinstance(filesystem, PatientS3FileSystem):
        filesystem = PatientS3FileSystem(**{**filesystem.settings, "background_writes": False})
    filesystem.create_dir(destination, recursive=True)
    pyarrow.fs.copy_files(source, destination, destination_filesystem=filesystem,
                          use_threads=False, chunk_size=CHUNK_BYTES)


def upload_checkpoint(checkpoint, checkpoint_dir_name: str):
    """`checkpoint_upload_fn` for ray.train.report in asynchronous mode: the checkpoint copied
    where Ray Train's own upload puts it, in the run's storage."""
    import ray.train

    storage = ray.train.get_context().get_storage()
    destination = storage.build_checkpoint_path_from_name(checkpoint_dir_name)
    copy_at_low_priority(checkpoint.path, destination, storage.storage_filesystem)
    return ray.train.Checkpoint(filesystem=storage.storage_filesystem, path=destination)
