"""``gateway db upgrade``: apply the database migrations."""

from __future__ import annotations

import argparse

from gateway.cli.common import cli_locale
from gateway.config import Settings
from gateway.i18n import translate


async def db_upgrade(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.adapters.db.engine import create_database
    from gateway.adapters.db.migrate import current_revision, upgrade

    db = create_database(settings.database.url)
    try:
        await upgrade(db)
        revision = await current_revision(db)
        done = translate(cli_locale(settings), "database at revision %(revision)s")
        print(done % {"revision": revision})
    finally:
        await db.dispose()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    p = db.add_parser("upgrade", help="apply migrations")
    p.set_defaults(func=db_upgrade)
