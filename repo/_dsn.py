"""DSNs: where the database is, and how to show that without the password."""

from __future__ import annotations

import os
import re
import urllib.parse

from .errors import ConfigurationError

__all__ = ["ENV_DSN", "mask_dsn", "resolve_dsn", "scrub", "validate_dsn", "with_database"]

ENV_DSN = "DATABASE_URL"

_SCHEMES = ("postgresql", "postgres")


def mask_dsn(dsn: str) -> str:
    """`dsn` with any password replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(dsn)
    except ValueError:
        return "<unparseable DSN>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if sep else f"{user}@{hosts}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{k}={'***' if k.lower() == 'password' else v}" for k, v in pairs)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_of(dsn: str) -> str | None:
    """The password in `dsn` (userinfo or query), if any."""
    try:
        parts = urllib.parse.urlsplit(dsn)
    except ValueError:
        return None
    if parts.password:
        return urllib.parse.unquote(parts.password)
    for k, v in urllib.parse.parse_qsl(parts.query):
        if k.lower() == "password":
            return v
    return os.environ.get("PGPASSWORD") or None


def scrub(text: str, dsn: str) -> str:
    """`text` with the password of `dsn` (raw and URL-quoted) blotted out."""
    password = password_of(dsn)
    if not password:
        return text
    for form in {password, urllib.parse.quote(password, safe=""), urllib.parse.quote(password)}:
        text = text.replace(form, "***")
    return text


def validate_dsn(dsn: str) -> str:
    """Refuse a DSN that is not a ``postgresql://`` URI, naming what is wrong."""
    if not isinstance(dsn, str) or not dsn.strip():
        msg = "the DSN is empty: give postgresql://user:password@host:port/database"
        raise ConfigurationError(msg)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", dsn)
    if scheme is None or scheme.group(1).lower() not in _SCHEMES:
        shown = mask_dsn(dsn) if scheme else "<not a URI>"
        msg = (
            f"bad DSN {shown}: expected postgresql://user:password@host:port/database "
            "(a libpq key=value string is not accepted)"
        )
        raise ConfigurationError(msg)
    try:
        parts = urllib.parse.urlsplit(dsn)
        _ = parts.port
    except ValueError as exc:
        msg = f"bad DSN {mask_dsn(dsn)}: {scrub(str(exc), dsn)}"
        raise ConfigurationError(msg) from None
    return dsn


def with_database(dsn: str, database: str) -> str:
    """`dsn` pointing at another database on the same server."""
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))


def resolve_dsn(dsn: str | None = None, *, embedded_version: int | str | None = None) -> str:
    """The DSN to use: `dsn`, else ``$DATABASE_URL``, else the embedded server's.

    `embedded_version` (else ``$REPO_EMBEDDED_VERSION``) picks the embedded
    server's major version. Starting the embedded server blocks; async
    callers run this in a thread.
    """
    if dsn:
        return validate_dsn(dsn)
    from_env = os.environ.get(ENV_DSN)
    if from_env:
        return validate_dsn(from_env)
    from ._embedded import embedded_dsn

    return embedded_dsn(embedded_version)
