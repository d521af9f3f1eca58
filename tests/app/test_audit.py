"""The audit log (API.md, "Identity and audit"): what is recorded, in the same transaction as
the act; who reads it (group owners/admins, site administrators; a member or outsider
reads none of it); retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.app.helpers import (
    API,
    add_member,
    email_of,
    expect,
    expect_error,
    make_folder,
    make_group,
    missing_id,
    set_access,
    uid_of,
    uploaded,
)
from tests.live import Client, running_server, unique
from tests.plugin import Cast, Site

PASSWORD = "correct horse battery staple"


def group_log(client: Client, gid: str, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = expect(client.get(f"{API}/groups/{gid}/audit",
                                                     params=params), 200)["events"]
    return events


def test_group_acts_are_recorded_and_read_by_its_managers_only(person: Cast) -> None:
    alice, bob, carol, outsider = (person("Alice"), person("Bob"), person("Carol"),
                                   person("Outsider"))
    group = make_group(alice, unique("Audited"))
    gid, root = group["id"], group["root_folder_id"]
    add_member(alice, gid, bob)
    add_member(alice, gid, carol, "admin")
    expect(alice.patch(f"{API}/groups/{gid}/members/{uid_of(bob)}", json={"role": "admin"}),
           200)
    expect(alice.patch(f"{API}/groups/{gid}/members/{uid_of(bob)}", json={"role": "member"}),
           200)
    folder = make_folder(alice, root, "Dossiers")
    assert set_access(alice, folder["id"], "closed", [(bob, "viewer")]).status_code == 200
    doc = uploaded(alice, root, "memo.txt", b"een")
    expect(alice.post(f"{API}/documents/{doc['id']}/versions",
                      files={"file": ("memo.txt", b"twee")}), 201)
    expect(alice.post(f"{API}/documents/{doc['id']}/versions/1/restore"), 201)
    expect(alice.delete(f"{API}/documents/{doc['id']}"), 204)
    expect(alice.delete(f"{API}/groups/{gid}/members/{uid_of(carol)}"), 204)

    events = group_log(alice, gid)
    assert [e["action"] for e in reversed(events)] == [
        "group.member_added", "group.member_added", "group.role_changed", "group.role_changed",
        "folder.access_changed", "document.version_restored", "document.trashed",
        "group.member_removed"]
    for event in events:
        assert set(event) == {"id", "at", "actor_id", "action", "object_type", "object_id",
                              "ip", "detail"}
        assert event["actor_id"] == uid_of(alice)
    access_change = next(e for e in events if e["action"] == "folder.access_changed")
    assert access_change["object_id"] == folder["id"]
    assert access_change["detail"] == {"access": "closed",
                                       "members": [{"user_id": uid_of(bob), "role": "viewer"}]}
    # Newest first, pages by ``before``.
    first = group_log(alice, gid, limit=3)
    rest = group_log(alice, gid, before=first[-1]["at"])
    assert [e["id"] for e in first + rest] == [e["id"] for e in events]

    # A member reads none of it (403: they know the group); an outsider, nothing (404).
    expect_error(bob.get(f"{API}/groups/{gid}/audit"), 403)
    expect_error(outsider.get(f"{API}/groups/{gid}/audit"), 404)
    expect_error(outsider.get(f"{API}/groups/{missing_id()}/audit"), 404)
    expect_error(bob.get(f"{API}/audit"), 403)


def test_a_refused_act_leaves_no_entry(person: Cast) -> None:
    alice, bob = person("Alice"), person("Bob")
    group = make_group(alice, unique("Audited"))
    add_member(alice, group["id"], bob)
    before = group_log(alice, group["id"])
    expect_error(alice.patch(f"{API}/groups/{group['id']}/members/{uid_of(alice)}",
                             json={"role": "member"}), 409, "last_owner")
    assert group_log(alice, group["id"]) == before


def test_sign_ins_and_failures_are_in_the_site_log(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", {"PLEIN_AUDIT_DAYS": "30"}) as site:
        admin, person = site.client(), site.client()
        try:
            admin.sign_up("Admin")
            person.sign_up("Person")
            elsewhere = site.client()
            assert elsewhere.sign_in(email_of(person), "wrong password!").status_code == 401
            assert elsewhere.sign_in(email_of(person), PASSWORD).status_code == 200
            elsewhere.close()
            events = expect(admin.get(f"{API}/audit"), 200)["events"]
            logins = [e for e in events if e["object_id"] == uid_of(person)]
            assert [e["action"] for e in logins][:2] == ["session.login",
                                                         "session.login_failed"]
            assert logins[1]["detail"] == {"email": email_of(person), "reason": "password"}
            assert logins[0]["ip"] == "127.0.0.1" and logins[0]["detail"]["method"] == \
                "password"
            expect_error(person.get(f"{API}/audit"), 403)
            # Retention: entries older than PLEIN_AUDIT_DAYS go at the next maintenance run.
            with sqlite3.connect(site.data_dir / "plein.sqlite3") as db:
                db.execute("update audit_events set at = datetime(at, '-31 days') "
                           "where action = 'session.login_failed'")
                count = db.execute("select count(*) from audit_events").fetchone()[0]
        finally:
            admin.close()
            person.close()
    from app.db import Database
    from app.services import audit

    database = Database(f"sqlite:///{tmp_path / 'data' / 'plein.sqlite3'}")
    with database.write() as session:
        assert audit.expire(session, 30) == 1
    with sqlite3.connect(tmp_path / "data" / "plein.sqlite3") as db:
        assert db.execute("select count(*) from audit_events").fetchone()[0] == count - 1
    database.dispose()


def test_outsiders_see_no_site_log(anonymous: Client, site: Site) -> None:
    expect_error(anonymous.get(f"{API}/audit"), 401)
    expect_error(anonymous.get(f"{API}/groups/{missing_id()}/audit"), 401)


def downloads_in(client: Client, gid: str) -> list[dict[str, Any]]:
    return [e for e in group_log(client, gid, limit=200) if e["action"] == "document.downloaded"]


def test_downloads_are_recorded_once_per_person_version_and_hour(person: Cast) -> None:
    alice, bob, outsider = person("Alice"), person("Bob"), person("Outsider")
    group = make_group(alice, unique("Downloads"))
    gid, root = group["id"], group["root_folder_id"]
    add_member(alice, gid, bob)
    doc = uploaded(alice, root, "begroting.txt", b"een")
    expect(alice.post(f"{API}/documents/{doc['id']}/versions",
                      files={"file": ("begroting.txt", b"twee")}), 201)
    assert downloads_in(alice, gid) == []  # uploading is not downloading

    # Recorded after access is granted and before the body is sent.
    with bob.http.stream("GET", f"{API}/documents/{doc['id']}/content") as response:
        assert response.status_code == 200
        recorded = downloads_in(alice, gid)
        assert [(e["actor_id"], e["object_id"], e["detail"]) for e in recorded] == [
            (uid_of(bob), doc["id"], {"version": 2, "format": None})]
        assert response.read() == b"twee"
    assert recorded[0]["ip"] == "127.0.0.1" and recorded[0]["object_type"] == "document"
    # Again within the hour (and a ranged part of it): nothing new; another version, or
    # another person: an entry each.
    assert bob.get(f"{API}/documents/{doc['id']}/content").content == b"twee"
    assert bob.get(f"{API}/documents/{doc['id']}/content",
                   headers={"Range": "bytes=0-1"}).status_code == 206
    assert bob.get(f"{API}/documents/{doc['id']}/versions/1/content").content == b"een"
    assert alice.get(f"{API}/documents/{doc['id']}/content").content == b"twee"
    # Refused reads leave nothing.
    expect_error(outsider.get(f"{API}/documents/{doc['id']}/content"), 404)
    expect_error(bob.get(f"{API}/documents/{doc['id']}/versions/9/content"), 404)
    assert [(e["actor_id"], e["detail"]["version"]) for e in downloads_in(alice, gid)] == [
        (uid_of(alice), 2), (uid_of(bob), 1), (uid_of(bob), 2)]

    # A note read as a file (here OpenDocument) is a download too.
    note = expect(alice.post(f"{API}/folders/{root}/notes", json={"title": "Notulen"}), 201)
    assert bob.get(f"{API}/documents/{note['id']}/content",
                   params={"format": "odt"}).status_code == 200
    latest = downloads_in(alice, gid)[0]
    assert (latest["object_id"], latest["detail"]) == (note["id"],
                                                       {"version": None, "format": "odt"})


def test_every_download_is_recorded_when_not_coalesced(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", {"PLEIN_AUDIT_DOWNLOAD_MINUTES": "0"}) as site:
        alice = site.client()
        try:
            alice.sign_up("Alice")
            group = make_group(alice, unique("Every"))
            doc = uploaded(alice, group["root_folder_id"], "a.txt", b"abc")
            for _ in range(3):
                assert alice.get(f"{API}/documents/{doc['id']}/content").content == b"abc"
            assert len(downloads_in(alice, group["id"])) == 3
        finally:
            alice.close()


def test_trash_restore_and_purge_are_recorded(person: Cast) -> None:
    alice = person("Alice")
    group = make_group(alice, unique("Prullenbak"))
    gid, root = group["id"], group["root_folder_id"]
    folder = make_folder(alice, root, "Oud")
    doc = uploaded(alice, root, "memo.txt", b"een")
    expect(alice.delete(f"{API}/documents/{doc['id']}"), 204)
    expect(alice.post(f"{API}/documents/{doc['id']}/restore"), 200)
    expect(alice.delete(f"{API}/folders/{folder['id']}"), 204)
    expect(alice.post(f"{API}/folders/{folder['id']}/restore"), 200)
    expect(alice.delete(f"{API}/folders/{folder['id']}"), 204)
    expect(alice.delete(f"{API}/folders/{folder['id']}/purge"), 204)

    events = [(e["action"], e["object_id"]) for e in reversed(group_log(alice, gid))]
    assert events == [
        ("document.trashed", doc["id"]), ("document.restored", doc["id"]),
        ("folder.trashed", folder["id"]), ("folder.restored", folder["id"]),
        ("folder.trashed", folder["id"]), ("folder.purged", folder["id"])]
