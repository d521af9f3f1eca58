"""The audit log as pages: a group's for its owners and admins, the site's for site
administrators; filters (action, person, dates), paging by ``before``, and the filtered
entries as a CSV download that spreadsheets cannot run as formulas."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.app.helpers import (
    API,
    add_member,
    email_of,
    expect,
    make_folder,
    make_group,
    missing_id,
    set_access,
    uid_of,
)
from tests.live import running_server, unique
from tests.plugin import Cast, Site

ROW = re.compile(r"<tr>\s*<td><time", re.S)


def rows_on(page: httpx.Response) -> int:
    assert page.status_code == 200, page.text[:400]
    return len(ROW.findall(page.text))


def defused(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text[:400]
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["cache-control"] == "no-store"
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_group_log_page_filters_pages_and_downloads(person: Cast, site: Site) -> None:
    alice, bob, carol, outsider = (person("Alice"), person("Bob"), person("Carol"),
                                   person("Outsider"))
    group = make_group(alice, unique("Audited"))
    gid = group["id"]
    add_member(alice, gid, bob)
    add_member(alice, gid, carol, "admin")
    for _ in range(26):  # 52 role changes: more than one page (50)
        for role in ("admin", "member"):
            expect(alice.patch(f"{API}/groups/{gid}/members/{uid_of(bob)}",
                               json={"role": role}), 200)
    # A name a spreadsheet would run as a formula if the CSV handed it over as it is.
    formula = site.client()
    try:
        formula.sign_up("=HYPERLINK(\"http://x\")", email=f"f-{uuid.uuid4().hex[:8]}@example.nl")
        add_member(carol, gid, formula)  # by Carol: one entry of hers
    finally:
        formula.close()
    everything = expect(alice.get(f"{API}/groups/{gid}/audit", params={"limit": 200}),
                        200)["events"]
    assert len(everything) == 55

    base = f"/groups/{gid}/audit"
    first = alice.get(base)
    assert rows_on(first) == 50
    assert "Auditlogboek van" in first.text and "Rol gewijzigd" in first.text  # Dutch default
    assert "Carol" in first.text and "Bob" in first.text  # names, not ids
    older = re.search(r'href="(/groups/[^"]*before=[^"]*)" rel="next"', first.text)
    assert older, "a link to the older entries"
    second = alice.get(older.group(1).replace("&amp;", "&"))
    assert rows_on(second) == 5 and 'rel="next"' not in second.text

    # Filters: action, person, dates ("to" takes in its whole day).
    assert rows_on(alice.get(base, params={"action": "group.member_added"})) == 3
    assert rows_on(alice.get(base, params={"person": uid_of(carol)})) == 1
    today = datetime.now(UTC).date()
    assert rows_on(alice.get(base, params={"from": today.isoformat(),
                                           "to": today.isoformat(),
                                           "action": "group.member_added"})) == 3
    yesterday = (today - timedelta(days=1)).isoformat()
    empty = alice.get(base, params={"to": yesterday})
    assert rows_on(empty) == 0 and "Geen regels gevonden." in empty.text

    # The CSV: every entry that matches (no paging), names resolved, formulas defused.
    rows = csv_rows(alice.get(base, params={"format": "csv"}))
    # Newest first. Every cell is defused the same way, ids too (they may start with "-").
    assert [r["id"] for r in rows] == [defused(e["id"]) for e in everything]
    assert datetime.fromisoformat(rows[0]["at"]) == \
        datetime.fromisoformat(everything[0]["at"].replace("Z", "+00:00"))
    added = csv_rows(alice.get(base, params={"format": "csv", "action": "group.member_added"}))
    assert [r["action"] for r in added] == ["group.member_added"] * 3
    by_carol = added[0]
    assert by_carol["actor"] == "Carol" and by_carol["actor_id"] == uid_of(carol)
    assert by_carol["object"] == "'=HYPERLINK(\"http://x\")"
    assert by_carol["detail"] == '{"role": "member"}'

    # A group's log names its documents and folders; the site's log shows them as ids.
    folder = make_folder(alice, group["root_folder_id"], "Vertrouwelijk")
    assert set_access(alice, folder["id"], "closed", [(bob, "viewer")]).status_code == 200
    changed = csv_rows(alice.get(base, params={"format": "csv",
                                               "action": "folder.access_changed"}))
    assert [(r["object_type"], r["object_id"], r["object"]) for r in changed] == [
        ("folder", defused(folder["id"]), "Vertrouwelijk")]
    assert "Vertrouwelijk" in alice.get(base, params={"action": "folder.access_changed"}).text

    # Members read none of it; outsiders learn nothing; the page is linked for managers.
    assert bob.get(base).status_code == 403
    assert bob.get(base, params={"format": "csv"}).status_code == 403
    assert outsider.get(base, params={"format": "csv"}).status_code == 404
    assert outsider.get(f"/groups/{missing_id()}/audit").status_code == 404
    assert f'href="{base}"' in alice.get(f"/groups/{gid}").text
    assert f'href="{base}"' in carol.get(f"/groups/{gid}").text
    assert f'href="{base}"' not in bob.get(f"/groups/{gid}").text


def test_site_log_page_for_site_administrators(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as site:
        admin, someone = site.client(), site.client()
        try:
            admin.sign_up("Admin")  # the first account: site administrator
            someone.sign_up("Someone")
            stranger = site.client()
            assert stranger.sign_in(email_of(someone), "wrong password!").status_code == 401
            stranger.close()
            admin.http.cookies.set("plein_lang", "en")
            page = admin.get("/admin/audit")
            assert rows_on(page) >= 3
            assert "Audit log of the site" in page.text and "Sign-in failed" in page.text
            failed = admin.get("/admin/audit", params={"action": "session.login_failed"})
            assert rows_on(failed) == 1 and "Someone" in failed.text
            rows = csv_rows(admin.get("/admin/audit",
                                      params={"format": "csv", "person": uid_of(someone)}))
            assert {r["action"] for r in rows} == {"session.login"}
            assert all(r["actor"] == "Someone" for r in rows)
            assert 'href="/admin/audit"' in admin.get("/").text
            assert 'href="/admin/audit"' not in someone.get("/").text
            assert someone.get("/admin/audit").status_code == 403
            assert someone.get("/admin/audit", params={"format": "csv"}).status_code == 403
        finally:
            admin.close()
            someone.close()
