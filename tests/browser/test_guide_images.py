"""The steward guide's screenshots: each image it names exists, is a 1366×768 PNG and has
alternative text; each section shows the pages it describes; no screenshot lies unused.

The browser tests write them (``PHT_UPDATE_SCREENSHOTS=1``); these checks need no browser.
"""

import re
from typing import Final

from PIL import Image

from .browserkit import GUIDE, GUIDE_IMAGES, GUIDE_SCREENSHOTS, VIEWPORT

IMAGE: Final = re.compile(r"!\[([^\]]*)\]\((images/steward-guide/[^)\s]+)\)")


def sections() -> dict[str, str]:
    """The guide's text under each ``## `` heading."""
    parts = re.split(r"^## (.+)$", GUIDE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {title.strip(): text for title, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_image_the_guide_names_is_a_laptop_screenshot_with_alternative_text() -> None:
    named = IMAGE.findall(GUIDE.read_text(encoding="utf-8"))
    assert named, "the steward guide shows no screenshots"
    for alternative, path in named:
        assert alternative.strip(), f"{path} has no alternative text"
        image = GUIDE.parent / path
        assert image.is_file(), f"the guide names {path}, which does not exist"
        with Image.open(image) as opened:
            assert opened.format == "PNG", path
            assert opened.size == (VIEWPORT["width"], VIEWPORT["height"]), path


def test_each_section_shows_the_pages_it_describes() -> None:
    found = sections()
    for section, names in GUIDE_SCREENSHOTS.items():
        assert section in found, f"the guide has no section {section!r}"
        for name in names:
            link = f"(images/steward-guide/{name}.png)"
            assert link in found[section], f"{section!r} does not show {name}.png"


def test_no_screenshot_lies_unused() -> None:
    named = {path.rsplit("/", 1)[1] for _, path in IMAGE.findall(GUIDE.read_text("utf-8"))}
    stored = {image.name for image in GUIDE_IMAGES.iterdir()}
    assert stored <= named, f"not in the guide: {sorted(stored - named)}"
