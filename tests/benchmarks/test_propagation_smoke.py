"""``python -m benchmarks.propagation --quick`` runs end to end; what it prints, not its figures."""

from __future__ import annotations

import re

import pytest

from tests.benchmarks.quick_run import run_quick

NUMBER = r"[\d,.]+"


@pytest.mark.timeout(180)
def test_quick_run_prints_every_figure() -> None:
    stdout = run_quick("benchmarks.propagation", timeout=170)
    out = stdout
    for heading in ("#### propagation", "#### listener CPU", "#### cost added to a put", "#### L1 hit"):
        assert heading in out
    for processes, api in ((2, "sync"), (2, "async"), (4, "sync"), (4, "async")):
        # propagation: writes/s, sent msgs / keys, keys/msg, received, lag and put->drop quantiles
        triple = rf"{NUMBER} / {NUMBER} / {NUMBER}"
        pair = rf"{NUMBER} / {NUMBER}"
        head = rf"\| {processes} \| {api} \| {NUMBER} \| {pair} \| {NUMBER} \| {pair} \|"
        row = rf"{head} {triple} \| {triple} \|"
        assert re.search(row, out), f"no propagation row for {processes} processes, {api}"
        cpu = rf"\| {processes} \| {api} \|( {NUMBER} \|){{5}}"
        assert re.search(cpu, out), f"no listener CPU row for {processes} processes, {api}"
    assert "nan" not in out  # every configuration heard its writer
    for label in ("process (incl. publisher + listener)", "calling thread only"):
        assert re.search(rf"\| {re.escape(label)} \| {NUMBER} \| {NUMBER} \| {NUMBER}x \|", out)
    assert re.search(rf"\| ns per hit \(median\) \| {NUMBER} \| {NUMBER} \| {NUMBER}x \|", out)
    assert "redis-server " in out  # the machine line names the server version
