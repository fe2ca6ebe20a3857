from __future__ import annotations

from typing import Any


def paths_without_trailing_slash(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """The routes accept both forms; the schema documents the canonical one, ``/api/v1/me``."""
    result["paths"] = {
        (path.rstrip("/") if path != "/" else path): operations for path, operations in result["paths"].items()
    }
    return result
