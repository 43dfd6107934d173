"""Helpers for the console's browser tests: Debian's Chromium, people, screenshots, checks.

Playwright drives Debian's ``chromium`` (``make test`` installs it; Playwright cannot fetch its
own browser here), headless, with a fresh profile and without the background services that
would try to reach the network. Screenshots of every page go to the test artefacts
directory (``$PHT_TEST_ARTEFACTS/screenshots``, else ``.artefacts/screenshots``) and, with
``PHT_UPDATE_SCREENSHOTS=1``, to the steward guide's images.
"""

import asyncio
import base64
import hashlib
import io
import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import yaml
from matplotlib.figure import Figure
from PIL import Image
from playwright.async_api import Page, ViewportSize

from pht_contract.hashing import canonical_json, token_hash
from pht_contract.policies import StationPolicySpec
from pht_contract.sparql import query_hash
from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    ApprovedQuery,
    TrainRegistration,
)
from pht_sandbox.stations import REQUEST_NAMESPACE, LocalStation
from pht_station_api.console.locallogin import hash_password

REPO: Final = Path(__file__).resolve().parents[2]
POLICY_FILE: Final = REPO / "examples" / "policies" / "station-policy.yaml"
TRAIN_FILE: Final = REPO / "examples" / "trains" / "kaplan-meier.yaml"
GUIDE: Final = REPO / "docs" / "steward-guide.md"
GUIDE_IMAGES: Final = REPO / "docs" / "images" / "steward-guide"
CHROMIUM: Final = Path(os.environ.get("PHT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: A laptop screen: every page must fit its width, and the guide's screenshots have its size.
VIEWPORT: Final[ViewportSize] = {"width": 1366, "height": 768}
#: WCAG 2.2 AA: normal text against its background.
MIN_TEXT_CONTRAST: Final = 4.5
#: WCAG 2.2 AA: user interface components, such as the focus outline, against what is around.
MIN_FOCUS_CONTRAST: Final = 3.0
#: The values of a row-level table a seeded train uploads: no console page may show them.
PATIENT_VALUES: Final = ("71.8125", "64.4375", "58.0625")
#: Patients in the synthetic cohort: enough for the example train's survival table.
PATIENTS: Final = 422
#: A Train that waits for a steward all along (nobody approves it).
WAITING_TRAIN: Final = "km-awaiting-steward"
#: How often a test reloads a page while it waits for a Train to change.
RELOAD_SECONDS: Final = 0.5
DONE: Final = {"jobSucceeded": True, "reason": "RunCompleted"}


#: The screenshots the steward guide shows, by the section they illustrate.
GUIDE_SCREENSHOTS: Final = {
    "Signing in": ("signin",),
    "Pending approvals": ("approvals", "approval", "approval-decision"),
    "Output checking": ("results", "result", "result-plot"),
    "Trains and audit": ("trains", "timeline", "audit"),
}


def artefacts_dir() -> Path:
    root = os.environ.get("PHT_TEST_ARTEFACTS")
    directory = (Path(root) if root else REPO / ".artefacts") / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def updating_guide_images() -> bool:
    return os.environ.get("PHT_UPDATE_SCREENSHOTS") == "1"


def small_png(raw: bytes) -> bytes:
    """The screenshot as a palette PNG: the console's flat colours survive, the file shrinks."""
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, "PNG", optimize=True)
    return out.getvalue()


async def shoot(page: Page, name: str) -> Path:
    """A 1366×768 screenshot of the page as the steward sees it, saved as ``<name>.png`` in
    the artefacts and, when updating them, among the guide's images if the guide shows it."""
    png = small_png(await page.screenshot(animations="disabled", caret="initial"))
    saved = artefacts_dir() / f"{name}.png"
    saved.write_bytes(png)
    if updating_guide_images() and any(name in names for names in GUIDE_SCREENSHOTS.values()):
        GUIDE_IMAGES.mkdir(parents=True, exist_ok=True)
        (GUIDE_IMAGES / f"{name}.png").write_bytes(png)
    return saved


@dataclass(frozen=True)
class Person:
    username: str
    password: str


@dataclass
class ConsoleStation(LocalStation):
    """The station in a box, plus a researcher who may sign in to the console too: the console
    must refuse them every steward's action."""

    researcher_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def _write_identities(self, path: Path) -> None:
        super()._write_identities(path)
        document = yaml.safe_load(path.read_text())
        for user in document["users"]:
            if user["username"] == self.requester:
                user["token"] = self.researcher_token
        path.write_text(yaml.safe_dump(document))

    def _write_console_logins(self, path: Path) -> None:
        super()._write_console_logins(path)
        document = yaml.safe_load(path.read_text())
        document["users"].append(
            {"username": self.requester, "scrypt": hash_password(self.researcher_password)}
        )
        path.write_text(yaml.safe_dump(document))

    @property
    def steward(self) -> Person:
        return Person(self.console_user, self.steward_password)

    @property
    def researcher(self) -> Person:
        return Person(self.requester, self.researcher_password)

    def console(self, path: str = "") -> str:
        return f"{self.urls.external}/console{path}"


def load_yaml(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


#: The plot a seeded result carries, as the console shows it.
PLOT_TITLE: Final = "Overall survival by stage"
PLOT_SIZE: Final = (640, 360)


def survival_plot_png() -> bytes:
    """Survival curves drawn as an algorithm would, text chunks matplotlib writes included."""
    figure = Figure(figsize=(PLOT_SIZE[0] / 100, PLOT_SIZE[1] / 100), dpi=100)
    axes = figure.subplots()
    days = [0, 180, 365, 730, 1095]
    for stage, survival in {
        "I": [1.0, 0.95, 0.9, 0.82, 0.76],
        "II": [1.0, 0.9, 0.78, 0.65, 0.58],
        "IIIa": [1.0, 0.8, 0.62, 0.45, 0.36],
    }.items():
        axes.step(days, survival, where="post", label=f"stage {stage}")
    axes.set_xlabel("days")
    axes.set_ylabel("survival")
    axes.set_ylim(0, 1.05)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Description": "drawn by the algorithm"})
    return buffer.getvalue()


def row_level_manifest(cohort: int) -> dict[str, Any]:
    """A result with an aggregate table, a row-level table (each row one patient) and a plot."""
    return {
        "tables": [
            {
                "name": "stages",
                "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
                "rows": [["I", 30], ["II", 2], ["IIIa", 28]],
                "cohortSize": cohort,
            },
            {
                "name": "patients",
                "kind": "RowLevel",
                "columns": [
                    {"name": "stage", "role": "Group"},
                    {"name": "n", "role": "Count"},
                    {"name": "age", "role": "Statistic"},
                ],
                "rows": [["I", 1, float(v)] for v in PATIENT_VALUES],
                "cohortSize": cohort,
            },
        ],
        "plots": [
            {
                "name": "survival",
                "title": PLOT_TITLE,
                "dataBase64": base64.b64encode(survival_plot_png()).decode("ascii"),
            }
        ],
        "messages": ["per-patient ages attached for checking"],
    }


async def seed_row_level_result(station: ConsoleStation, name: str, cohort: int) -> None:
    """A train run as the operator reports one to the station API: registered, queries the
    cohort, uploads a result with a row-level table, ends. The gate holds it for a steward."""
    train = load_yaml(TRAIN_FILE)
    query = str(train["spec"]["queries"][0]["sparql"])
    policy_doc = load_yaml(POLICY_FILE)["spec"]
    policy_doc["disclosure"]["forbidRowLevel"] = False
    policy = StationPolicySpec.model_validate(policy_doc)
    token = secrets.token_urlsafe(24)
    registration = TrainRegistration(
        uid=str(uuid.uuid4()),
        namespace=REQUEST_NAMESPACE,
        name=name,
        spec_hash=hashlib.sha256(name.encode()).hexdigest(),
        image=str(train["spec"]["image"]),
        image_runs_as_built=True,
        token_hash=token_hash(token),
        approved_query_hashes=[query_hash(query)],
        approved_queries=[ApprovedQuery(name="survival", sparql=query, hash=query_hash(query))],
        allowed_graphs=[station.config.graph],
        policy=policy,
        policy_hash=hashlib.sha256(canonical_json(policy.wire())).hexdigest(),
        requester_name="Dr. A. Researcher",
        requester_organisation="maastro",
        requested_by=station.requester,
        expires_at=(datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    operator = {"Authorization": f"Bearer {_operator_token(station)}"}
    train_auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=station.urls.internal, timeout=30.0) as internal:
        steps = [
            internal.put(
                TRAIN_REGISTRATION_PATH.format(uid=registration.uid),
                json=registration.wire(),
                headers=operator,
            ),
            internal.get(SPARQL_PATH, params={"query": query}, headers=train_auth),
            internal.put(RESULT_PATH, json=row_level_manifest(cohort), headers=train_auth),
            internal.put(
                TRAIN_COMPLETION_PATH.format(uid=registration.uid), json=DONE, headers=operator
            ),
        ]
        for step in steps:
            answer = await step
            assert answer.status_code in (200, 201), answer.text


def _operator_token(station: LocalStation) -> str:
    return (station.config.work_dir / "operator-token").read_text().strip()


async def sign_in(page: Page, station: ConsoleStation, person: Person) -> None:
    """The local login as a person does it: open the console, type, press Enter."""
    await page.context.clear_cookies()
    await page.goto(station.console("/"))
    await page.get_by_label(re.compile("user ?name", re.IGNORECASE)).fill(person.username)
    await page.get_by_label(re.compile("password", re.IGNORECASE)).fill(person.password)
    await page.get_by_label(re.compile("password", re.IGNORECASE)).press("Enter")
    await page.wait_for_load_state()


async def page_text(page: Page) -> str:
    return await page.inner_text("body")


def contrast_ratio(first: tuple[float, float, float], second: tuple[float, float, float]) -> float:
    """WCAG's contrast ratio of two sRGB colours (0–255 per channel)."""

    def luminance(rgb: tuple[float, float, float]) -> float:
        def channel(value: float) -> float:
            c = value / 255
            return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(v) for v in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


#: For every element that shows text of its own: its text colour and the colours behind it
#: (its own or the nearest ancestor's background colour, and the colours of a background
#: gradient), from the browser's computed styles.
TEXT_COLOURS_JS: Final = """
() => {
  const rgb = (value) => {
    const m = value.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const parts = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {rgb: parts.slice(0, 3), alpha: parts.length > 3 ? parts[3] : 1};
  };
  const behind = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      const image = style.backgroundImage;
      if (image && image !== 'none') {
        const stops = (image.match(/rgba?\\([^)]+\\)/g) || []).map(rgb).filter(Boolean);
        if (stops.length) return stops.map(s => s.rgb);
      }
      const colour = rgb(style.backgroundColor);
      if (colour && colour.alpha > 0) return [colour.rgb];
    }
    return [[255, 255, 255]];
  };
  const found = [];
  for (const element of document.body.querySelectorAll('*')) {
    const own = Array.from(element.childNodes).some(
      n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(element);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || box.right < 0 || box.bottom < 0) continue;
    found.push({
      tag: element.tagName.toLowerCase(),
      cls: element.className || '',
      text: element.textContent.trim().slice(0, 40),
      colour: rgb(style.color).rgb,
      backgrounds: behind(element),
    });
  }
  return found;
}
"""

#: Every form control a person fills or chooses, with how a screen reader names it.
UNLABELLED_CONTROLS_JS: Final = """
() => Array.from(document.querySelectorAll('input, textarea, select, button'))
  .filter(c => c.type !== 'hidden')
  .filter(c => {
    if (c.tagName === 'BUTTON') return !c.textContent.trim() && !c.getAttribute('aria-label');
    const labelled = (c.labels && Array.from(c.labels).some(l => l.textContent.trim()))
      || c.getAttribute('aria-label') || c.getAttribute('aria-labelledby');
    return !labelled;
  })
  .map(c => c.outerHTML.slice(0, 120))
"""

#: How far the page reaches past the window's width (0 when nothing scrolls sideways).
HORIZONTAL_OVERFLOW_JS: Final = (
    "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
)

#: The focused element's outline colour and width, and the background around it.
FOCUS_OUTLINE_JS: Final = """
() => {
  const element = document.activeElement;
  const style = getComputedStyle(element);
  let node = element.parentElement, around = 'rgb(255, 255, 255)';
  for (; node; node = node.parentElement) {
    const bg = getComputedStyle(node).backgroundColor;
    if (bg && bg !== 'transparent' && !bg.startsWith('rgba(0, 0, 0, 0')) { around = bg; break; }
  }
  return {outline: style.outlineColor, width: style.outlineWidth,
          outlineStyle: style.outlineStyle, around: around,
          tag: element.tagName.toLowerCase(), text: (element.textContent || '').trim()};
}
"""


def parse_rgb(value: str) -> tuple[float, float, float]:
    numbers = [float(n) for n in re.findall(r"[\d.]+", value)[:3]]
    return numbers[0], numbers[1], numbers[2]


async def low_contrast_text(page: Page) -> list[str]:
    """Each text on the page whose contrast with what is behind it is below AA's 4.5:1."""
    found: list[dict[str, Any]] = await page.evaluate(TEXT_COLOURS_JS)
    failures = []
    for item in found:
        colour = tuple(item["colour"])
        worst = min(contrast_ratio(colour, tuple(b)) for b in item["backgrounds"])
        if worst < MIN_TEXT_CONTRAST:
            failures.append(
                f"{item['tag']}.{item['cls']} {item['text']!r}: {worst:.2f}:1 "
                f"({item['colour']} on {item['backgrounds']})"
            )
    return failures


async def page_problems(page: Page) -> list[str]:
    """What keeps a steward from using the page on a laptop or with a screen reader, or what it
    must never show: unlabelled controls, text below AA contrast, not one top-level heading
    named by the title, no language, sideways scrolling at 1366 pixels, and any value of a
    row-level table."""
    problems = [f"unlabelled control: {c}" for c in await page.evaluate(UNLABELLED_CONTROLS_JS)]
    problems += [f"low contrast: {f}" for f in await low_contrast_text(page)]
    headings = await page.locator("h1").all_inner_texts()
    if len(headings) != 1:
        problems.append(f"{len(headings)} top-level headings instead of one")
    elif not (await page.title()).startswith(headings[0].strip()):
        problems.append(f"the title {await page.title()!r} does not name the page")
    if not await page.locator("html").get_attribute("lang"):
        problems.append("the page does not say its language")
    overflow = await page.evaluate(HORIZONTAL_OVERFLOW_JS)
    if overflow > 0:
        problems.append(f"scrolls sideways by {overflow}px at {VIEWPORT['width']}px")
    html = await page.content()
    problems += [f"shows the row-level value {v}" for v in PATIENT_VALUES if v in html]
    return problems


async def look_at(page: Page, screenshot: str) -> None:
    """Screenshot the page as ``<screenshot>.png`` and check it (:func:`page_problems`)."""
    await page.wait_for_load_state()
    await shoot(page, screenshot)
    problems = await page_problems(page)
    assert not problems, f"{page.url}: " + "; ".join(problems)


async def state_shown(page: Page, train: str, states: tuple[str, ...], timeout: float) -> str:
    """Reload the Trains page until ``train``'s row shows one of ``states`` (the page does not
    refresh itself); returns the state shown."""
    row = page.get_by_role("row").filter(has_text=f"{REQUEST_NAMESPACE}/{train}")
    shown = ""
    for _ in range(int(timeout / RELOAD_SECONDS)):
        shown = (await row.get_by_role("cell").nth(1).inner_text()).strip()
        if shown in states:
            return shown
        await asyncio.sleep(RELOAD_SECONDS)
        await page.reload()
    raise AssertionError(f"{train} still shows {shown!r}, not one of {states}")
