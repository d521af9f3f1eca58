"""Hostile input in a real browser (SECURITY.md "Content"): the payloads of
tests/app/test_xss_payloads.py are posted as comments and used as group and folder names,
group descriptions, document titles and people's names; the pages that show them are opened in
Chromium. No dialog may fire (page.on("dialog") records any), no script may run (a page error
or a set ``window.__xss`` fails too), and the content area may hold no injected element: inline
scripts, SVG, frames, objects, event-handler attributes, or links and sources with a
javascript:/data:/vbscript: scheme."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.app.test_xss_payloads import PAYLOADS
from tests.browser.test_documents import Browsers, expect_ok
from tests.live import Client, LiveServer

pytestmark = pytest.mark.browser
API = "/api/v1"

# Everything a payload could leave behind in the content area (main).
INJECTED = """() => {
  const main = document.querySelector("main") || document.body;
  const found = [];
  const bad = "script:not([src]), script[src]:not([src^='/static/']), img[onerror], svg, iframe, "
    + "object, embed, frame, base, meta, link, style, math, details[ontoggle], "
    + "form[action^='javascript']";
  main.querySelectorAll(bad).forEach((el) => found.push(el.outerHTML.slice(0, 120)));
  main.querySelectorAll("*").forEach((el) => {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\\u0000-\\u0020]/g, "").toLowerCase();
      if (name.startsWith("on") || name === "style" || name === "srcdoc") {
        found.push(el.tagName + " " + name);
      }
      if (["href", "src", "action", "formaction", "data", "xlink:href", "poster"].includes(name)
          && /^(javascript|data|vbscript):/.test(value)) {
        found.push(el.tagName + " " + name + "=" + value.slice(0, 40));
      }
    }
  });
  if (window.__xss) found.push("window.__xss set");
  return found;
}"""


@pytest.fixture
def browsers(chromium: Browser, server: LiveServer) -> Iterator[Browsers]:
    made = Browsers(chromium, server)
    yield made
    made.close()
    assert made.dialogs.seen == [], made.dialogs.seen
    assert made.errors == [], made.errors


def one_line(payload: str) -> str:
    return " ".join(payload.split())[:110]


def accepted(response: Any) -> bool:
    return response.status_code in (200, 201)


def hostile_person(browsers: Browsers, name: str) -> Client:
    client = browsers.server.client()
    client.sign_up(name, email=f"x-{uuid.uuid4().hex[:10]}@example.nl")
    browsers.clients.append(client)
    return client


def check(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, path
    page.wait_for_load_state("load")
    found = page.evaluate(INJECTED)
    assert found == [], f"{path}: {found}"


def test_payloads_are_inert_everywhere(browsers: Browsers) -> None:
    assert len(PAYLOADS) >= 30
    alice = browsers.person("Alice")
    names = [one_line(p) for p in PAYLOADS]
    people = [hostile_person(browsers, n) for n in
              ('<img src=x onerror=alert(1)>"Mal', "<svg onload=alert(2)>", names[0])]
    group = expect_ok(alice.post(f"{API}/groups", json={
        "name": names[2], "description": PAYLOADS[3][:1000], "access": "closed"}))
    for person in people:
        assert person.user is not None
        expect_ok(alice.post(f"{API}/groups/{group['id']}/members",
                             json={"email": person.user["email"], "role": "member"}))

    # Groups (names and descriptions) on the dashboard; folders and notes by payload.
    made_groups = sum(accepted(alice.post(f"{API}/groups", json={
        "name": name, "description": payload, "access": "closed"}))
        for name, payload in zip(names, PAYLOADS, strict=True))
    assert made_groups >= 30
    root = group["root_folder_id"]
    made_folders = sum(accepted(alice.post(f"{API}/folders/{root}/folders",
                                           json={"name": name})) for name in names)
    assert made_folders >= 30
    note = expect_ok(alice.post(f"{API}/folders/{root}/notes", json={"title": names[1]}))
    file = expect_ok(alice.post(f"{API}/folders/{root}/files", files={
        "file": ("<img src=x onerror=alert(1)>.txt", b"x\n", "text/plain")}))

    # Every payload as a comment, spread over the hostile people (the per-minute limit), with a
    # mention of Alice so she gets notifications with excerpts and names.
    assert alice.user is not None
    posters = [*people, alice]
    for i, payload in enumerate(PAYLOADS):
        target = note["id"] if i % 2 else file["id"]
        body = payload + (f"\n\n@[x](user:{alice.user['id']})" if i % 3 == 0 else "")
        expect_ok(posters[i % len(posters)].post(f"{API}/documents/{target}/comments",
                                                 json={"body": body}))
    thread = expect_ok(alice.get(f"{API}/documents/{file['id']}/comments"), 200)["comments"][0]
    expect_ok(people[0].post(f"{API}/documents/{file['id']}/comments",
                             json={"body": PAYLOADS[2], "parent_id": thread["id"]}))

    page = browsers.page(alice)
    page.add_init_script("window.alert = window.confirm = window.prompt = "
                         "function () { window.__xss = true; };")
    # The replaced functions are only a backstop: the dialog listener is the real check, so
    # also run one page without them.
    plain = browsers.page(people[0])
    check(plain, f"/documents/{file['id']}")
    # The inspector itself sees an injected handler (so an empty answer means something).
    plain.evaluate("() => { const i = document.createElement('img');"
                   " i.setAttribute('onerror', 'x'); document.querySelector('main').append(i); }")
    assert plain.evaluate(INJECTED) != []
    for path in ("/", f"/groups/{group['id']}", f"/folders/{root}", f"/documents/{file['id']}",
                 f"/documents/{note['id']}", f"/documents/{file['id']}/discussion",
                 "/notifications", f"/groups/{group['id']}/activity", "/profile",
                 f"/groups/{group['id']}/trash"):
        check(page, path)
    # The live refresh inserts the fragment: post once more while the page is open.
    page.goto(f"/documents/{file['id']}")
    page.wait_for_selector("[data-discussion][data-live='connected']")
    expect_ok(people[1].post(f"{API}/documents/{file['id']}/comments",
                             json={"body": PAYLOADS[5]}))
    page.wait_for_selector("[data-discussion][data-refreshed]")
    assert page.evaluate(INJECTED) == []
