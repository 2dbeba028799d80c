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


def test_only_a_cluster_sharing_this_machine_gets_its_credentials(s3_store, launch_home):
    """The job's S3 environment: the store's address for every cluster; this machine's
    credentials, as a 0600 file, only for one that can open a file here. A cluster elsewhere
    would look for a file that is not there, so it uses its nodes' own credentials."""
    import configparser
    from pathlib import Path

    from launcher.storage import job_environment

    settings = StorageSpec(uri=f"s3://{s3_store.bucket}/runs", endpoint_url=s3_store.endpoint)
    storage = S3Storage(settings)
    elsewhere = job_environment(settings, storage, shares_this_machine=False)
    here = job_environment(settings, storage, shares_this_machine=True)
    assert elsewhere["AWS_ENDPOINT_URL"] == here["AWS_ENDPOINT_URL"] == s3_store.endpoint
    assert not {"AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE"} & set(elsewhere)
    assert s3_store.secret_key not in str(elsewhere) + str(here)
    file = Path(here["AWS_SHARED_CREDENTIALS_FILE"])
    assert file.is_relative_to(launch_home) and file.stat().st_mode & 0o777 == 0o600
    profile = configparser.ConfigParser()
    profile.read(file)
    assert profile[here["AWS_PROFILE"]]["aws_secret_access_key"] == s3_store.secret_key
