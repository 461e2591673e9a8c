"""Stp emulator (being written)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from providers.sandbox.common import Emulator


class StpEmulator(Emulator):
    name = "stp"

    def routes(self) -> list[BaseRoute]:
        return []
