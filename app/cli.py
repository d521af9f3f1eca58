"""The ``plein`` command: serve, createuser, keys, db, export and import."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.errors import ConfigurationError, HTTPError
from app.settings import Settings


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings.from_env(data_dir=Path(args.data_dir) if args.data_dir else None, **extra)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.log_redact import install_on_root, uvicorn_log_config
    from app.main import create_app

    settings = _settings(args, host=args.host, port=args.port)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # No secret in any log line, at any level (tokens in sync URLs, cookies in debug output).
    install_on_root()
    app = create_app(settings)
    print(f"Plein is running at {settings.resolved_base_url}  (data: {settings.data_dir})",
          flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                log_config=uvicorn_log_config(),
                proxy_headers=args.proxy_headers, server_header=False,
                # The sync limits refuse big frames too; this stops them before buffering.
                ws_max_size=settings.sync_max_message_bytes + 1024,
                # Per-message deflate costs more CPU than it saves on small CRDT frames (the
                # sync benchmark: p99 ×3–50 with it), grows memory per socket, and compressing
                # untrusted input beside other content is a known side channel.
                ws_per_message_deflate=False)
    return 0


def cmd_createuser(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.bootstrap import prepare
    from app.models import User
    from app.schemas.accounts import UserCreate
    from app.services import accounts
    from app.services.passwords import Passwords

    settings = _settings(args)
    password = args.password or getpass.getpass("Password (at least 10 characters): ")
    UserCreate.model_validate({"email": args.email, "name": args.name, "password": password})
    db = prepare(settings).db
    # An operator may always create accounts, whatever the registration setting says.
    with db.write() as session:
        # Made by the operator: the address counts as verified.
        user = accounts.register(session, settings.replace(open_registration=True),
                                 Passwords(settings), email=args.email, name=args.name,
                                 password=password, by_operator=True).user
        assert user is not None  # noqa: S101 - by_operator refuses a taken address
        if args.admin:
            user.is_site_admin = True
        user_id = user.id
    with db.read() as session:
        created = session.scalar(select(User).where(User.id == user_id))
        assert created is not None  # noqa: S101 - just written
        print(f"created {created.email} ({created.id})" +
              (" as site administrator" if created.is_site_admin else ""))
    db.dispose()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.bootstrap import prepare

    prepare(_settings(args)).db.dispose()
    print("database is up to date")
    return 0


def _store(settings: Settings) -> tuple[Any, Any]:
    from app.bootstrap import prepare
    from storage import LocalBlobStore

    prepared = prepare(settings)
    return prepared, LocalBlobStore(settings.data_dir / "blobs", prepared.keys)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from app.services.maintenance import rotate_keys

    settings = _settings(args)
    prepared, _ = _store(settings)
    report = rotate_keys(prepared.db, prepared.keys, batch_size=args.batch_size,
                         notes_root=settings.data_dir / "notes")
    from app.services import audit

    # Rotation runs in many batches; its entry is written once the new key is in force.
    with prepared.db.write() as session:
        audit.record(session, "keys.rotated", actor_id=None, object_type="key",
                     object_id=report.new_key_id,
                     detail={"rewrapped": report.rewrapped, "resealed": report.resealed,
                             "retired": list(report.retired)})
    print(f"new active key {report.new_key_id}; rewrapped {report.rewrapped} data keys; "
          f"resealed {report.resealed} database values; "
          f"retired {', '.join(report.retired) or 'none'}")
    print("Running servers load the new key when they meet it; back up the key file now.")
    prepared.db.dispose()
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    from app.services.maintenance import fsck

    prepared, store = _store(_settings(args))
    report = fsck(prepared.db, store, prepared.keys)
    for blob_id, reason in report.damaged:
        print(f"DAMAGED {blob_id}: {reason}")
    for where, row_id, reason in report.damaged_values:
        print(f"DAMAGED {where} of row {row_id}: {reason}")
    for blob_id in report.orphans:
        print(f"orphan  {blob_id} (no database row; removed by maintenance after an hour)")
    print(f"checked {report.checked} blobs: {len(report.damaged)} damaged, "
          f"{len(report.orphans)} orphans")
    print(f"checked {report.values_checked} sealed database values: "
          f"{len(report.damaged_values)} damaged")
    prepared.db.dispose()
    return 0 if report.ok else 1


def cmd_maintenance(args: argparse.Namespace) -> int:
    from app.services.maintenance import run_once

    settings = _settings(args)
    prepared, store = _store(settings)
    run_once(prepared.db, settings, store)
    prepared.db.dispose()
    print("maintenance done")
    return 0


def _worker_deps(settings: Settings) -> Any:
    from app.services import search
    from indexer import SearchIndex, configure_workers

    prepared, store = _store(settings)
    configure_workers(workers=settings.extract_workers, max_jobs=settings.extract_worker_jobs)

    def note_state(document_id: str) -> bytes | None:
        # Outside the server the live room is not ours: read the note's latest saved
        # version (automatic versions follow edits within minutes).
        return search.latest_note_version(prepared.db, store, document_id)

    return search.WorkerDeps(db=prepared.db, settings=settings, store=store,
                             index=SearchIndex(settings.data_dir / "index", prepared.keys),
                             note_state=note_state)


def cmd_indexer(args: argparse.Namespace) -> int:
    """The indexing worker as its own process (set PLEIN_INDEXER=external on the servers)."""
    import time

    from app.services import search

    settings = _settings(args)
    deps = _worker_deps(settings)
    print("indexer running; Ctrl-C stops it", flush=True)
    try:
        while True:
            if not search.run_once(deps):
                time.sleep(settings.index_poll_ms / 1000)
    except KeyboardInterrupt:
        return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from app.services import search

    deps = _worker_deps(_settings(args))
    count = search.reindex(deps)
    print(f"reindexed {count} documents")
    return 0


def _with_rooms(settings: Settings, keys: Any, work: Any) -> Any:
    """Run ``work(manager)`` in a worker thread while a room manager of our own serves the
    data directory's notes (the server's is not ours to use from here)."""
    import anyio

    from app.services.documents import notes_root
    from sync import FileDocumentStore, RoomManager

    async def main() -> Any:
        manager = RoomManager(FileDocumentStore(notes_root(settings), keys),
                              settings.sync_limits())
        async with manager:
            try:
                return (await anyio.to_thread.run_sync(work, manager), None)
            except Exception as exc:
                # Raised outside the manager's task group: the caller sees the error itself,
                # not an exception group around it.
                return (None, exc)

    value, error = anyio.run(main)
    if error is not None:
        raise error
    return value


def cmd_export(args: argparse.Namespace) -> int:
    import os

    import anyio.from_thread

    from app.access import Access
    from app.errors import NotFound
    from app.models import Group
    from app.services import audit, group_export

    settings = _settings(args)
    prepared, store = _store(settings)
    out = Path(args.out)
    with prepared.db.read() as session:
        group = session.get(Group, args.group)
        if group is None:
            raise NotFound("No such group.")
        plan = group_export.plan_export(session, Access(session, None), group, whole=True,
                                        exported_by="plein export")
    with prepared.db.write() as session:
        audit.record(session, "group.exported", actor_id=None, object_type="group",
                     object_id=plan.group_id, group_id=plan.group_id, ip=None,
                     detail={"scope": plan.scope, "documents": plan.document_count,
                             "via": "command line"})

    def work(manager: Any) -> int:
        def note_state(document_id: str) -> bytes:
            state: bytes = anyio.from_thread.run(manager.snapshot_state, document_id)
            return state

        # Written beside the target and renamed at the end: a file at ``--out`` is complete.
        partial = out.with_name(f".{out.name}.partial")
        written = 0
        try:
            with partial.open("wb") as handle:
                for chunk in group_export.stream_archive(
                        plan, store, note_state, max_depth=settings.note_max_depth):
                    handle.write(chunk)
                    written += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            partial.replace(out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return written

    size = _with_rooms(settings, prepared.keys, work)
    print(f"exported {plan.document_count} documents ({size} bytes) to {out}")
    prepared.db.dispose()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import anyio.from_thread
    from sqlalchemy import select

    from app.errors import Unprocessable
    from app.models import User
    from app.services import audit, group_import
    from app.services.accounts import normalize_email

    settings = _settings(args)
    prepared, store = _store(settings)
    owner_id: str | None = None
    if args.owner:
        with prepared.db.read() as session:
            owner_id = session.scalar(select(User.id).where(
                User.email == normalize_email(args.owner)))
        if owner_id is None:
            raise Unprocessable(f"No account has the e-mail address {args.owner}.",
                                code="unknown_owner")

    def work(manager: Any) -> group_import.ImportResult:
        def write_note(note_id: str, state: bytes) -> None:
            anyio.from_thread.run(manager.initialize, note_id, [state])

        def remove_note(note_id: str) -> None:
            anyio.from_thread.run(manager.close_document, note_id)
            manager.store.delete(note_id)

        result: group_import.ImportResult | None = None
        try:
            with Path(args.archive).open("rb") as source, prepared.db.write() as session:
                owner = session.get(User, owner_id) if owner_id else None
                plain_name = (args.name or Path(args.archive).stem) if args.plain else None
                result = group_import.import_archive(session, store, settings, source,
                                                     owner=owner, write_note=write_note,
                                                     remove_note=remove_note,
                                                     plain_name=plain_name)
                audit.record(session, "group.imported", actor_id=None, object_type="group",
                             object_id=result.group_id, group_id=result.group_id, ip=None,
                             detail={"documents": result.documents, "via": "command line",
                                     "invitations": result.invitations})
        except BaseException:
            if result is not None:  # the commit itself failed
                result.discard(store, remove_note)
            raise
        return result

    try:
        result = _with_rooms(settings, prepared.keys, work)
    except OSError as exc:
        print(f"plein: cannot read {args.archive}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"imported {result.folders} folders, {result.documents} documents, "
          f"{result.versions} versions, {result.comments} comments, {result.members} members")
    for email in result.invitations:
        print(f"invited {email} (no account here yet)")
    for grant in result.unmatched_folder_grants:
        print(f"not granted (no account here): {grant}")
    print(result.group_id)
    prepared.db.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plein", description="Plein collaboration space")
    parser.add_argument("--data-dir", help="data directory (PLEIN_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start Plein (creates everything on first run)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--data-dir", dest="data_dir_sub", default=None)
    serve.add_argument("--proxy-headers", action="store_true",
                       help="trust X-Forwarded-For/Proto from the reverse proxy")
    serve.set_defaults(func=cmd_serve)

    create = sub.add_parser("createuser", help="create an account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password", help="omit to be asked")
    create.add_argument("--admin", action="store_true", help="make a site administrator")
    create.add_argument("--data-dir", dest="data_dir_sub", default=None)
    create.set_defaults(func=cmd_createuser)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--data-dir", dest="data_dir_sub", default=None)
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="key management")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser("rotate", help="new active KEK; rewrap every data key")
    rotate.add_argument("--batch-size", type=int, default=1000)
    rotate.add_argument("--data-dir", dest="data_dir_sub", default=None)
    rotate.set_defaults(func=cmd_keys_rotate)

    check = sub.add_parser("fsck", help="verify every blob decrypts and matches its hash")
    check.add_argument("--data-dir", dest="data_dir_sub", default=None)
    check.set_defaults(func=cmd_fsck)

    tidy = sub.add_parser("maintenance", help="purge old trash, thin versions, remove orphans")
    tidy.add_argument("--data-dir", dest="data_dir_sub", default=None)
    tidy.set_defaults(func=cmd_maintenance)

    worker = sub.add_parser("indexer", help="run the indexing worker as its own process")
    worker.add_argument("--data-dir", dest="data_dir_sub", default=None)
    worker.set_defaults(func=cmd_indexer)

    rebuild = sub.add_parser("reindex", help="rebuild the search index (searches keep working)")
    rebuild.add_argument("--data-dir", dest="data_dir_sub", default=None)
    rebuild.set_defaults(func=cmd_reindex)

    export = sub.add_parser(
        "export", help="write a group as a zip of open formats (docs/export-format.md); "
        "stop the server first (it owns the live notes), or use the API while it runs")
    export.add_argument("--group", required=True, help="the group's id")
    export.add_argument("--out", required=True, help="the zip file to write")
    export.add_argument("--data-dir", dest="data_dir_sub", default=None)
    export.set_defaults(func=cmd_export)

    load = sub.add_parser("import", help="import a group archive as a new group; prints "
                          "the new group's id last")
    load.add_argument("archive", help="the zip file written by plein export")
    load.add_argument("--owner", help="e-mail of an account here that becomes the owner")
    load.add_argument("--plain", action="store_true",
                      help="the zip holds ordinary folders and files (e.g. a share drive), "
                      "not a Plein export: they become the new group's folders and files")
    load.add_argument("--name", help="the new group's name with --plain (default: the zip's "
                      "file name)")
    load.add_argument("--data-dir", dest="data_dir_sub", default=None)
    load.set_defaults(func=cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "data_dir_sub", None):
        args.data_dir = args.data_dir_sub
    try:
        return int(args.func(args))
    except ConfigurationError as exc:
        print(f"plein: configuration error: {exc}", file=sys.stderr)
        return 2
    except HTTPError as exc:
        print(f"plein: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:  # pydantic validation of createuser input
        print(f"plein: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
