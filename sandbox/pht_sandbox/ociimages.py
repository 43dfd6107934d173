"""OCI image archives (what ``buildah push oci-archive:`` writes), without a container engine.

Reads an archive's config and the paths its layers hold, unpacks its root filesystem (layers
in order, whiteouts applied), keeps one unpacked copy per manifest digest in a cache that every
container of that image shares read-only, and writes a new archive from an existing one plus a
layer of extra files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

WHITEOUT: Final = ".wh."
OPAQUE: Final = ".wh..wh..opq"
REFERENCE_ANNOTATION: Final = "org.opencontainers.image.ref.name"
MANIFEST_TYPE: Final = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE: Final = "application/vnd.oci.image.layer.v1.tar"


class ImageError(ValueError):
    """An archive that is not a readable single-image OCI archive."""


@dataclass
class Image:
    reference: str
    config: dict[str, Any]
    layers: list[str]
    #: The manifest's digest: names this image's content.
    digest: str = ""
    paths: set[str] = field(default_factory=set)
    unpacked_bytes: int = 0

    @property
    def runtime(self) -> dict[str, Any]:
        """The image's run settings (``User``, ``Entrypoint``, ``Cmd``, ``Env``, ...)."""
        found = self.config.get("config") or {}
        if not isinstance(found, dict):
            raise ImageError("the image config's 'config' is not an object")
        return found


def _blob(archive: tarfile.TarFile, digest: str) -> IO[bytes]:
    algorithm, _, hexdigest = digest.partition(":")
    try:
        member = archive.extractfile(f"blobs/{algorithm}/{hexdigest}")
    except KeyError:
        member = None
    if member is None:
        raise ImageError(f"{digest}: not in the archive")
    return member


def _json_blob(archive: tarfile.TarFile, digest: str) -> dict[str, Any]:
    loaded = json.load(_blob(archive, digest))
    if not isinstance(loaded, dict):
        raise ImageError(f"{digest}: not a JSON object")
    return loaded


def _descriptor(archive: tarfile.TarFile) -> dict[str, Any]:
    """The archive's one manifest descriptor, from its index.json."""
    try:
        index = archive.extractfile("index.json")
    except KeyError:
        index = None
    if index is None:
        raise ImageError("no index.json: not an OCI archive")
    manifests = json.load(index).get("manifests") or []
    if len(manifests) != 1 or not isinstance(manifests[0], dict):
        raise ImageError(f"the archive holds {len(manifests)} images, not one")
    descriptor: dict[str, Any] = manifests[0]
    return descriptor


def _manifest(archive: tarfile.TarFile) -> tuple[dict[str, Any], dict[str, Any]]:
    """The archive's one manifest descriptor (from index.json) and the manifest itself."""
    descriptor = _descriptor(archive)
    return descriptor, _json_blob(archive, descriptor["digest"])


def _normal(name: str) -> str:
    return str(PurePosixPath("/", name))[1:]


def read(path: Path, with_paths: bool = True) -> Image:
    """The image in an OCI archive, with every path its layers add (whiteouts applied; left
    out, without reading the layers, when ``with_paths`` is false)."""
    with tarfile.open(path) as archive:
        descriptor, manifest = _manifest(archive)
        image = Image(
            reference=(descriptor.get("annotations") or {}).get(REFERENCE_ANNOTATION, ""),
            config=_json_blob(archive, manifest["config"]["digest"]),
            layers=[layer["digest"] for layer in manifest["layers"]],
            digest=descriptor["digest"],
        )
        sizes: dict[str, int] = {}
        for digest in image.layers if with_paths else []:
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


def read_reference(path: Path) -> str:
    """The image reference the archive was pushed as (its index's annotation), without reading
    its layers."""
    with tarfile.open(path) as archive:
        descriptor = _descriptor(archive)
    return str((descriptor.get("annotations") or {}).get(REFERENCE_ANNOTATION, ""))


