"""Plots on the console's output-checking page: the canonical PNG from a route of its own,
only for a steward who may see the result, and to the requester only with the released result.
"""

import base64
import secrets
from typing import Any

import httpx
import pytest
from consolekit import (
    ORIGIN,
    OTHER_STEWARD,
    RESEARCHER,
    STEWARD,
    WARD_STEWARD,
    post_form,
    signed_in,
)
from pngfiles import chunk, png
from stationkit import bearer, example_query, operator_headers, registration

from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TrainRegistration,
)
from pht_station_api.disclosure.png import canonical_png
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
HIDDEN_TEXT = b"Comment\x00patient 4711 born 1950-01-01"
UPLOADED = png(48, 32, after_image=chunk(b"tEXt", HIDDEN_TEXT))


def plotted_manifest() -> dict[str, Any]:
    return {
        "tables": [
            {
                "name": "stages",
                "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
                "rows": [["I", 30], ["IIIa", 30]],
                "cohortSize": 60,
            }
        ],
        "plots": [
            {
                "name": "survival",
                "title": "Survival by stage",
                "dataBase64": base64.b64encode(UPLOADED).decode(),
            }
        ],
    }


async def plotted_train(
    inside: httpx.AsyncClient,
    namespace: str = "pht-requests",
    requested_by: str = RESEARCHER.username,
) -> TrainRegistration:
    token = secrets.token_urlsafe(24)
    reg = registration(token, [KM])
    reg = reg.model_copy(update={"namespace": namespace, "requested_by": requested_by})
    put = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert put.status_code == 201, put.text
    answer = await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    upload = await inside.put(RESULT_PATH, json=plotted_manifest(), headers=bearer(token))
    assert upload.status_code == 201, upload.text
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid),
        json={"jobSucceeded": True, "reason": "RunCompleted"},
        headers=operator_headers(),
    )
    assert done.status_code == 200, done.text
    return reg


def plot_path(reg: TrainRegistration, plot: str = "survival") -> str:
    return f"/console/results/{reg.namespace}/{reg.name}/plots/{plot}"


async def test_the_page_shows_the_plot_and_its_route_serves_the_canonical_png(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient, console_station: StationState
) -> None:
    reg = await plotted_train(inside)
    record = console_station.results.find(reg.namespace, reg.name)
    assert (record.release.value, record.rule) == ("Held", "PlotHeld")
    await signed_in(browser, STEWARD)
    page = await browser.get(f"/console/results/{reg.namespace}/{reg.name}")
    assert page.status_code == 200, page.text
    canonical = canonical_png(UPLOADED).data
    assert f'<img src="{plot_path(reg)}" alt="Survival by stage" width="48" height="32">' in (
        page.text
    )
    assert f"48 × 32 pixels, {len(canonical)} bytes" in page.text
    csp = page.headers["content-security-policy"]
    assert "img-src 'self';" in csp and "data:" not in csp
    picture = await browser.get(plot_path(reg))
    assert picture.status_code == 200
    assert picture.content == canonical
    assert HIDDEN_TEXT not in picture.content and b"tEXt" not in picture.content
    assert picture.headers["content-type"] == "image/png"
    assert picture.headers["x-content-type-options"] == "nosniff"
    assert picture.headers["content-security-policy"] == (
        "default-src 'none'; sandbox; frame-ancestors 'none'"
    )
    assert picture.headers["cache-control"] == "no-store"


async def test_an_unknown_plot_or_a_name_with_path_characters_is_refused(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient
) -> None:
    reg = await plotted_train(inside)
    await signed_in(browser, STEWARD)
    missing = await browser.get(plot_path(reg, "other"))
    assert missing.status_code == 404
    assert "no plot named other" in missing.text
    for bad in ("..%2Fstate.json", "survival.png", "Survival"):
        answer = await browser.get(plot_path(reg, bad))
        assert answer.status_code in (404, 422), bad
        assert answer.headers["content-type"] != "image/png"


async def test_a_researcher_cannot_fetch_a_plot_before_release_and_gets_it_with_the_result(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient
) -> None:
    reg = await plotted_train(inside)
    await signed_in(browser, RESEARCHER)
    refused = await browser.get(plot_path(reg))
    assert refused.status_code == 403
    assert refused.headers["content-type"] != "image/png"
    before = await browser.get(
        f"/results/{reg.namespace}/{reg.name}", headers=bearer(RESEARCHER.token)
    )
    assert (before.status_code, before.json()["reason"]) == (404, "NotReleased")
    csrf = await signed_in(browser, STEWARD)
    released = await browser.post(
        f"/console/results/{reg.namespace}/{reg.name}",
        data=post_form(csrf, decision="Release", reason="the plot shows curves only"),
        headers=ORIGIN,
    )
    assert released.status_code == 200, released.text
    # Released or not, the console's route is for stewards only.
    await signed_in(browser, RESEARCHER)
    assert (await browser.get(plot_path(reg))).status_code == 403
    download = await browser.get(
        f"/results/{reg.namespace}/{reg.name}", headers=bearer(RESEARCHER.token)
    )
    assert download.status_code == 200, download.text
    (plot,) = download.json()["plots"]
    assert base64.b64decode(plot["dataBase64"]) == canonical_png(UPLOADED).data


