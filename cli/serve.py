"""Serving the HTTP API with granian (``dpg node start``)."""

from __future__ import annotations

import importlib.util
import os

from .state import ServeSpec

APP_FACTORY = "dpgnode.api.app:app_from_env"


def serve_with_granian(spec: ServeSpec) -> None:
    """Run the API in the foreground until interrupted.

    The app factory reads its settings from the environment, so the data directory and the
    configuration file travel to every worker process as ``DPG_DATA_DIR`` and
    ``DPG_CONFIG_FILE``, and the flags that override the listening address as
    ``DPG_API__*`` variables (the app derives its public URL from them).
    """
    if importlib.util.find_spec(APP_FACTORY.partition(":")[0]) is None:
        raise RuntimeError(
            f"the HTTP API ({APP_FACTORY}) is missing from this installation: reinstall dpgnode"
        )
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    os.environ["DPG_DATA_DIR"] = str(spec.data_dir)
    if spec.config_file is not None:
        os.environ["DPG_CONFIG_FILE"] = str(spec.config_file.resolve())
    else:
        os.environ.pop("DPG_CONFIG_FILE", None)
    os.environ["DPG_API__HOST"] = spec.host
    os.environ["DPG_API__PORT"] = str(spec.port)
    os.environ["DPG_API__WORKERS"] = str(spec.workers)
    server = Granian(
        APP_FACTORY,
        address=spec.host,
        port=spec.port,
        interface=Interfaces.ASGI,
        workers=spec.workers,
        factory=True,
        log_level=LogLevels(spec.log_level),
    )
    server.serve()
