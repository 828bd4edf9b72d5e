"""Drop the "[redacted]" placeholders earlier versions stored in place of secrets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Chainlit copies a thread's metadata into the user session on resume and reads the user's metadata on
every connect: a placeholder there was taken for a value (OpenRAG sent "[redacted]" as its API token).
Secrets are now left out; this removes the placeholders already stored, so the key is simply absent:
object entries whose value is the placeholder, ``name=[redacted]`` URL parameters and ``:[redacted]@``
passwords. Rows without a placeholder are not rewritten. Written without the package's code, so that it
keeps doing the same thing whatever later versions change.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PLACEHOLDER = "[redacted]"
JSON_COLUMNS = {
    "User": ("metadata",),
    "Thread": ("metadata",),
    "Step": ("metadata", "generation", "extra", "modes"),
    "Element": ("props", "playerConfig", "extra"),
}
_PARAMETER = re.compile(r"[^?#&;=]*=\[redacted\]")
_DOUBLED_SEPARATOR = re.compile(r"([?#&;])[&;]+")
_DANGLING_SEPARATOR = re.compile(r"[?#&;]+(?=#|$)")


def without_placeholders(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_placeholders(item) for key, item in value.items() if item != PLACEHOLDER}
    if isinstance(value, list):
        return [without_placeholders(item) for item in value]
    return value


def url_without_placeholders(url: str) -> str:
    url = url.replace(f":{PLACEHOLDER}@", "@")
    url = _DOUBLED_SEPARATOR.sub(r"\1", _PARAMETER.sub("", url))
    return _DANGLING_SEPARATOR.sub("", url)


def upgrade() -> None:
    bind = op.get_bind()
    for name, columns in JSON_COLUMNS.items():
        for column in columns:
            table = sa.table(name, sa.column("id", sa.Text), sa.column(column, postgresql.JSONB))
            value = table.c[column]
            rows = bind.execute(
                sa.select(table.c.id, value).where(sa.cast(value, sa.Text).contains(f'"{PLACEHOLDER}"'))
            )
            for row_id, stored in rows.all():
                bind.execute(
                    table.update().where(table.c.id == row_id).values({column: without_placeholders(stored)})
                )
    element = sa.table("Element", sa.column("id", sa.Text), sa.column("url", sa.Text))
    rows = bind.execute(sa.select(element.c.id, element.c.url).where(element.c.url.contains(PLACEHOLDER)))
    for row_id, url in rows.all():
        bind.execute(element.update().where(element.c.id == row_id).values(url=url_without_placeholders(url)))


def downgrade() -> None:
    """Nothing to restore: the placeholders held no data."""
