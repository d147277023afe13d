"""Redis URLs: one server, a Cluster or a Sentinel set, parsed and redacted (pure).

::

    redis://[user:pass@]host[:port][/db][?options]          one server (rediss://: TLS)
    unix://[user:pass@]/path/to/redis.sock[?db=N]            one server, over a socket
    redis+cluster://[user:pass@]host:port[,host:port...][?options]        (rediss+cluster://)
    redis+sentinel://[user:pass@]host[:port][,host[:port]...]/service[/db][?options]
                                                                          (rediss+sentinel://)

A cluster URL lists seed nodes (any reachable one is enough; the others are
discovered), port 6379 by default; a cluster has database 0 only. A Sentinel URL
lists sentinels, port 26379 by default, then the monitored service's name; the
user and password are the data nodes' (``sentinel_username`` and
``sentinel_password`` options authenticate to the sentinels). The grammar is the
one of prefect-redis and redisvl. Options are redis-py's URL options
(``ssl_cert_reqs=required``, ``socket_keepalive=true``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["RedisKind", "RedisURL", "parse_redis_url", "redact_redis_url"]

RedisKind = Literal["standalone", "cluster", "sentinel"]

_KINDS: dict[str, tuple[RedisKind, bool]] = {
    "redis": ("standalone", False),
    "rediss": ("standalone", True),
    "unix": ("standalone", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
_DEFAULT_PORT = {"cluster": 6379, "sentinel": 26379}
_SECRET_OPTIONS = frozenset({"password", "sentinel_password"})


@dataclass(frozen=True, slots=True)
class RedisURL:
    """What a Redis URL says; :func:`parse_redis_url` makes one."""

    kind: RedisKind
    tls: bool
    nodes: tuple[tuple[str, int], ...]  # cluster seeds or sentinels; empty for one server
    username: str | None
    password: str | None
    db: int
    service: str | None  # the Sentinel service name
    options: tuple[tuple[str, str], ...]  # the query string, in order

    @property
    def standalone_url(self) -> str:
        """For a cluster: a ``redis[s]://`` URL of the first seed carrying the user, password and
        options (redis-py parses the options of such a URL)."""
        scheme = "rediss" if self.tls else "redis"
        host, port = self.nodes[0]
        auth = ""
        if self.username is not None or self.password is not None:
            user = _quote(self.username or "")
            auth = f"{user}:{_quote(self.password)}@" if self.password is not None else f"{user}@"
        return f"{scheme}://{auth}{host}:{port}/{self.db}" + (
            f"?{urlencode(self.options)}" if self.options else ""
        )


def parse_redis_url(url: str) -> RedisURL:
    """Parse ``url``; :class:`ValueError` names what is wrong with it."""
    if not isinstance(url, str):
        raise ValueError(f"redis_url must be a string, got {type(url).__name__}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _KINDS:
        known = ", ".join(f"{name}://" for name in _KINDS)
        raise ValueError(f"redis_url must start with one of {known}; got {scheme or url[:20]!r}")
    kind, tls = _KINDS[scheme]
    parts = urlsplit(url)
    options = tuple(parse_qsl(parts.query, keep_blank_values=True))
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    if kind == "standalone":
        return RedisURL(
            kind, tls, (), username, password, _standalone_db(parts.path, options, scheme), None, options
        )
    nodes = tuple(_node(address, _DEFAULT_PORT[kind], url) for address in hosts.split(","))
    path = [segment for segment in parts.path.split("/") if segment]
    if kind == "cluster":
        if path and path != ["0"]:
            raise ValueError("a Redis Cluster has database 0 only: drop the path of the redis+cluster:// URL")
        return RedisURL(kind, tls, nodes, username, password, 0, None, options)
    if not path or len(path) > 2:
        raise ValueError(
            "a redis+sentinel:// URL needs the service name: redis+sentinel://host:26379/mymaster[/db]"
        )
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise ValueError(f"the database of a redis+sentinel:// URL must be a number, got {path[1]!r}")
        db = int(path[1])
    return RedisURL(kind, tls, nodes, username, password, db, unquote(path[0]), options)


def redact_redis_url(url: str) -> str:
    """``url`` with its passwords (in the user part and the options) replaced by ``***``."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret_option = any(name.lower() in _SECRET_OPTIONS for name, _ in pairs)
    if not (at and ":" in userinfo) and not secret_option:
        return url  # as written (urlunsplit would rewrite "unix:///s.sock" as "unix:/s.sock")
    netloc = parts.netloc
    if at and ":" in userinfo:
        netloc = userinfo.split(":", 1)[0] + ":***@" + hosts
    query = parts.query
    if secret_option:
        query = urlencode([(k, "***" if k.lower() in _SECRET_OPTIONS else v) for k, v in pairs], safe="*/")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _node(address: str, default_port: int, url: str) -> tuple[str, int]:
    address = address.strip()
    if address.startswith("["):  # [::1]:6379
        host, _, rest = address[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = address.partition(":")
    if not host:
        raise ValueError(f"a host is missing in {redact_redis_url(url)!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} of {host} is not a port number")
    return host, int(port_text)


def _standalone_db(path: str, options: tuple[tuple[str, str], ...], scheme: str) -> int:
    for name, value in options:
        if name == "db" and value.isdigit():
            return int(value)
    path = path.strip("/")
    return int(path) if scheme != "unix" and path.isdigit() else 0


def _quote(text: str) -> str:
    return quote(text, safe="")
