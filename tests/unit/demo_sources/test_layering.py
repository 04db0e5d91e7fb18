"""The demo generator is a producer of source products outside the platform core."""

from __future__ import annotations

import importlib.util


def test_the_demo_generator_lives_outside_the_core() -> None:
    assert importlib.util.find_spec("datamesh.demo") is None
    assert importlib.util.find_spec("demo_sources.generator") is not None
