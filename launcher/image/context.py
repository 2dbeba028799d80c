"""The job's code layer: what goes into /opt/launch, and its deterministic tar.

The layer holds the `jobs` and `launcher` packages, the files the spec names (data, a local
model folder, image.files) and the spec itself, rewritten to the paths those files have inside
the image. The tar is sorted with fixed mtimes, owners and modes, so the same inputs always
give the same bytes, and hence the same digest and the same image tag.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from launcher import job_code
from launcher.errors import LaunchError
from launcher.image.ignore import IgnoreRules
from launcher.spec.models import JobSpec

CODE_ROOT = "/opt/launch"
SPEC_IN_IMAGE = f"{CODE_ROOT}/job/spec.json"
MiB = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One file of the layer: `name` is its path under CODE_ROOT."""

    name: str
    source: Path | None = None
    data: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.source.stat().st_size

    def read(self) -> bytes:
        return self.data if self.data is not None else self.source.read_bytes()

    @property
    def executable(self) -> bool:
        return self.source is not None and bool(self.source.stat().st_mode & 0o111)


@dataclass
class CodeLayer:
    entries: list[Entry]
    spec: JobSpec  # as the job sees it inside the image

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.entries)


@dataclass(frozen=True)
class LayerBlob:
    path: Path  # the gzipped tar
    digest: str  # sha256 of the gzipped tar: the blob's name in a registry
    diff_id: str  # sha256 of the tar itself: the layer's name in the image config
    size: int


def code_layer(spec: JobSpec, job_dir: Path) -> CodeLayer:
    """Collect the layer's files and rewrite the spec's local paths to their image paths."""
    rules = IgnoreRules.for_folder(job_dir)
    files: dict[str, Entry] = {}

    def add(source: Path) -> str:
        target = _image_path(source, job_dir)
        if source.is_dir():
            root = job_dir if _inside(source, job_dir) else source  # what the rules see
            for path in sorted(source.rglob("*")):
                if path.is_file() and not rules.ignored(path.relative_to(root).as_posix()):
                    name = f"{target}/{path.relative_to(source).as_posix()}"
                    files[name] = Entry(name, source=path)
        else:
            files[target] = Entry(target, source=source)
        return f"{CODE_ROOT}/{target}"

    for relative, path in job_code.files():
        if not rules.ignored(relative):
            files[relative] = Entry(relative, source=path)

    updates: dict = {}
    if spec.data.location == "local":  # a file or save_to_disk folder; s3:// and hub data stay
        updates["data"] = spec.data.model_copy(update={"path": add(Path(spec.data.path))})
    model = Path(spec.model.name_or_path)
    if model.is_absolute():  # a local folder (the spec loader resolved it); hub ids stay
        updates["model"] = spec.model.model_copy(update={"name_or_path": add(model)})
    if spec.image is not None:
        extra = [add(Path(name)) for name in spec.image.files]
        updates["image"] = spec.image.model_copy(update={"files": extra})
    image_spec = spec.model_copy(update=updates)
    spec_name = SPEC_IN_IMAGE.removeprefix(f"{CODE_ROOT}/")
    files[spec_name] = Entry(spec_name, data=image_spec.model_dump_json(indent=2).encode())
    layer = CodeLayer(entries=[files[name] for name in sorted(files)], spec=image_spec)
    _check_size(layer, spec.image.max_context_mb if spec.image else None)
    return layer


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _image_path(source: Path, job_dir: Path) -> str:
    """Where a local file goes under CODE_ROOT: its place relative to the job file's folder,
    or, for files outside it, a folder named by a hash of where it came from."""
    if _inside(source, job_dir) and source != job_dir:
        return f"job/{source.relative_to(job_dir).as_posix()}"
    origin = hashlib.sha256(str(source.parent).encode()).hexdigest()[:8]
    return f"job/external/{origin}/{source.name}"


def _check_size(layer: CodeLayer, limit_mb: int | None) -> None:
    if limit_mb is None or layer.size <= limit_mb * MiB:
        return
    biggest = sorted(layer.entries, key=lambda e: e.size, reverse=True)[:5]
    listing = ", ".join(f"{e.name} ({e.size / MiB:.0f} MiB)" for e in biggest)
    raise LaunchError(f"the image's code layer would be {layer.size / MiB:.0f} MiB, over "
                      f"image.max_context_mb ({limit_mb}); biggest: {listing}. Exclude files "
                      "with a .launchignore, or keep large data in s3://")


def write_tar(layer: CodeLayer, out: BinaryIO) -> None:
    """The layer as a tar rooted at /: sorted, mtime 0, owner root, modes 0644/0755."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for folder in _folders(layer):
            tar.addfile(_info(folder, tarfile.DIRTYPE, 0o755, 0))
        for entry in layer.entries:
            data = entry.read()
            mode = 0o755 if entry.executable else 0o644
            tar.addfile(_info(_in_root(entry.name), tarfile.REGTYPE, mode, len(data)),
                        io.BytesIO(data))


def _in_root(name: str) -> str:
    return f"{CODE_ROOT.lstrip('/')}/{name}"


def _folders(layer: CodeLayer) -> list[str]:
    folders = set()
    for entry in layer.entries:
        parts = _in_root(entry.name).split("/")[:-1]
        folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(folders)


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_layer_blob(layer: CodeLayer, folder: Path) -> LayerBlob:
    """Gzip the layer's tar into `folder`, hashing both forms on the way."""
    path = folder / "code-layer.tar.gz"
    tar_hash, gz_hash = hashlib.sha256(), hashlib.sha256()
    with path.open("wb") as raw:
        gz_out = _HashingWriter(raw, gz_hash)
        # mtime=0 and no file name keep the gzip header, and so the digest, reproducible.
        with gzip.GzipFile(filename="", mode="wb", fileobj=gz_out, mtime=0) as gz:
            write_tar(layer, _HashingWriter(gz, tar_hash))
    return LayerBlob(path=path, digest=f"sha256:{gz_hash.hexdigest()}",
                     diff_id=f"sha256:{tar_hash.hexdigest()}", size=path.stat().st_size)


class _HashingWriter(io.RawIOBase):
    def __init__(self, target, digest):
        self.target, self.digest = target, digest

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        self.target.write(data)
        return len(data)
