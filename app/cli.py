"""The ``plein`` command: serve, createuser, keys, db."""

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
