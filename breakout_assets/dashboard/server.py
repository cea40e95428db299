"""How the dashboard is served: `streamlit run app.py` bound to 127.0.0.1 only, headless, with
no usage statistics sent anywhere. `breakout dashboard` and the browser test run this command."""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
ADDRESS = "127.0.0.1"
DEFAULT_PORT = 8501


def streamlit_command(port: int = DEFAULT_PORT) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        ADDRESS,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # an operator's console, not a development server: no file watching, no reloads
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def url(port: int = DEFAULT_PORT) -> str:
    return f"http://{ADDRESS}:{port}"
