"""The access matrix for search (SECURITY.md, "Search" and "Authorization"): every role × every
kind of placement, through the API, on a server of this module's own (its first account is the
site admin). The filter sits inside the query, so for a role that may not read a document it is
not only missing from the hits: it counts in no total (nor in any filtered total, the counts a
facet would show), yields no snippet or title, and no spelling suggestion is drawn from it.

The world: a closed group owned by ``owner``; ``gadmin`` is admin; ``member``, ``viewer`` and
``editor`` are members; ``requester`` asked to join (pending); ``outsider`` is signed in and in
no group; ``siteadmin`` registered first and is in no group (site admins read content only as
members, app/access.py). Folders under the root: ``open`` (open), ``closed`` (closed: viewer
listed as viewer, editor as editor) and ``nested`` (closed inside ``closed``, only editor
listed); ``trashed`` is a document of the open folder in the trash. Each placement holds a note
and a text file with the placement's secret word and a word common to all.

Then access changes take effect at once, without re-indexing: a person taken off a closed
folder's list, a person added to it, a member removed from the group, a document moved into a
closed folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.app.helpers import (
    API,
    add_member,
    expect,
    make_folder,
    make_group,
    set_access,
    uid_of,
    uploaded,
)
from tests.app.test_search_api import (
    ids,
    note,
    search,
    settled,
    wait_found,
    wait_search,
    word,
)
from tests.live import Client, running_server, unique

ROLES = ("outsider", "requester", "member", "viewer", "editor", "gadmin", "owner", "siteadmin")
PLACES = ("open", "closed", "nested", "trashed")
READS: dict[str, set[str]] = {
    "outsider": set(),
    "requester": set(),
    "member": {"open"},
    "viewer": {"open", "closed"},
    "editor": {"open", "closed", "nested"},
    "gadmin": {"open", "closed", "nested"},
    "owner": {"open", "closed", "nested"},
    "siteadmin": set(),
}


def misspell(secret: str) -> str:
    """One letter dropped from the random part: within the corrector's reach, matching nothing."""
    return secret[:-4] + secret[-3:]


@dataclass
class World:
    people: dict[str, Client]
    group: dict[str, Any]
    folders: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # place -> its secret word
    docs: dict[str, list[str]] = field(default_factory=dict)  # place -> [note id, file id]
    common: str = ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("search-matrix") / "data"
    with running_server(data_dir) as server:
        people: dict[str, Client] = {}
        for role in ("siteadmin", *(r for r in ROLES if r != "siteadmin")):
            people[role] = server.client()
            people[role].sign_up(role.capitalize())
        assert people["siteadmin"].user and people["siteadmin"].user["is_site_admin"]
        owner = people["owner"]
        group = make_group(owner, unique("matrix"))
        add_member(owner, group["id"], people["gadmin"], "admin")
        for role in ("member", "viewer", "editor"):
            add_member(owner, group["id"], people[role])
        joined = expect(people["requester"].post(f"{API}/groups/{group['id']}/join"), 200)
        assert joined == {"state": "requested"}
        made = World(people=people, group=group, common=word("gedeeld"))
        root = group["root_folder_id"]
        made.folders["open"] = make_folder(owner, root, "Open", "open")["id"]
        made.folders["closed"] = make_folder(
            owner, root, "Dicht", members=[(people["viewer"], "viewer"),
                                           (people["editor"], "editor")])["id"]
        made.folders["nested"] = make_folder(
            owner, made.folders["closed"], "Dieper", members=[(people["editor"], "editor")])["id"]
        made.folders["trashed"] = made.folders["open"]
        for place in PLACES:
            secret = made.secrets[place] = word("geheim")
            text = f"Over {place}: {secret} en {made.common}."
            made.docs[place] = [
                note(owner, made.folders[place], f"Nota {secret}", text)["id"],
                uploaded(owner, made.folders[place], f"{place}.txt", text.encode(),
                       "text/plain")["id"],
            ]
        for doc_id in made.docs["open"] + made.docs["closed"] + made.docs["nested"]:
            wait_found(owner, made.common, doc_id)
        wait_found(owner, made.secrets["trashed"], made.docs["trashed"][1])
        for doc_id in made.docs["trashed"]:
            expect(owner.delete(f"{API}/documents/{doc_id}"), 204)
        settled(owner, made.folders["open"])  # the trash reached the index too
        try:
            yield made
        finally:
            for client in people.values():
                client.close()


