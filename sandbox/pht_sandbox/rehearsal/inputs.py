"""What a rehearsal starts from: the train's directory, its manifest and the station policy.

The Train is judged as admission judges it, by :func:`pht_contract.validation.validate_object`
and :func:`pht_contract.evaluation.evaluate`; a refusal names every problem with its field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from pht_contract.evaluation import Decision, evaluate
from pht_contract.objects import Obj
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import Train, TrainSpec
from pht_contract.validation import Problem, find_policy, load_documents, validate_object
from pht_sandbox.bundledtrains import REPO, BundledTrain, bundled_trains

MANIFESTS: Final = Path("examples") / "trains"
POLICY: Final = Path("examples") / "policies" / "station-policy.yaml"


class RunLocalError(Exception):
    """A problem with the input or the local station; printed as ``error: …`` (no traceback)."""


class NotATrain(RunLocalError):
    """The directory holds no train package with a ``__main__`` module."""


class ManifestRefused(RunLocalError):
    """The Train fails the schema, CEL rules or the station policy; one problem per field."""

    def __init__(self, manifest: Path, problems: list[Problem]) -> None:
        super().__init__(f"{manifest}: the station would refuse this Train")
        self.problems = problems


class StationUnavailable(RunLocalError):
    """The local ``pht api`` did not start or answered with an error."""


@dataclass(frozen=True)
class LocalRunOptions:
    directory: Path
    manifest: Path | None = None
    policy: Path | None = None
    out: Path | None = None
    patients: int = 250
    seed: int = 0
    #: Replaces the manifest's ``spec.parameters`` (a JSON object as text).
    parameters: str | None = None


@dataclass(frozen=True)
class AdmittedTrain:
    """The Train as admission parsed it, with the names the station keys its records by."""

    namespace: str
    name: str
    spec: TrainSpec
    decision: Decision


def find_train(directory: Path) -> BundledTrain:
    """The package ``<dir name with underscores>`` with a ``__main__`` module, run by ``-m``."""
    if not directory.is_dir():
        raise NotATrain(f"{directory} is not a directory")
    directory = directory.resolve()
    for bundled in bundled_trains().values():
        if bundled.directory.resolve() == directory:
            return bundled
    module = directory.name.replace("-", "_")
    if not (directory / module / "__main__.py").is_file():
        raise NotATrain(
            f"{directory} is not a train: expected a package {module}/ with a __main__.py "
            f"(a station runs it as `python -m {module}`)"
        )
    return BundledTrain(directory.name, directory, module)


def in_checkout(relative: Path) -> Path:
    """``relative`` below the working directory if it is there, else below this checkout."""
    return relative if relative.exists() else REPO / relative


def default_manifest(train: BundledTrain) -> Path:
    return in_checkout(MANIFESTS / f"{train.name}.yaml")


def default_policy() -> Path:
    return in_checkout(POLICY)


def load_policy(path: Path) -> StationPolicySpec:
    try:
        policy = find_policy(load_documents(path))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise RunLocalError(f"cannot read the policy: {exc}") from None
    if policy is None:
        raise RunLocalError(f"{path} holds no valid StationPolicy")
    return policy


def load_manifest(path: Path, parameters: str | None) -> Obj:
    """The one Train in ``path``, with ``spec.parameters`` replaced when given."""
    try:
        documents = load_documents(path)
    except FileNotFoundError:
        raise RunLocalError(f"no Train manifest at {path} (give one with --manifest)") from None
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise RunLocalError(f"cannot read the manifest: {exc}") from None
    trains = [d for d in documents if d.get("kind") == "Train"]
    if len(trains) != 1:
        raise RunLocalError(f"{path} must hold exactly one Train (found {len(trains)})")
    train = trains[0]
    if parameters is not None:
        try:
            value = json.loads(parameters)
        except ValueError as exc:
            raise RunLocalError(f"--parameters is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise RunLocalError("--parameters must be a JSON object")
        spec = train.get("spec")
        if isinstance(spec, dict):
            spec["parameters"] = json.dumps(value, separators=(",", ":"))
    return train


def admit(document: Obj, manifest: Path, policy: StationPolicySpec) -> AdmittedTrain:
    """What admission decides: every problem with its field path, or the admitted Train."""
    problems = validate_object(document, policy)
    if problems:
        raise ManifestRefused(manifest, problems)
    train = Train.model_validate(document)
    metadata = train.metadata
    return AdmittedTrain(
        namespace=str(metadata.get("namespace") or "default"),
        name=str(metadata["name"]),
        spec=train.spec,
        decision=evaluate(train.spec, policy),
    )
