"""Read-only routes for the held-out examples stored with a served model (export.examples), so the
served studio opens on a real input of the model's data, as an exported page does.

    GET /api/models/{name}/examples          {"examples": [{name, input, output, source}, ...]}
    GET /api/models/{name}/examples/{file}   one of those PNG files
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastapi import FastAPI
from fastapi.responses import FileResponse

from ..export.examples import read_index, stored
from .errors import ApiError


# The error answers these routes give, in the JSON shape every route uses ({"error", "detail"}).
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown model name, or no such example file"},
    500: {"description": "an unexpected server error (the detail names a log reference)"},
}


def add_examples_routes(app: FastAPI, *, pick: Callable[[Optional[str]], Any]) -> None:
    """``pick(name)`` -> the ServedModel (raising the API's 404 for an unknown name)."""

    def entries(name: str) -> tuple[Any, list[dict]]:
        folder = stored(pick(name).source)
        return folder, (read_index(folder) if folder is not None else [])

    @app.get("/api/models/{name}/examples", summary="Held-out examples stored with the model",
             responses=_ERRORS)
    async def list_examples(name: str) -> dict:
        """Inputs from the model's held-out data and their translations (reference outputs), as
        stored in its directory's examples/ folder; an empty list when it has none."""
        return {"examples": entries(name)[1]}

    @app.get("/api/models/{name}/examples/{file}", response_class=FileResponse,
             summary="One stored example image (PNG)", responses=_ERRORS)
    async def example_file(name: str, file: str) -> FileResponse:
        folder, known = entries(name)
        names = {e["input"] for e in known} | {e["output"] for e in known if e["output"]}
        if file not in names:  # only listed files: never a path out of the folder
            raise ApiError(404, "not_found", f"model {name!r} has no example file {file!r}; "
                                             f"GET /api/models/{name}/examples lists them")
        return FileResponse(folder / file, media_type="image/png", headers={"Cache-Control": "no-cache"})


__all__ = ["add_examples_routes"]
