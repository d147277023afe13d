"""mypy keeps a ``@cached`` function's signature (``ParamSpec``): functions, coroutines, methods."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

SNIPPET = textwrap.dedent(
    """
    from otel_cache import cached

    @cached(ttl=5)
    def area(width: int, height: int = 2) -> list[int]:
        return [width]

    @cached(key="user:{user_id}")
    async def user(user_id: int) -> str:
        return str(user_id)

    class Repo:
        @cached()
        def find(self, n: int) -> float:
            return float(n)

        @cached()
        async def afind(self, n: int) -> bytes:
            return b""

    async def use() -> None:
        reveal_type(area(1))
        reveal_type(await user(1))
        reveal_type(Repo().find(2))
        reveal_type(await Repo().afind(2))
        reveal_type(Repo().find.invalidate(2))
        reveal_type(await user.invalidate(1))
        area("x")
        Repo().find("no")
        await user.invalidate(1, 2)
    """
)


WRONG_ARGUMENT = (
    'error: Argument 1 to "__call__" of "CachedFunction" has incompatible type "str"; '
    'expected "int"  [arg-type]'
)


@pytest.mark.slow
def test_mypy_sees_the_decorated_signatures(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    stdout, _, _ = api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(source)])
    lines = [line.split(": ", 1)[1] for line in stdout.splitlines() if line.startswith(str(source))]
    assert lines == [
        'note: Revealed type is "list[int]"',
        'note: Revealed type is "str"',
        'note: Revealed type is "float"',
        'note: Revealed type is "bytes"',
        'note: Revealed type is "bool"',
        'note: Revealed type is "bool"',
        WRONG_ARGUMENT,
        WRONG_ARGUMENT,
        'error: Too many arguments for "invalidate" of "AsyncCachedFunction"  [call-arg]',
    ]
