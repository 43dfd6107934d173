"""Run the operator: the process entry point behind ``pht operator``."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

import kopf

from pht_operator.app import OperatorApp
from pht_operator.handlers import build_registry
from pht_operator.settings import OperatorSettings

logger = logging.getLogger("pht_operator")


async def run_operator(
    settings: OperatorSettings,
    *,
    kubeconfig: Path | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or a signal arrives, when run as a process).

    Kopf treats every task of its event loop as its own on exit, so embedders (tests, the
    station in a box) run this in a thread with its own loop and pass ``threading.Event`` flags.
    """
    if kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(kubeconfig)  # Kopf's login reads it from there
    settings.check_startup()
    app = OperatorApp.create(settings, kubeconfig)
    registry = build_registry(app)
    await app.start()
    logger.info(
        "operator for %s (runs in %s), metrics on :%s, health on :%s",
        ",".join(settings.station_namespaces),
        settings.run_namespace,
        app.metrics_port,
        app.health.port,
    )
    try:
        kopf_settings = kopf.OperatorSettings()
        # Exactly the station namespaces, no cluster-wide scan (see handlers.configure); the
        # run namespace's Jobs and Pods are watched by the operator itself (runwatch).
        kopf_settings.scanning.disabled = True
        await kopf.operator(
            registry=registry,
            settings=kopf_settings,
            standalone=True,
            clusterwide=False,
            namespaces=list(settings.station_namespaces),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await app.stop()


def main(settings: OperatorSettings | None = None, kubeconfig: Path | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One line per HTTP request or watch event would drown what matters.
    for noisy in ("httpx", "httpx2", "kopf.objects", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(run_operator(settings or OperatorSettings(), kubeconfig=kubeconfig))
    return 0