def unpack(path: Path, rootfs: Path) -> None:
    """The image's root filesystem in ``rootfs``: its layers extracted in order, whiteouts
    applied, device files left out (the runtime provides /dev). Ownership is kept when root."""
    rootfs.mkdir(parents=True, exist_ok=True)
    root = rootfs.resolve()
    with tarfile.open(path) as archive:
        _, manifest = _manifest(archive)
        for descriptor in manifest["layers"]:
            with tarfile.open(fileobj=_blob(archive, descriptor["digest"]), mode="r|*") as layer:
                for member in layer:
                    name = _normal(member.name)
                    parent, _, base = name.rpartition("/")
                    target = rootfs / name
                    if not (rootfs / parent).resolve().is_relative_to(root):
                        raise ImageError(f"{name}: leaves the root filesystem")
                    if base == OPAQUE:
                        for child in (rootfs / parent).iterdir():
                            _remove(child)
                    elif base.startswith(WHITEOUT):
                        _remove(rootfs / parent / base[len(WHITEOUT) :])
                    elif member.ischr() or member.isblk() or member.isfifo():
                        continue
                    else:
                        if target.is_symlink() or (target.exists() and not target.is_dir()):
                            target.unlink()
                        member.name = name
                        layer.extract(member, rootfs, set_attrs=True, filter="fully_trusted")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


@dataclass(frozen=True)
class UnpackedImage:
    """An image's root filesystem in the cache, shared read-only by its containers."""

    rootfs: Path
    image: Image


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unpacked(archive: Path, cache: Path) -> UnpackedImage:
    """The archive's root filesystem, unpacked once per manifest digest under ``cache``.

    Concurrent callers (threads or processes) wait for one unpacking; a half-unpacked tree is
    never used (it is unpacked beside its final place and renamed when complete).
    """
    image = read(archive, with_paths=False)
    key = image.digest.replace(":", "-")
    final = cache / key / "rootfs"
    with _locked(cache / f"{key}.lock"):
        if not final.is_dir():
            partial = cache / key / "rootfs.partial"
            shutil.rmtree(partial, ignore_errors=True)
            unpack(archive, partial)
            partial.chmod(0o755)
            partial.rename(final)
    return UnpackedImage(final, image)


def layer(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """One uncompressed layer holding ``files`` (path in the image → content), owned by root."""
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = mode
            out.addfile(info, BytesIO(content))
    return buffer.getvalue()


def _sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def extend(base: Path, out: Path, files: dict[str, bytes], reference: str) -> Image:
    """A new archive at ``out``: the image in ``base`` plus one layer holding ``files``."""
    added = layer(files)
    with tarfile.open(base) as archive:
        _, manifest = _manifest(archive)
        config = _json_blob(archive, manifest["config"]["digest"])
        blobs = {d["digest"]: _blob(archive, d["digest"]).read() for d in manifest["layers"]}
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(
        _sha256(added)
    )
    config_blob = json.dumps(config).encode()
    new_manifest = {
        **manifest,
        "config": {**manifest["config"], "digest": _sha256(config_blob), "size": len(config_blob)},
        "layers": [
            *manifest["layers"],
            {"mediaType": LAYER_TYPE, "digest": _sha256(added), "size": len(added)},
        ],
    }
    manifest_blob = json.dumps(new_manifest).encode()
    blobs.update({_sha256(added): added, _sha256(config_blob): config_blob})
    blobs[_sha256(manifest_blob)] = manifest_blob
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MANIFEST_TYPE,
                "digest": _sha256(manifest_blob),
                "size": len(manifest_blob),
                "annotations": {REFERENCE_ANNOTATION: reference},
            }
        ],
    }
    entries = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode()}
    entries["index.json"] = json.dumps(index).encode()
    entries.update({f"blobs/sha256/{d.split(':')[1]}": c for d, c in blobs.items()})
    with tarfile.open(out, "w") as archive_out:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive_out.addfile(info, BytesIO(content))
    return read(out)


def user_ids(image: Image) -> tuple[int, int] | None:
    """The image's numeric ``USER`` as (uid, gid); ``None`` when absent or not numeric."""
    user = str(image.runtime.get("User") or "")
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return None
    return int(uid), int(gid or uid)
