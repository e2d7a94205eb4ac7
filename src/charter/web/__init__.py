"""The dashboard (``/ui``): server-rendered pages over the same services the CLI uses.

``create_router(registry)`` returns the FastAPI router that :func:`charter.serving.app.create_app`
includes under ``/ui``. See ``docs/dashboard.md``.
"""

from __future__ import annotations

from charter.web.pages import create_router

__all__ = ["create_router"]