def readable_docs(world: World, role: str) -> set[str]:
    return {doc for place in READS[role] for doc in world.docs[place]}


def leaked_secrets(world: World, role: str, body: dict[str, Any]) -> list[str]:
    """Secret words of places ``role`` may not read that appear anywhere in a response."""
    text = json.dumps(body)
    return [place for place in PLACES
            if place not in READS[role] and world.secrets[place] in text]


@pytest.mark.parametrize("role", ROLES)
def test_results_and_totals_hold_only_readable_documents(world: World, role: str) -> None:
    client = world.people[role]
    expected = readable_docs(world, role)
    found = search(client, world.common, limit=100)
    assert set(ids(found)) == expected and found["total"] == len(expected), found
    assert found["suggestions"] == {} and found["corrected_query"] is None
    assert not leaked_secrets(world, role, found)
    for hit in found["results"]:
        assert f"<mark>{world.common}</mark>" in hit["snippet"], hit
    # Filtered totals (what facet counts would show) count only readable documents too.
    for kind in ("note", "file"):
        by_kind = search(client, world.common, kind=kind, limit=100)
        assert by_kind["total"] == len(expected) // 2, (kind, by_kind)
        assert {h["kind"] for h in by_kind["results"]} <= {kind}
    by_group = search(client, world.common, group=world.group["id"], limit=100)
    assert by_group["total"] == len(expected)
    # Paging does not reveal more: a single-hit page still has the readable total.
    page = search(client, world.common, limit=1)
    assert page["total"] == len(expected) and len(page["results"]) == min(1, len(expected))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("place", PLACES)
def test_each_placement_by_its_own_word(world: World, role: str, place: str) -> None:
    client = world.people[role]
    readable = place in READS[role]
    expected = set(world.docs[place]) if readable else set()
    found = search(client, world.secrets[place])
    assert set(ids(found)) == expected and found["total"] == len(expected), found
    assert not leaked_secrets(world, role, found)
    # Narrowing to the document's folder never widens.
    in_folder = search(client, world.secrets[place], folder=world.folders[place])
    assert set(ids(in_folder)) == expected and in_folder["total"] == len(expected)
    # Title words are searched too (the note's title holds the secret).
    prefix = search(client, f"{world.secrets[place][:12]}*")
    assert set(ids(prefix)) == expected and prefix["total"] == len(expected)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("place", PLACES)
def test_a_suggestion_comes_only_from_a_readable_document(world: World, role: str,
                                                          place: str) -> None:
    secret = world.secrets[place]
    typo = misspell(secret)
    found = search(world.people[role], typo)
    assert found["total"] == 0 and found["results"] == []
    if place in READS[role]:
        assert found["suggestions"] == {typo: secret}, found
        assert found["corrected_query"] == secret
    else:
        assert found["suggestions"] == {} and found["corrected_query"] is None, found
    assert not leaked_secrets(world, role, found)