async def test_a_steward_of_another_namespace_cannot_fetch_the_plot(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient
) -> None:
    elsewhere = await plotted_train(inside, namespace="ward-b")
    await signed_in(browser, WARD_STEWARD)
    answer = await browser.get(plot_path(elsewhere))
    assert answer.status_code == 403
    assert answer.headers["content-type"] != "image/png"


@pytest.mark.parametrize(
    "bad",
    [
        "%2e%2e",
        "survival%2F..%2F..%2Fstate",
        "survival%00",
        "surv%C3%ADval",
        "s" * 64,
        "s" * 5000,
    ],
)
async def test_odd_plot_names_get_no_picture_and_are_not_echoed(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient, bad: str
) -> None:
    reg = await plotted_train(inside)
    await signed_in(browser, STEWARD)
    answer = await browser.get(plot_path(reg, bad))
    assert answer.status_code in (404, 422), bad
    assert answer.headers["content-type"] != "image/png"
    assert not answer.content.startswith(b"\x89PNG")
    assert "s" * 64 not in answer.text


async def test_a_blocked_result_serves_no_plot(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient, console_station: StationState
) -> None:
    token = secrets.token_urlsafe(24)
    reg = registration(token, [KM]).model_copy(update={"requested_by": RESEARCHER.username})
    put = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert put.status_code == 201, put.text
    manifest = plotted_manifest()
    # A valid plot beside one that is not a PNG: the result is blocked, and neither leaves.
    manifest["plots"].append({"name": "photo", "title": "Photo", "dataBase64": "/9j/4AAQSkZJRg=="})
    assert (await inside.put(RESULT_PATH, json=manifest, headers=bearer(token))).status_code == 201
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid),
        json={"jobSucceeded": True, "reason": "RunCompleted"},
        headers=operator_headers(),
    )
    assert done.status_code == 200, done.text
    record = console_station.results.find(reg.namespace, reg.name)
    assert (record.release.value, record.rule) == ("Blocked", "InvalidPlot")
    await signed_in(browser, STEWARD)
    for name in ("survival", "photo"):
        answer = await browser.get(plot_path(reg, name))
        assert answer.status_code == 404, name
        assert answer.headers["content-type"] != "image/png"


async def test_the_mirrored_train_state_tells_nothing_of_a_held_plot(
    inside: httpx.AsyncClient, console_station: StationState
) -> None:
    reg = await plotted_train(inside)
    state = console_station.results.train_state(reg.uid, registered=True, progress=None)
    assert (state.release.value, state.rule, state.result) == ("Held", "PlotHeld", None)
    mirrored = state.model_dump_json()
    assert "survival" not in mirrored and "Survival" not in mirrored
    assert base64.b64encode(UPLOADED).decode()[:40] not in mirrored


async def test_each_plot_opens_at_full_size_from_the_page(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient
) -> None:
    # The page scales a wide picture down (a 4096 × 1 strip, small print): the steward can open
    # each one at its own size.
    reg = await plotted_train(inside)
    await signed_in(browser, STEWARD)
    page = await browser.get(f"/console/results/{reg.namespace}/{reg.name}")
    assert f'<a href="{plot_path(reg)}"><img src="{plot_path(reg)}"' in page.text
    assert f'<a href="{plot_path(reg)}">open at full size' in page.text


async def test_a_steward_does_not_see_the_held_plot_of_their_own_train(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient
) -> None:
    # A steward who is also the requester would receive the held result by looking at it.
    reg = await plotted_train(inside, requested_by=OTHER_STEWARD.username)
    await signed_in(browser, OTHER_STEWARD)
    picture = await browser.get(plot_path(reg))
    assert picture.status_code == 403
    assert picture.headers["content-type"] != "image/png"
    assert "another steward must release its result before steward-kim sees it" in picture.text
    page = await browser.get(f"/console/results/{reg.namespace}/{reg.name}")
    assert page.status_code == 403
    assert plot_path(reg) not in page.text and "stages" not in page.text
    rest = await browser.get(
        f"/stewards/results/{reg.namespace}/{reg.name}", headers=bearer(OTHER_STEWARD.token)
    )
    assert (rest.status_code, rest.json()["reason"]) == (403, "OwnResultView")
    assert "dataBase64" not in rest.text
    # Another steward looks and releases; then the requester sees it like any result.
    csrf = await signed_in(browser, STEWARD)
    assert (await browser.get(plot_path(reg))).status_code == 200
    released = await browser.post(
        f"/console/results/{reg.namespace}/{reg.name}",
        data=post_form(csrf, decision="Release", reason="curves only"),
        headers=ORIGIN,
    )
    assert released.status_code == 200, released.text
    await signed_in(browser, OTHER_STEWARD)
    assert (await browser.get(plot_path(reg))).content == canonical_png(UPLOADED).data
