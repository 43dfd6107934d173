"""Helpers for console tests: people with tokens and passwords, and a browser-like client.

The console is reached over ``https://console.test`` (its session cookie is Secure, so a
client sends it over https only); every form post carries the console's own Origin, as a
browser does, unless a test forges one.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from pht_station_api.console.locallogin import hash_password

BASE: Final = "https://console.test"
ORIGIN: Final = {"Origin": BASE}


@dataclass(frozen=True)
class Person:
    username: str
    token: str
    password: str
    groups: tuple[str, ...]


STEWARD: Final = Person("steward-sam", "sam-token", "sam-password", ("pht-stewards",))
OTHER_STEWARD: Final = Person("steward-kim", "kim-token", "kim-password", ("pht-stewards",))
RESEARCHER: Final = Person("dr-alice", "alice-token", "alice-password", ("researchers",))
#: A steward of one namespace only (pht-requests).
WARD_STEWARD: Final = Person("steward-wes", "wes-token", "wes-password", ("ward-stewards",))
PEOPLE: Final = (STEWARD, OTHER_STEWARD, RESEARCHER, WARD_STEWARD)
STEWARD_RULES: Final = [
    {"groups": ["pht-stewards"], "verbs": ["release", "approve", "get"]},
    {
        "groups": ["ward-stewards"],
        "verbs": ["release", "approve", "get"],
        "namespaces": ["pht-requests"],
    },
    {"groups": ["researchers"], "verbs": ["get"], "namespaces": ["pht-requests"]},
]


def write_people(directory: Path) -> tuple[Path, Path]:
    """The local identities file (plain tokens) and the console's login file."""
    identities = directory / "people.yaml"
    identities.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {
                        "username": p.username,
                        "groups": list(p.groups),
                        "tokenSha256": hashlib.sha256(p.token.encode()).hexdigest(),
                        "token": p.token,
                    }
                    for p in PEOPLE
                ],
                "rules": STEWARD_RULES,
            }
        )
    )
    logins = directory / "logins.yaml"
    logins.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {"username": p.username, "scrypt": hash_password(p.password)} for p in PEOPLE
                ]
                # A login without a token in the identities file: it cannot act.
                + [{"username": "nobody", "scrypt": hash_password("nobody-password")}]
            }
        )
    )
    return identities, logins


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match is not None, f"no {name} field in the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """The local login as a browser does it: fetch the form, post it back."""
    form = await client.get("/console/signin", params={"return_to": "/console/results"})
    assert form.status_code == 200, form.text
    return await client.post(
        "/console/signin/callback",
        data={
            "form_token": hidden(form.text, "form_token"),
            "return_to": hidden(form.text, "return_to"),
            "username": username,
            "password": password,
        },
        headers=ORIGIN,
    )


async def signed_in(client: httpx.AsyncClient, person: Person) -> str:
    """Sign ``person`` in; returns the session's CSRF token (from a page's forms)."""
    client.cookies.clear()
    answer = await sign_in(client, person.username, person.password)
    assert answer.status_code == 303, answer.text
    page = await client.get("/console/results")
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf_token")


def post_form(csrf: str, **fields: Any) -> dict[str, Any]:
    return {"csrf_token": csrf, **fields}
