"""Session fixtures for the image tests: a real registry and real buildah/podman.

No image can be pulled from the internet here, so the base image is a Debian rootfs made with
debootstrap (Python in a venv at /opt/venv, like the Ray images' own Python on PATH), cached
in LAUNCH_TEST_CACHE between runs on one machine. The base and the first build start in the
background as the session starts (image_build), and the image tests run last. Everything in
this file is plumbing for this machine (pip's local wheel mirror, vfs storage, chroot
isolation, runc): none of it is in the Dockerfile users get.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import psutil
import pytest
import yaml

from tests.support.ports import free_port
from tests.support.project import EXAMPLES, LAUNCH, ROOT

CACHE = Path(os.environ.get("LAUNCH_TEST_CACHE", "~/.cache/launch-tests")).expanduser()
# Python and a C++ compiler, as in the Ray images: DeepSpeed JIT-builds its CPU ops.
BASE_IMAGE = "localhost/launch-test-base:bookworm-gxx"
# The tests that need the job image: they run last, when the build is done.
IMAGE_TESTS = ("test_image.py", "test_remote_cluster.py")
TOOLS = ("buildah", "podman", "docker-registry", "debootstrap", "runc")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The background build runs at the lowest priority that still makes progress on a busy
# machine: SCHED_BATCH at nice 19. Beside Ray's workers (nice 15) it gets about a third of a core,
# and all of what the training runs leave idle. At SCHED_IDLE it got nothing on a CI machine
# whose suite kept both cores busy, and all of it (about 6 minutes, much of it on one core) was
# left to run alone at the end.
LOW_PRIORITY = ["nice", "-n", "19", "chrt", "--batch", "0"]
# When the image tests need the build, what is left of it goes on at normal priority.
BUILD_WAIT_S = 1500
BUILDS: list[subprocess.Popen] = []  # the background `launch build`, killed if it overruns
# This machine's pip mirror (wheels on disk + pip's config), mounted into RUN steps as is.
PIP_PLUMBING = ("/root/.config/pip", "/etc/pip.conf", "/etc/xdg/pip", "/opt/wheels",
                "/opt/pypi", "/opt/pypi-more", "/etc/ssl/certs/ca-certificates.crt")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """Debian's docker-registry on 127.0.0.1 (own config), stopped by PID at the end."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (scripts/test.sh installs it with apt)")
    folder = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = folder / "config.yml"
    config.write_text(f"version: 0.1\nlog: {{level: warn}}\n"
                      f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}, "
                      f"delete: {{enabled: true}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n")
    log = (folder / "registry.log").open("w")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    host = f"127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=2).close()
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                log = (folder / "registry.log").read_text()
                pytest.fail(f"docker-registry did not start: {log}")
            time.sleep(0.2)
    yield host
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture(scope="session")
def container_env():
    """buildah/podman settings for this machine, exported for the session."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"container tier skipped: {', '.join(missing)} not installed "
                    "(scripts/test.sh installs them with apt when it runs as root)")
    storage = CACHE / "containers"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=32768:32768"]\n'
        'netns = "none"\n[engine]\nruntime = "runc"\n')
    volumes = [f"--volume={path}:{path}:ro" for path in PIP_PLUMBING if Path(path).exists()]
    flags = ["--network=host", "--build-arg", "TORCH_INDEX_URL=", *volumes]
    env = {"CONTAINERS_STORAGE_CONF": str(_storage_conf(storage)),
           "CONTAINERS_CONF": str(storage / "containers.conf"),
           "BUILDAH_ISOLATION": "chroot", "LAUNCH_BUILD_FLAGS": shlex.join(flags)}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _storage_conf(folder: Path) -> Path:
    """Overlay storage where the kernel mounts it (fast), else vfs (a full copy per layer)."""
    for driver in ("overlay", "vfs"):
        conf = folder / f"storage-{driver}.conf"
        conf.write_text(f'[storage]\ndriver = "{driver}"\ngraphroot = "{folder / driver}"\n'
                        f'runroot = "{folder / driver}-run"\n')
        env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}
        made = subprocess.run(["buildah", "from", "scratch"], env=env, capture_output=True,
                              text=True)
        if made.returncode == 0:
            container = made.stdout.strip()
            mounted = subprocess.run(["buildah", "mount", container], env=env,
                                     capture_output=True)
            subprocess.run(["buildah", "rm", container], env=env, capture_output=True)
            if mounted.returncode == 0:
                return conf
    pytest.fail("neither overlay nor vfs container storage works here")


def ensure_base_image() -> str:
    """A Debian bookworm image with Python 3.11 in /opt/venv and g++, built once and cached."""
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode == 0:
        return BASE_IMAGE
    rootfs = CACHE / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    subprocess.run([*LOW_PRIORITY, "debootstrap", "--variant=minbase",
                    "--include=python3,python3-venv,python3-dev,g++,ca-certificates",
                    "bookworm", str(rootfs),
                    DEBIAN_MIRROR], check=True, capture_output=True)
    subprocess.run([*LOW_PRIORITY, "chroot", str(rootfs), "python3", "-m", "venv", "/opt/venv"],
                   check=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    path = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    subprocess.run([*LOW_PRIORITY, "podman", "import", "--change", f"ENV=PATH={path}", "-",
                    BASE_IMAGE],
                   stdin=tar.stdout, check=True, capture_output=True)
    assert tar.wait() == 0
    shutil.rmtree(rootfs)
    return BASE_IMAGE


def promote_low_priority_descendants() -> None:
    """Move every SCHED_BATCH thread of the processes under this one (the background build and
    all it started) to normal scheduling at nice 0."""
    for process in psutil.Process().children(recursive=True):
        # A process or thread that has ended meanwhile, or (not root) no right to it.
        with contextlib.suppress(psutil.Error, OSError):
            for thread in process.threads():
                if os.sched_getscheduler(thread.id) == os.SCHED_BATCH:
                    os.sched_setscheduler(thread.id, os.SCHED_OTHER, os.sched_param(0))
                    os.setpriority(os.PRIO_PROCESS, thread.id, 0)


def image_tests_selected(session) -> bool:
    return any(Path(str(item.path)).name in IMAGE_TESTS for item in session.items)


def pytest_collection_modifyitems(items):
    """The image tests run last: their set-up has the whole session to build in the
    background (image_build) while the training tests run."""
    items.sort(key=lambda item: Path(str(item.path)).name in IMAGE_TESTS)


@pytest.fixture(scope="session")
def image_job(tmp_path_factory, registry, container_env, tiny_model):
    """A job folder (data inside it, the model outside it) whose image builds on the test base."""
    folder = tmp_path_factory.mktemp("image-job")
    (folder / "data").mkdir()
    shutil.copy(EXAMPLES / "data" / "debian_describe.jsonl", folder / "data" / "train.jsonl")
    job = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    job.update(name="imagejob", model={"name_or_path": str(tiny_model)},
               image={"repository": f"{registry}/launch/imagejob", "base": BASE_IMAGE})
    job["data"]["path"] = "data/train.jsonl"
    job["storage"] = {"uri": str(folder / "runs")}
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


@pytest.fixture(scope="session", autouse=True)
def image_build(request):
    """The image tier's slow part, started in a thread as the session starts: the Debian base
    (debootstrap), then `launch build --builder docker` of image_job (buildah installs the
    training stack into the runtime stage: minutes of downloads), at low CPU priority. Its
    network and disk waits, and its CPU, fill the training tests' idle time; the image tests,
    run last, wait for it at normal priority (`built`)."""
    if not image_tests_selected(request.session) or missing_tools():
        yield None  # the image tests' own fixtures skip, saying why
        return
    try:
        job = request.getfixturevalue("image_job")
    except BaseException as outcome:  # a skip or a failed set-up: the image tests report it
        yield outcome
        return
    # The environment as it is now: tests change os.environ while the thread runs.
    env = dict(os.environ)

    def build() -> subprocess.CompletedProcess:
        ensure_base_image()
        command = [*LOW_PRIORITY, *LAUNCH, "build", str(job), "--builder", "docker"]
        with subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              start_new_session=True) as process:
            BUILDS.append(process)
            stdout, stderr = process.communicate()
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(build)


@pytest.fixture(scope="session")
def built(image_build, registry):
    """The docker (buildah) build: runtime stage with the training stack, then the job image.
    What is left of it runs at normal priority from here. At the end the session's tags are
    removed and their images stay as the build cache: the next session on this machine builds
    its runtime stage from it in seconds. (`podman rmi` deleted the GBs of the runtime stage:
    half a minute at the end of every session, and the next one built it again.)"""
    if image_build is None:
        pytest.skip(f"container tier skipped: {', '.join(missing_tools())} not installed "
                    "(scripts/test.sh installs them with apt when it runs as root)")
    if isinstance(image_build, BaseException):
        raise image_build
    deadline = time.time() + BUILD_WAIT_S
    while not image_build.done():
        promote_low_priority_descendants()
        if time.time() > deadline:
            for process in BUILDS:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"the image build did not end within {BUILD_WAIT_S} s of the image "
                        "tests asking for it")
        wait([image_build], timeout=5)
    result = image_build.result()
    assert result.returncode == 0, result.stderr[-3000:]
    yield result.stdout.strip().splitlines()[-1]
    listed = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True)
    ours = [ref for ref in listed.stdout.split() if ref.startswith(f"{registry}/")]
    for ref in ours:  # `podman untag IMAGE NAME...` would read the rest as names of the first
        subprocess.run(["podman", "untag", ref], capture_output=True)