def test_access_changes_take_effect_at_once(world: World) -> None:
    """No re-index between a change and the next search: access is never copied into the
    index, the folders a person may read are computed at query time."""
    owner, viewer, member = (world.people[r] for r in ("owner", "viewer", "member"))
    group = make_group(owner, unique("wissel"))
    add_member(owner, group["id"], viewer)
    add_member(owner, group["id"], member)
    root = group["root_folder_id"]
    closed = make_folder(owner, root, "Dicht", members=[(viewer, "viewer")])["id"]
    open_folder = make_folder(owner, root, "Open", "open")["id"]
    secret, moving_word = word("wissel"), word("verhuis")
    doc = note(owner, closed, "Stukken", secret)["id"]
    moving = note(owner, open_folder, "Verhuizing", moving_word)["id"]
    wait_found(viewer, secret, doc)
    wait_found(member, moving_word, moving)
    assert search(member, secret)["total"] == 0

    # Off the folder's list: the next search finds nothing of it.
    expect(set_access(owner, closed, "closed", []), 200)
    assert search(viewer, secret) == {"total": 0, "results": [], "suggestions": {},
                                      "corrected_query": None}
    assert search(viewer, misspell(secret))["suggestions"] == {}
    # On the list: found at once.
    expect(set_access(owner, closed, "closed", [(member, "viewer")]), 200)
    assert ids(search(member, secret)) == [doc]
    # Out of the group: nothing, at once.
    expect(owner.delete(f"{API}/groups/{group['id']}/members/{uid_of(member)}"), 204)
    assert search(member, secret)["total"] == 0
    assert search(member, moving_word)["total"] == 0
    # A document moved into a closed folder is gone for those outside it at once, although
    # the index learns its new folder only when the worker gets to it.
    wait_found(viewer, moving_word, moving)
    expect(owner.patch(f"{API}/documents/{moving}", json={"folder_id": closed}), 200)
    assert search(viewer, moving_word)["total"] == 0
    assert ids(wait_search(owner, moving_word, lambda f: f["total"] == 1)) == [moving]


# -- planted probes (issue 9, items 11-12) -------------------------------------------------

def probe_view(client: Client, queries: list[str]) -> dict[str, Any]:
    """Everything a search answers, query by query: hits, order, scores, snippets, totals,
    suggestions."""
    return {q: search(client, q, limit=100) for q in queries}


def test_planted_probes_learn_nothing_of_another_groups_documents(world: World) -> None:
    """The outsider plants probe words in notes of a group of their own; the owner's closed
    folder (another group) then gains a document holding them -- in its title, its text and
    a comment -- next to a flood of words with the outsider's prefix and near the outsider's
    typo. Scores, order, prefix expansions and suggestions stay exactly what they were."""
    prober, owner = world.people["outsider"], world.people["owner"]
    own = make_group(prober, unique("sonde"))
    folder = own["root_folder_id"]
    p1, p2 = word("sonde"), word("toets")
    family = word("fam")
    target = word("perc")  # the readable word a typo should be corrected to
    typo = target[:-2] + "aa"  # two edits away from it
    note(prober, folder, f"Peil {p1}", f"{p1} {p1} {p2} en wat tekst over dijken")
    note(prober, folder, "Tweede peil", f"{p2} {p2} {p2} {p1} {family}zz {target}")
    last = note(prober, folder, "Derde", f"{p2} kort")["id"]
    wait_found(prober, p2, last)
    queries = [p1, p2, f"{p1} {p2}", f"{family}*", f"{family}z*", typo, p1[:-1]]
    before = probe_view(prober, queries)
    assert [h["document_id"] for h in before[f"{family}*"]["results"]]
    assert before[typo]["suggestions"] == {typo: target}

    # 300 words sharing the prefix (alphabetically before the outsider's "zz": by index-wide
    # frequency they would take the 256 expansions) and 44 words one edit from the typo.
    flood = [f"{family}{a}{b}" for a in "abcdefghijklm" for b in "abcdefghijklmnopqrstuvwx"]
    letters = "bcdefghijklmnopqrstuvwxyz"
    near = [typo[:-1] + c for c in letters] + [typo[:-2] + c + "a" for c in letters[:19]]
    closed = world.folders["closed"]
    hidden = note(owner, closed, f"{p1} {p2} geheim",
                  " ".join([p1] * 20 + [p2] * 5 + flood + near))["id"]
    expect(owner.post(f"{API}/documents/{hidden}/comments",
                      json={"body": f"{p1} {p2} {p1[:-1]}"}), 201)
    wait_found(owner, p1[:-1], hidden)  # the comment is indexed too
    settled(owner, world.folders["open"])
    assert probe_view(prober, queries) == before

