"""Where the control plane's binaries are: built from pinned Go modules by
`tools/build-control-plane.sh` (run by `make tools`) into a cache outside the repository."""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pht_sandbox.controlplane.processes import ControlPlaneError

BUILD_SCRIPT = Path("tools") / "build-control-plane.sh"
ENV_BIN = "PHT_CONTROL_PLANE_BIN"


@dataclass(frozen=True)
class ControlPlaneBinaries:
    folder: Path

    @property
    def etcd(self) -> Path:
        return self.folder / "etcd"

    @property
    def kube_apiserver(self) -> Path:
        return self.folder / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self.folder / "kube-controller-manager"

    @property
    def kube_scheduler(self) -> Path:
        return self.folder / "kube-scheduler"

    @property
    def kwok(self) -> Path:
        return self.folder / "kwok"

    @property
    def kwok_stages(self) -> Path:
        return self.folder / "kwok-stages"

    def missing(self) -> list[str]:
        wanted = [
            self.etcd,
            self.kube_apiserver,
            self.kube_controller_manager,
            self.kube_scheduler,
            self.kwok,
        ]
        return [p.name for p in wanted if not os.access(p, os.X_OK)] + (
            [] if self.kwok_stages.is_dir() else [self.kwok_stages.name]
        )


def repository_root(start: Path | None = None) -> Path | None:
    """The checkout this package runs from, if it runs from one (the build script lives there)."""
    here = (start or Path(__file__)).resolve()
    for folder in here.parents:
        if (folder / BUILD_SCRIPT).is_file():
            return folder
    return None


def locate(build: bool = False, timeout: float = 3600.0) -> ControlPlaneBinaries:
    """The built binaries; with `build`, build them first if the cache has no complete build.

    Raises ControlPlaneError saying how to build them when they are not there.
    """
    explicit = os.environ.get(ENV_BIN)
    if explicit:
        found = ControlPlaneBinaries(Path(explicit))
    else:
        root = repository_root()
        if root is None:
            raise ControlPlaneError(
                f"the control plane is built from a source checkout ({BUILD_SCRIPT}); "
                f"or set {ENV_BIN} to a folder holding etcd, kube-apiserver, "
                "kube-controller-manager, kube-scheduler and kwok"
            )
        argv = ["bash", str(root / BUILD_SCRIPT)] + ([] if build else ["--check"])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            hint = "" if build else " Build it with 'make tools' (Go 1.26; long when cold)."
            raise ControlPlaneError(
                f"no control plane binaries: {done.stderr.strip()[-2000:]}{hint}"
            )
        found = ControlPlaneBinaries(Path(done.stdout.strip().splitlines()[-1]))
    missing = found.missing()
    if missing:
        raise ControlPlaneError(
            f"{found.folder} lacks {', '.join(missing)}; rebuild with 'make tools'"
        )
    return found
