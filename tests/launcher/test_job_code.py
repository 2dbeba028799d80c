"""The package a Ray cluster gets the job's code in: importable as Ray's workers import it, and
named by its content, so an unchanged launcher uploads nothing new."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

from launcher import job_code
from launcher.settings import JOB_PACKAGES


def test_the_package_is_the_code_the_job_imports(tmp_path):
    """Unpacked and put first on the path, as runtime_env py_modules does on every worker, it
    is what `python -m jobs.run` imports: this launcher's jobs and launcher packages."""
    name, data = job_code.ray_package()
    package = tmp_path / "package.zip"
    package.write_bytes(data)
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "unpacked")
    assert "jobs/run.py" in names and "launcher/spec/models.py" in names
    assert not [n for n in names if not n.endswith(".py")]  # no bytecode, no stray files
    found = subprocess.run(
        [sys.executable, "-c", "import jobs.run, launcher.contract as c; print(c.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "unpacked")})
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(tmp_path / "unpacked" / "launcher" / "contract.py")


def test_the_name_changes_with_the_code_and_only_with_it(tmp_path, monkeypatch):
    copies = []
    for package in JOB_PACKAGES:
        copies.append(tmp_path / package.name)
        shutil.copytree(package, copies[-1], ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(job_code, "JOB_PACKAGES", copies)
    name, data = job_code.ray_package()
    assert name.startswith("_ray_pkg_") and name.endswith(".zip")

    for path in tmp_path.rglob("*.py"):  # a checkout or a copy: new times, same code
        os.utime(path, (1e9, 1e9))
    (tmp_path / "jobs" / "__pycache__").mkdir()
    (tmp_path / "jobs" / "__pycache__" / "run.cpython-311.pyc").write_bytes(b"bytecode")
    assert job_code.ray_package() == (name, data)

    run = tmp_path / "jobs" / "run.py"
    run.write_text(run.read_text() + "\n# one more line\n")
    assert job_code.ray_package()[0] != name
