"""DSNs: where the database is, and how to show that without the password.

A password may hold any character, and a DSN may be mistyped, so showing a
DSN never relies on it parsing as intended: `mask_dsn` hides everything
between ``scheme://`` and the *last* ``@`` after the user name, which covers
a password holding an unescaped ``/``, ``?``, ``#``, ``@`` or ``:``, and every
``password=`` in the query. `validate_dsn` refuses what the driver would
misread (an unescaped reserved character in the password reads as a host,
port or database) before the driver sees it, and names the problem without
echoing the password.
"""

from __future__ import annotations

import os
import re
import urllib.parse

from repo.errors import ConfigurationError

__all__ = [
    "ENV_DSN",
    "mask_dsn",
    "passwords_of",
    "resolve_dsn",
    "scrub",
    "validate_dsn",
    "with_database",
]

ENV_DSN = "DATABASE_URL"

_SCHEMES = ("postgresql", "postgres")

# asyncpg's (and libpq's) values of target_session_attrs.
SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
# In a URI's query: up to the next "&" that starts a key=value pair, so that
# a "&", "#" or "@" left unescaped in the password is hidden too.
_QUERY_PASSWORD = re.compile(r"(?i)([?&;]password=)[^&]*(?:&[^&=]*(?=&|$))*")
# In a libpq key=value string: a quoted value or a word.
_KV_PASSWORD = re.compile(r"(?i)\b(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")
# A host's ":port" that is not all digits, in the host part (before / ? #).
_ODD_PORT = re.compile(r"(^|,)((?:\[[^\]/?#]*\]|[^\[:,/?#]*):)(?![0-9]*(?:[,/?#]|$))[^,/?#]*")
_ENCODE = "percent-encode them ('/' as %2F, '?' as %3F, '#' as %23, '@' as %40)"
_EXAMPLE = "postgresql://user:password@host:port/database"


def mask_dsn(dsn: str) -> str:
    """`dsn` with any password replaced by ``***``, however the DSN is written."""
    uri = _URI.match(dsn)
    if uri is None:
        # Not a URI: perhaps a libpq key=value string.
        return _KV_PASSWORD.sub(r"\1***", dsn)
    scheme, rest = uri.groups()
    userinfo, at, hosts = rest.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        rest = f"{user}:***@{hosts}" if colon else f"{userinfo}@{hosts}"
    else:
        # No '@': a "port" that is not a number may be a password whose
        # "@host" was forgotten (user:secret).
        rest = _ODD_PORT.sub(r"\1\2***", rest)
    rest = _QUERY_PASSWORD.sub(r"\1***", rest)
    return f"{scheme}://{rest}"


def passwords_of(dsn: str) -> set[str]:
    """Every form in which `dsn`'s password (userinfo or query) could appear in a message.

    As written, decoded and encoded; as a careful reading finds it and as a
    driver's naive one would (first ``@``); and ``$PGPASSWORD``.
    """
    found: set[str] = set()
    uri = _URI.match(dsn)
    if uri is not None:
        rest = uri.group(2)
        careful = rest.rpartition("@")[0].partition(":")[2]
        naive = rest.partition("@")[0].partition(":")[2] if "@" in rest else ""
        found.update(p for p in (careful, naive) if p)
        # The pieces a misreading could leave in a host, port or database name.
        found.update(p for p in re.split(r"[/?#@&]", careful) if len(p) >= 3)
        found.update(m.group(0).partition("=")[2] for m in _QUERY_PASSWORD.finditer(rest))
        try:
            query = urllib.parse.urlsplit(dsn).query
            found.update(v for k, v in urllib.parse.parse_qsl(query) if k.lower() == "password")
        except ValueError:
            pass
    else:
        found.update(m.group(2).strip("'") for m in _KV_PASSWORD.finditer(dsn))
    env = os.environ.get("PGPASSWORD")
    if env:
        found.add(env)
    forms: set[str] = set()
    for password in filter(None, found):
        forms.update(
            {
                password,
                urllib.parse.unquote(password),
                urllib.parse.quote(password, safe=""),
                urllib.parse.quote(password),
            }
        )
    return {f for f in forms if f}


