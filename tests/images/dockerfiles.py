"""A small Dockerfile reader: enough to check the essentials of our images without a Docker
engine (none is available on these machines): stages, base images, users, commands, copies."""

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    result = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages(path: Path) -> list[Stage]:
    """The build stages in order, ARG defaults before the first FROM substituted in FROM lines."""
    args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(path.read_text()):
        if instruction.keyword == "ARG" and not found:
            name, _, default = instruction.arguments.partition("=")
            args[name] = default
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            stage_name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(base, stage_name))
        elif found:
            found[-1].instructions.append(instruction)
    return found


def copy_sources(stage: Stage) -> list[str]:
    """Build-context paths a stage copies (COPY --from=<stage> copies are not from the context)."""
    sources = []
    for arguments in stage.all("COPY") + stage.all("ADD"):
        words = shlex.split(arguments)
        if any(w.startswith("--from=") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.extend(paths[:-1])
    return sources
