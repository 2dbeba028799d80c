"""launcher.storage against the session's real SeaweedFS: what `launch submit` checks."""

from launcher.spec.models import StorageSpec
from launcher.storage import S3Storage


def test_exists_sees_objects_and_folders_of_objects_only(s3_store):
    storage = S3Storage(StorageSpec(uri=f"s3://{s3_store.bucket}/runs",
                                    endpoint_url=s3_store.endpoint))
    client, bucket = s3_store.client(), s3_store.bucket
    client.put_object(Bucket=bucket, Key="exists/data.jsonl", Body=b"{}\n")
    client.put_object(Bucket=bucket, Key="exists/saved/dataset_info.json", Body=b"{}")

    assert storage.exists(f"s3://{bucket}/exists/data.jsonl")  # an object
    assert storage.exists(f"s3://{bucket}/exists/saved")  # a save_to_disk folder
    assert storage.exists(f"s3://{bucket}/exists/saved/")
    assert not storage.exists(f"s3://{bucket}/exists/missing.jsonl")
    assert not storage.exists(f"s3://{bucket}/exists/data")  # a prefix of a name is no folder