def scrub(text: str, dsn: str) -> str:
    """`text` with every form of `dsn`'s password blotted out (see `passwords_of`)."""
    for form in sorted(passwords_of(dsn), key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _refuse(dsn: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"bad DSN {mask_dsn(dsn)}: {problem}")


def _check_hosts(dsn: str, hostlist: str) -> None:
    """Each ``host[:port]`` (or ``[v6][:port]``) of a comma-separated list, as asyncpg reads it."""
    items = hostlist.split(",")
    for number, item in enumerate(items, 1):
        where = f"host {number} of {len(items)}" if len(items) > 1 else "the host"
        if not item:
            raise _refuse(dsn, f"{where} is empty: write host1:port1,host2:port2")
        if item.startswith("["):
            v6 = re.fullmatch(r"\[([^\]]+)\](?::(.*))?", item)
            if v6 is None:
                raise _refuse(dsn, f"{where} is not a valid [IPv6]:port")
            host, port = v6.group(1), v6.group(2) or ""
        else:
            host, _, port = item.partition(":")
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            # The port is not shown: a password misplaced there must not be.
            raise _refuse(
                dsn,
                f"the port of {where} ({host!r}) is not a number from 1 to 65535: "
                f"give host:port, or {_EXAMPLE}",
            )


def _check_query(dsn: str, query: str) -> None:
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        # The driver parses it strictly too; its message would quote the field.
        msg = (
            "its query string is not key=value pairs joined by '&' "
            "(a value holding '&' or '=' must be percent-encoded: %26, %3D)"
        )
        raise _refuse(dsn, msg) from None
    for key, value in pairs:
        if key == "target_session_attrs" and value not in SESSION_ATTRS:
            msg = f"target_session_attrs={value!r} is not one of {', '.join(SESSION_ATTRS)}"
            raise _refuse(dsn, msg)


def validate_dsn(dsn: str) -> str:
    """Refuse a DSN that is not a ``postgresql://`` URI the driver reads as written.

    One or several hosts (``h1:5432,h2:5433``, as asyncpg and libpq take
    them) are accepted. The error names what is wrong and how to fix it,
    never showing the password.
    """
    if not isinstance(dsn, str) or not dsn.strip():
        msg = f"the DSN is empty: give {_EXAMPLE}"
        raise ConfigurationError(msg)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", dsn)
    if scheme is None or scheme.group(1).lower() not in _SCHEMES:
        shown = mask_dsn(dsn) if scheme else "<not a URI>"
        msg = (
            f"bad DSN {shown}: expected {_EXAMPLE} "
            "(several hosts as host1:port1,host2:port2; a libpq key=value string is not accepted)"
        )
        raise ConfigurationError(msg)
    rest = dsn[scheme.end() :]
    # Where urllib and the driver end the host part: the first '/', '?' or '#'.
    end = re.search(r"[/?#]", rest)
    netloc, tail = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
    if "@" in tail or netloc.count("@") > 1:
        # The driver would take part of the password for the host, port or
        # database: the password (or user name) holds a reserved character.
        msg = (
            "an unescaped '/', '?', '#' or '@' in the password (or user name) would be read "
            f"as part of the host or database: {_ENCODE} (an '@' in the database name or "
            "a parameter needs %40 too)"
        )
        raise _refuse(dsn, msg)
    if "#" in tail:
        msg = f"a '#' ends the DSN early: if it is part of the password or a value, {_ENCODE}"
        raise _refuse(dsn, msg)
    hostlist = netloc.rpartition("@")[2]
    if hostlist:
        _check_hosts(dsn, hostlist)
    query = tail.partition("?")[2]
    if query:
        _check_query(dsn, query)
    return dsn


def with_database(dsn: str, database: str) -> str:
    """`dsn` pointing at another database on the same server(s)."""
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
    from .embedded import embedded_dsn

    return embedded_dsn(embedded_version)
