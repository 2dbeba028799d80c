"""`target.kind: kubernetes` in job files: what it needs, and one located line per mistake."""

from __future__ import annotations

import pytest

from tests.support.located import assert_one_located_line
from tests.support.project import EXAMPLES

DATA = EXAMPLES / "data" / "debian_describe.jsonl"
BASE = f"""\
name: kube-test
model:
  name_or_path: gpt2
data:
  path: {DATA}
"""
IMAGE = "image:\n  repository: 127.0.0.1:5000/launch/kube-test\n"
S3 = "storage:\n  uri: s3://bucket/runs\n"
KUBE = "target:\n  kind: kubernetes\n"

CASES = [
    ("needs-an-image", BASE + S3 + KUBE, "kind: kubernetes", "add an `image` section"),
    ("needs-s3-storage", BASE + IMAGE + "storage:\n  uri: ./runs\n" + KUBE, "uri: ./runs",
     "needs storage.uri on s3://"),
    ("settings-only-with-kubernetes", BASE + "target:\n  kubernetes:\n    namespace: x\n",
     "kubernetes:", "`kubernetes` belongs to kind kubernetes"),
    ("namespace-is-a-dns-label", BASE + IMAGE + S3 + KUBE + "  kubernetes:\n    namespace: My_NS\n",
     "namespace: My_NS", "should match pattern"),
    ("memory-is-a-quantity", BASE + IMAGE + S3 + KUBE + "  kubernetes:\n    worker_memory: 4GB\n",
     "worker_memory", "should match pattern"),
    ("unknown-kubernetes-key", BASE + IMAGE + S3 + KUBE + "  kubernetes:\n    namespce: x\n",
     "namespce", "did you mean `namespace`"),
    ("exists-toleration-takes-no-value", BASE + IMAGE + S3 + KUBE + "  kubernetes:\n"
     "    tolerations:\n      - operator: Exists\n        value: a\n", "- operator: Exists",
     "operator Exists takes no value"),
    ("credentials-never-in-the-spec", BASE + IMAGE + S3 + KUBE + "  kubernetes:\n"
     "    aws_secret_access_key: abc\n", "aws_secret_access_key", "unknown key"),
]


@pytest.mark.parametrize("text,needle,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_kubernetes_mistakes_are_located(tmp_path, cli, text, needle, words):
    assert_one_located_line(cli, tmp_path / "job.yaml", text, needle, words)


def test_a_kubernetes_job_with_image_and_s3_is_valid(tmp_path, cli):
    job = tmp_path / "job.yaml"
    job.write_text(BASE + IMAGE + S3 + KUBE + "  kubernetes:\n    namespace: ml\n"
                   "    tolerations:\n      - key: nvidia.com/gpu\n        operator: Exists\n")
    result = cli("validate", job)
    assert result.returncode == 0, result.stderr
