"""The cache key and tags of a function call, for :func:`otel_cache.cached`: pure, no I/O.

A call's arguments are bound to the function's signature with the defaults applied,
so ``f(1)``, ``f(x=1)`` and ``f(1, y=2)`` (when ``y`` defaults to 2) are one call.
A method's first parameter (``self`` or ``cls``) is left out: every instance shares
the entries, unless a key template or a key function names what tells them apart.

Keys, by how they are given:

- by default, ``{prefix}:{module}.{qualname}:{digest}``: the digest is
  :func:`~otel_cache.core.keys.canonical_digest` of the bound arguments (the same in
  every process and run; an argument with no canonical form raises
  :class:`~otel_cache.errors.CacheKeyError`);
- a template, ``"user:{user_id}"``, formatted with the bound arguments as
  :meth:`str.format` does (``"{user.id}"``, ``"{ids[0]}"``); the key is what it gives,
  with no prefix, so other code can name the same entry;
- a callable, given the call's arguments as the function is, returning the key.

Tags are templates (or a callable returning them) in the same way.
"""

from __future__ import annotations

import inspect
import string
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from otel_cache.core.keys import canonical_digest
from otel_cache.core.tags import tag_names
from otel_cache.errors import CacheConfigError, CacheKeyError

__all__ = ["CallKeys", "KeySpec", "TagSpec"]

KeySpec = str | Callable[..., Hashable] | None
"""How a call's key is made: ``None`` (the default digest), a template, or a callable."""
TagSpec = Iterable[str] | Callable[..., Iterable[str]]
"""A call's tags: templates, or a callable returning the tags."""

_SELF_NAMES = ("self", "cls")
_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY


class CallKeys:
    """The key and tags of each call of one function."""

    __slots__ = (
        "_defaults",
        "_key",
        "_name",
        "_names",
        "_positional",
        "_self",
        "_signature",
        "_tag_templates",
        "_tags_of",
        "name",
    )

    def __init__(self, func: Callable[..., Any], *, key: KeySpec, tags: TagSpec, prefix: str) -> None:
        if not isinstance(prefix, str) or not prefix or ":" in prefix:
            raise CacheConfigError(f"prefix must be a non-empty string without ':', got {prefix!r}")
        self._signature = inspect.signature(func)
        params = list(self._signature.parameters.values())
        first = params[0] if params else None
        self._self = (
            first.name
            if first is not None
            and first.name in _SELF_NAMES
            and first.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            else None
        )
        # Binding without inspect (five times faster) when every parameter has a name: the
        # names a call may pass positionally, every name, and the defaults.
        simple = all(p.kind in (_POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY) for p in params)
        self._positional: tuple[str, ...] | None = (
            tuple(p.name for p in params if p.kind is _POSITIONAL_OR_KEYWORD) if simple else None
        )
        self._names = frozenset(p.name for p in params)
        self._defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        self.name = f"{func.__module__}.{func.__qualname__}"
        self._name = f"{prefix}:{self.name}"
        if isinstance(key, str):
            _check_template(key, self._signature, "key")
        elif key is not None and not callable(key):
            raise CacheConfigError(f"key must be a template, a callable or None, not {type(key).__name__}")
        self._key = key
        self._tags_of: Callable[..., Iterable[str]] | None = None
        self._tag_templates: tuple[str, ...] = ()
        if callable(tags):
            self._tags_of = tags
        else:
            if isinstance(tags, str):
                raise CacheConfigError("tags must be an iterable of tag templates, not one string")
            self._tag_templates = tuple(tags)
            for template in self._tag_templates:
                if not isinstance(template, str):
                    raise CacheConfigError(f"a tag must be a string, not {type(template).__name__}")
                _check_template(template, self._signature, "tag")

    def key(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Hashable:
        """The cache key of ``func(*args, **kwargs)``; TypeError if they do not fit its signature."""
        spec = self._key
        if spec is None:
            return f"{self._name}:{canonical_digest(self._arguments(args, kwargs, keep_self=False))}"
        if isinstance(spec, str):
            return _format(spec, self._arguments(args, kwargs, keep_self=True), "key")
        return spec(*args, **kwargs)

    def tags(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        """The tags of the call's entry (validated)."""
        if self._tags_of is not None:
            return tag_names(self._tags_of(*args, **kwargs))
        if not self._tag_templates:
            return ()
        arguments = self._arguments(args, kwargs, keep_self=True)
        return tag_names(_format(template, arguments, "tag") for template in self._tag_templates)

    def _arguments(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, keep_self: bool
    ) -> dict[str, Any]:
        """The call's arguments by name, defaults applied (in no particular order)."""
        arguments = self._bind_simple(args, kwargs)
        if arguments is None:  # another kind of parameter, or a call that does not fit: inspect decides
            bound = self._signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
        if not keep_self and self._self is not None:
            del arguments[self._self]
        return arguments

    def _bind_simple(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        positional = self._positional
        if positional is None or len(args) > len(positional):
            return None
        arguments = dict(zip(positional, args, strict=False))
        for name, value in kwargs.items():
            if name in arguments or name not in self._names:
                return None
            arguments[name] = value
        if len(arguments) < len(self._names):
            for name, default in self._defaults.items():
                arguments.setdefault(name, default)
            if len(arguments) < len(self._names):  # a required argument is missing
                return None
        return arguments


def _check_template(template: str, signature: inspect.Signature, what: str) -> None:
    """A template names only parameters of the function (checked once, at decoration)."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise CacheConfigError(f"bad {what} template {template!r}: {exc}") from exc
    for field in fields:
        root = field.split(".", 1)[0].split("[", 1)[0]
        if root not in signature.parameters:
            raise CacheConfigError(
                f"{what} template {template!r} names {{{field}}}, which is not a parameter "
                f"of the function (its parameters: {', '.join(signature.parameters) or 'none'})"
            )


def _format(template: str, arguments: Mapping[str, Any], what: str) -> str:
    try:
        return template.format_map(arguments)
    except (AttributeError, LookupError, ValueError) as exc:
        raise CacheKeyError(f"{what} template {template!r} cannot be filled for this call: {exc}") from exc
