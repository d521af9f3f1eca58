"""Requiring two-step sign-in: owners of a closed group for its members, the site setting
``PLEIN_REQUIRE_TOTP_FOR_ADMINS`` for site administrators."""

from __future__ import annotations

from pathlib import Path

from tests.app.helpers import (
    API,
    add_member,
    expect,
    expect_error,
    make_folder,
    make_group,
    uid_of,
    uploaded,
)
from tests.app.test_twostep import enrol
from tests.live import running_server, unique
from tests.plugin import Cast


def test_members_without_two_step_sign_in_cannot_open_a_group_that_requires_it(
        person: Cast) -> None:
    alice, bob, carol = person("Alice"), person("Bob"), person("Carol")
    group = make_group(alice, unique("Secret"))
    gid, root = group["id"], group["root_folder_id"]
    add_member(alice, gid, bob)
    add_member(alice, gid, carol, "admin")
    folder = make_folder(alice, root, "Stukken")
    doc = uploaded(alice, folder["id"], "memo.txt", b"vertrouwelijk")

    # Only an owner who has it on may require it.
    expect_error(alice.patch(f"{API}/groups/{gid}", json={"require_totp": True}), 403,
                 "totp_required")
    enrol(alice)
    expect_error(carol.patch(f"{API}/groups/{gid}", json={"require_totp": True}), 403,
                 "owner_only")
    changed = expect(alice.patch(f"{API}/groups/{gid}", json={"require_totp": True}), 200)
    assert changed["require_totp"] is True and changed["my_role"] == "owner"

    # Bob and Carol (an admin, too) are asked to enrol; the content is not theirs meanwhile.
    for member in (bob, carol):
        expect_error(member.get(f"{API}/groups/{gid}"), 403, "totp_required")
        expect_error(member.get(f"{API}/folders/{root}"), 404)
        expect_error(member.get(f"{API}/documents/{doc['id']}"), 404)
        expect_error(member.get(f"{API}/documents/{doc['id']}/content"), 404)
    listed = {g["id"]: g for g in expect(bob.get(f"{API}/groups"), 200)}
    assert listed[gid]["my_role"] is None and listed[gid]["require_totp"] is True

    enrol(bob)
    assert expect(bob.get(f"{API}/groups/{gid}"), 200)["my_role"] == "member"
    expect(bob.get(f"{API}/documents/{doc['id']}"), 200)
    expect_error(carol.get(f"{API}/documents/{doc['id']}"), 404)

    # Opening the group lifts the requirement (it is for closed groups only).
    expect(alice.patch(f"{API}/groups/{gid}", json={"access": "open"}), 200)
    expect(carol.get(f"{API}/documents/{doc['id']}"), 200)
    expect(alice.patch(f"{API}/groups/{gid}", json={"require_totp": False}), 200)
    expect_error(alice.patch(f"{API}/groups/{gid}", json={"require_totp": True}), 422,
                 "group_not_closed", "require_totp")


def test_the_group_page_leads_a_member_without_it_to_enrolment(person: Cast) -> None:
    alice, bob = person("Alice"), person("Bob")
    group = make_group(alice, unique("Secret"))
    add_member(alice, group["id"], bob)
    enrol(alice)
    expect(alice.patch(f"{API}/groups/{group['id']}", json={"require_totp": True}), 200)
    page = bob.http.get(f"/groups/{group['id']}")
    assert page.status_code == 403
    assert 'href="/profile#two-step"' in page.text and group["name"] in page.text
    assert alice.http.get(f"/groups/{group['id']}").status_code == 200


def test_site_administrators_need_it_when_the_site_says_so(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", {"PLEIN_REQUIRE_TOTP_FOR_ADMINS": "true"}) as site:
        admin, owner, member = site.client(), site.client(), site.client()
        admin.sign_up("Admin")
        owner.sign_up("Owner")
        member.sign_up("Member")
        try:
            group = make_group(owner, unique("Orphan"))
            add_member(owner, group["id"], member)
            members = f"{API}/groups/{group['id']}/members"
            expect_error(admin.get(members), 403, "totp_required")
            expect_error(admin.patch(f"{members}/{uid_of(member)}", json={"role": "owner"}),
                         403, "totp_required")
            enrol(admin)
            expect(admin.get(members), 200)
            expect(admin.patch(f"{members}/{uid_of(member)}", json={"role": "owner"}), 200)
        finally:
            for client in (admin, owner, member):
                client.close()
