"""Write an Alembic migration from the models (autogenerate against a scratch SQLite database).

    .venv/bin/python tools/migration.py new "add bundles"         # next revision after the head
    .venv/bin/python tools/migration.py replace 0002              # regenerate an unreleased revision

Review the generated file: autogenerate misses renames and data changes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from overcast.db.migrate import MIGRATIONS, alembic_config, upgrade
from overcast.db.session import make_engine


def generate(rev_id: str, message: str, base: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.db")
        if base:
            upgrade(engine, base)
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()


def main(argv: list[str]) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    if len(argv) == 3 and argv[1] == "new":
        head = script.get_current_head()
        generate(f"{int(head or '0') + 1:04d}", argv[2], head)
    elif len(argv) == 3 and argv[1] == "replace":
        rev = script.get_revision(argv[2])
        if rev is None or script.get_current_head() != rev.revision:
            sys.exit("only the head revision can be replaced")
        path = Path(rev.path)
        message = (rev.doc or "migration").strip()
        base = rev.down_revision if isinstance(rev.down_revision, str) else None
        path.unlink()
        generate(rev.revision, message, base)
    else:
        sys.exit(__doc__)
    print("migrations in", MIGRATIONS / "versions")


if __name__ == "__main__":
    main(sys.argv)
