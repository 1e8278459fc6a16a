"""The ``lifecycle services`` command: ``up``, ``down`` and ``status``, printed for a terminal.

Taught in README.md ("Point it at production backends").
"""

from __future__ import annotations

import json
from typing import Any

from lifecycle.config import load_settings
from lifecycle.services.stack import (
    DESCRIPTION,
    env_file,
    service_status,
    start_services,
    stop_services,
)


def services_command(args: Any) -> int:
    """``lifecycle services up|down|status``; returns the exit status (``status``: 1 if any backend is down)."""
    settings = load_settings()
    if args.services_command == "up":
        services = start_services(settings, timeout=args.timeout)
        if services.already_running:
            print("the services are already running (stop them with 'lifecycle services down'):")
        else:
            print(f"services up and answering in {services.seconds:.1f} s:")
        for name, url in services.urls.items():
            after = services.ready_after.get(name)
            print(f"  {DESCRIPTION[name]:<24} {url}" + (f"  (ready after {after:.1f} s)" if after else ""))
        print(f"environment for clients: {env_file(settings)}\n"
              "  use it in a shell:   source workspace/services.env\n"
              "  run the course on it: lifecycle run --backends services")
        return 0
    if args.services_command == "down":
        stopped = stop_services(settings)
        if not stopped:
            print("no services were recorded as running: nothing to stop")
        for name, seconds in stopped.items():
            print(f"stopped {DESCRIPTION[name]} in {seconds:.1f} s")
        return 0
    rows = service_status(settings)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no services are recorded as running; start them with 'lifecycle services up' (or 'make services')")
    for row in [] if args.json else rows:
        state = "up" if row["answers"] else "running, not answering" if row["running"] else "stopped"
        print(f"{row['what']:<24} {state:<24} {row['url']}")
    return 0 if rows and all(row["answers"] for row in rows) else 1
