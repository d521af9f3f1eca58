"""Housekeeping: version thinning (``versions_to_thin`` on synthetic versions, tier by tier)
and the purge of expired trash through a real database."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.main import create_app
from app.models import AuditEvent, Blob, Document, DocumentVersion, Folder
from app.services.documents import group_usage
from app.services.maintenance import purge_expired_trash, versions_to_thin
from app.settings import Settings

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(weeks=1)


def slot_start(moment: datetime, slot: timedelta) -> datetime:
    """Start of the epoch-aligned slot holding ``moment`` (how the thinner buckets time)."""
    seconds = slot.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, UTC)


def make_versions(*ages: timedelta, labels: dict[int, str] | None = None,
                  restored: dict[int, int] | None = None) -> list[DocumentVersion]:
    """Versions numbered 1.. in the order given (oldest first), ``ages`` before NOW."""
    labels, restored = labels or {}, restored or {}
    return [DocumentVersion(number=n, created_at=NOW - age, label=labels.get(n),
                            restored_from=restored.get(n), blob_id=f"b{n}")
            for n, age in enumerate(ages, start=1)]


def dropped(versions: list[DocumentVersion], current: int | None = None) -> list[int]:
    current = current if current is not None else max(v.number for v in versions)
    return sorted(v.number for v in versions_to_thin(versions, current, NOW))


# -- tiers ---------------------------------------------------------------------------------

def test_everything_from_the_last_day_is_kept() -> None:
    versions = make_versions(*(timedelta(hours=23, minutes=59) - i * timedelta(minutes=7)
                               for i in range(200)))
    assert dropped(versions) == []


def test_one_per_hour_between_one_and_seven_days() -> None:
    hour = slot_start(NOW - 3 * DAY, HOUR)
    other_hour = slot_start(NOW - 5 * DAY, HOUR)
    versions = make_versions(
        NOW - (other_hour + timedelta(minutes=1)),  # 1: alone in its hour → kept
        NOW - (hour + timedelta(minutes=5)),   # 2: same hour as 3 and 4 → dropped
        NOW - (hour + timedelta(minutes=20)),  # 3: dropped
        NOW - (hour + timedelta(minutes=50)),  # 4: newest of its hour → kept
        timedelta(hours=2),  # 5: current
    )
    assert dropped(_renumber_by_age(versions)) == [2, 3]


def test_one_per_day_between_seven_and_thirty_days() -> None:
    day = slot_start(NOW - 10 * DAY, DAY)
    versions = make_versions(
        NOW - (day + 1 * HOUR), NOW - (day + 9 * HOUR), NOW - (day + 23 * HOUR),  # one day
        NOW - (day + DAY + 2 * HOUR),  # the next day, alone
        # The hourly tier: 10:20 and 10:50 six days ago share an hour.
        timedelta(days=6, hours=1, minutes=40), timedelta(days=6, hours=1, minutes=10),
        timedelta(minutes=5),
    )
    assert dropped(_renumber_by_age(versions)) == [1, 2, 5]


def test_one_per_week_after_thirty_days() -> None:
    week = slot_start(NOW - 60 * DAY, WEEK)
    versions = make_versions(
        NOW - (week - DAY),  # the week before, alone
        NOW - (week + 1 * HOUR), NOW - (week + 3 * DAY), NOW - (week + 6 * DAY),  # one week
        NOW - (week + WEEK + DAY),  # the next week, alone
        timedelta(minutes=1),
    )
    assert dropped(_renumber_by_age(versions)) == [2, 3]


def test_current_labelled_and_restored_from_versions_are_always_kept() -> None:
    week = slot_start(NOW - 90 * DAY, WEEK)
    ages = [NOW - (week + i * HOUR) for i in range(1, 7)]  # six versions in one week slot
    versions = make_versions(*ages, timedelta(minutes=1),
                             labels={2: "Vastgesteld"}, restored={7: 3})
    versions = _renumber_by_age(versions)
    # 6 is the newest of the slot; 2 is labelled; 3 was restored by version 7; 4 is current
    # (an old version made current again by ``current``, as after a restore of history).
    assert dropped(versions, current=4) == [1, 5]


def test_thinning_invariants_on_random_histories() -> None:
    rng = random.Random(20260615)
    tiers = ((30 * DAY, WEEK), (7 * DAY, DAY), (DAY, HOUR))
    for _ in range(200):
        ages = sorted((timedelta(seconds=rng.randrange(0, 120 * 86400)) for _ in range(40)),
                      reverse=True)
        labels = {n: "x" for n in rng.sample(range(1, 41), 3)}
        versions = make_versions(*ages, labels=labels, restored={40: rng.randrange(1, 40)})
        current = 40
        gone = {v.number for v in versions_to_thin(versions, current, NOW)}
        protected = {current, *labels, versions[-1].restored_from}
        assert not gone & protected
        kept = [v for v in versions if v.number not in gone]
        slots: dict[tuple[int, float], list[DocumentVersion]] = {}
        for version in versions:
            age = NOW - version.created_at
            if age < DAY:
                assert version.number not in gone  # the last day is never thinned
                continue
            tier = next(i for i, (older, _) in enumerate(tiers) if age >= older)
            key = (tier, version.created_at.timestamp() // tiers[tier][1].total_seconds())
            slots.setdefault(key, []).append(version)
        for members in slots.values():
            survivors = [v for v in members if v in kept and v.number not in protected]
            newest = max(members, key=lambda v: v.created_at)
            assert newest in kept  # the newest of every slot survives
            assert len(survivors) <= 1, [v.number for v in survivors]


def _renumber_by_age(versions: list[DocumentVersion]) -> list[DocumentVersion]:
    """Numbers follow creation order, as they do for real uploads."""
    for number, version in enumerate(sorted(versions, key=lambda v: v.created_at), start=1):
        version.number = number
    return sorted(versions, key=lambda v: v.number)


# -- purge of expired trash, through the database ------------------------------------------

@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(Settings(data_dir=tmp_path / "d"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        account = {"email": "alice@example.nl", "name": "Alice",
                   "password": "correct horse battery staple"}
        assert (await client.post("/api/v1/users", json=account)).status_code == 201
        assert (await client.post("/api/v1/session", json={
            "email": account["email"], "password": account["password"]})).status_code == 200
        csrf = (await client.get("/api/v1/session")).json()["csrf_token"]
        client.headers["X-CSRF-Token"] = csrf
        yield app.state.runtime, client
    app.state.runtime.db.dispose()


@pytest.mark.anyio
@pytest.mark.parametrize("parent_first", [True, False], ids=["parent_first", "child_first"])
async def test_purge_expired_trash(site: tuple[Any, httpx.AsyncClient],
                                   parent_first: bool) -> None:
    runtime, client = site
    group = (await client.post("/api/v1/groups", json={"name": "G", "access": "closed"})).json()
    root = group["root_folder_id"]

    async def folder(parent: str, name: str) -> str:
        made = await client.post(f"/api/v1/folders/{parent}/folders", json={"name": name})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    async def upload(folder_id: str, name: str, versions: int = 1) -> str:
        made = await client.post(f"/api/v1/folders/{folder_id}/files",
                                 files={"file": (name, name.encode() * 100, "x/y")})
        assert made.status_code == 201, made.text
        for n in range(2, versions + 1):
            again = await client.post(f"/api/v1/documents/{made.json()['id']}/versions",
                                      files={"file": (name, f"{name}{n}".encode() * 99, "x/y")})
            assert again.status_code == 201, again.text
        return str(made.json()["id"])

    live = await upload(root, "blijft.txt")
    old_trash = await upload(root, "oud.txt", versions=3)
    # An expired folder with an expired sub-folder inside it: both go, in one pass.
    outer = await folder(root, "buiten")
    inner = await folder(outer, "binnen")
    in_outer = await upload(outer, "a.txt")
    in_inner = await upload(inner, "b.txt", versions=2)
    assert (await client.delete(f"/api/v1/documents/{old_trash}")).status_code == 204
    assert (await client.delete(f"/api/v1/folders/{inner}")).status_code == 204
    assert (await client.delete(f"/api/v1/folders/{outer}")).status_code == 204
    db, settings = runtime.db, runtime.settings
    usage_before = _usage(db, settings, group["id"])

    # Trashed a moment ago: nothing has expired yet.
    assert purge_expired_trash(db, settings) == 0
    # Then something trashed later, which must survive the purge of the older trash.
    young_trash = await upload(root, "jong.txt")

    later = datetime.now(UTC) + timedelta(days=settings.trash_days, minutes=1)
    with db.write() as session:
        session.get_one(Document, young_trash).trashed_at = later - timedelta(days=1)
        # Both folders expired; which the purge meets first follows their trash times.
        long_ago = datetime.now(UTC) - timedelta(minutes=5)
        first, second = (outer, inner) if parent_first else (inner, outer)
        session.get_one(Folder, first).trashed_at = long_ago
        session.get_one(Folder, second).trashed_at = long_ago + timedelta(minutes=1)
    # 3 documents (one trashed itself, two inside the folders) and 2 folders.
    assert purge_expired_trash(db, settings, now=later) == 5

    with db.read() as session:
        remaining = set(session.scalars(select(Document.id)))
        assert remaining == {live, young_trash}
        assert session.get(Folder, outer) is None and session.get(Folder, inner) is None
        for doc_id in (old_trash, in_outer, in_inner):
            left = session.scalar(select(func.count()).select_from(DocumentVersion)
                                  .where(DocumentVersion.document_id == doc_id))
            assert left == 0
        # Blob rows of purged files are gone (the quota frees up; files follow via GC).
        assert session.scalar(select(func.count()).select_from(Blob)) == 2
        assert group_usage(session, settings, group["id"]) < usage_before
        # Audited as nobody's act: the trashed document and the outer folder (the inner one
        # too when it expired on its own first).
        purged = {(e.action, e.object_id) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.actor_id.is_(None),
                                     AuditEvent.action.like("%.purged")))}
        expected = {("document.purged", old_trash), ("folder.purged", outer)}
        assert purged == (expected if parent_first else expected | {("folder.purged", inner)})
    assert (await client.get(f"/api/v1/documents/{live}/content")).status_code == 200
    assert purge_expired_trash(db, settings, now=later) == 0  # idempotent


def _usage(db: Any, settings: Any, group_id: str) -> int:
    with db.read() as session:
        return group_usage(session, settings, group_id)
