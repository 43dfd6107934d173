"""Reading OCI image archives (what `buildah push oci-archive:` writes) without a container
engine: the image's config, the paths its layers hold and their unpacked size, and a root
filesystem unpacked from the layers in order, whiteouts applied."""

import json
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass
class Image:
    reference: str
    config: dict[str, Any]
    layers: list[str]
    paths: set[str] = field(default_factory=set)
    unpacked_bytes: int = 0

    @property
    def runtime(self) -> dict[str, Any]:
        found = self.config.get("config") or {}
        assert isinstance(found, dict)
        return found


def _blob(archive: tarfile.TarFile, digest: str) -> IO[bytes]:
    algorithm, _, hexdigest = digest.partition(":")
    member = archive.extractfile(f"blobs/{algorithm}/{hexdigest}")
    assert member is not None, f"{digest}: not in the archive"
    return member


def _json_blob(archive: tarfile.TarFile, digest: str) -> dict[str, Any]:
    loaded = json.load(_blob(archive, digest))
    assert isinstance(loaded, dict)
    return loaded


def _manifest(archive: tarfile.TarFile) -> tuple[dict[str, Any], dict[str, Any]]:
    """The archive's one manifest descriptor (from index.json) and the manifest itself."""
    index = archive.extractfile("index.json")
    assert index is not None, "no index.json: not an OCI archive"
    (descriptor,) = json.load(index)["manifests"]
    assert isinstance(descriptor, dict)
    return descriptor, _json_blob(archive, descriptor["digest"])


def _normal(name: str) -> str:
    return str(PurePosixPath("/", name))[1:]


def read(path: Path) -> Image:
    """The image in an OCI archive, with every path its layers add (whiteouts applied)."""
    with tarfile.open(path) as archive:
        descriptor, manifest = _manifest(archive)
        reference = descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
        image = Image(
            reference=reference,
            config=_json_blob(archive, manifest["config"]["digest"]),
            layers=[layer["digest"] for layer in manifest["layers"]],
        )
        sizes: dict[str, int] = {}
        for digest in image.layers:
            with tarfile.open(fileobj=_blob(archive, digest), mode="r|*") as layer:
                for member in layer:
                    name = _normal(member.name)
                    parent, _, base = name.rpartition("/")
                    if base == OPAQUE:
                        prefix = f"{parent}/"
                        for gone in [p for p in sizes if p.startswith(prefix)]:
                            del sizes[gone]
                    elif base.startswith(WHITEOUT):
                        gone = f"{parent}/{base[len(WHITEOUT) :]}".lstrip("/")
                        for p in [p for p in sizes if p == gone or p.startswith(f"{gone}/")]:
                            del sizes[p]
                    else:
                        sizes[name] = member.size if member.isfile() else 0
        image.paths = set(sizes)
        image.unpacked_bytes = sum(sizes.values())
    return image


def unpack(path: Path, rootfs: Path) -> None:
    """The image's root filesystem in ``rootfs``: its layers extracted in order, whiteouts
    applied, device files left out (the runtime provides /dev). Ownership is kept when root."""
    rootfs.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path) as archive:
        _, manifest = _manifest(archive)
        for descriptor in manifest["layers"]:
            with tarfile.open(fileobj=_blob(archive, descriptor["digest"]), mode="r|*") as layer:
                for member in layer:
                    name = _normal(member.name)
                    parent, _, base = name.rpartition("/")
                    target = rootfs / name
                    if base == OPAQUE:
                        for child in (rootfs / parent).iterdir():
                            _remove(child)
                    elif base.startswith(WHITEOUT):
                        _remove(rootfs / parent / base[len(WHITEOUT) :])
                    elif member.ischr() or member.isblk() or member.isfifo():
                        continue
                    else:
                        inside = (rootfs / parent).resolve()
                        assert inside.is_relative_to(rootfs.resolve()), f"{name} leaves the root"
                        if target.is_symlink() or (target.exists() and not target.is_dir()):
                            target.unlink()
                        member.name = name
                        layer.extract(member, rootfs, set_attrs=True, filter="fully_trusted")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
