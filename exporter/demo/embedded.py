"""The embedded default: the Kronoberg topology simulated on loopback.

`dicom-exporter demo` starts one simulated peer per target of the packaged
examples/kronoberg.yml, rewrites that config to point at them on 127.0.0.1,
and serves the exporter against it, so a newcomer sees real probes of real
DICOM associations at once. /demo switches a peer down, up or to rejecting
our AE title, to show a classified failure.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from typing import Any

import yaml

from exporter import config as config_module
from exporter.config import Config
from exporter.demo.simulated import LOOPBACK, STATES, PeerSet
from exporter.web.server import Handler

EXAMPLE = "kronoberg.yml"


def example_text() -> str:
    return resources.files("exporter").joinpath("data", EXAMPLE).read_text(encoding="utf-8")


def on_loopback(document: dict[str, Any], ports: dict[str, int] | None = None) -> dict[str, Any]:
    """A copy of a config document whose every target is on 127.0.0.1.

    Example configs name hosts under .invalid; nothing may ever probe them.
    `ports` moves targets to the ports of simulated peers.
    """
    out = copy.deepcopy(document)
    for name, target in (out.get("targets") or {}).items():
        if isinstance(target, dict):
            target["host"] = LOOPBACK
            if ports and name in ports:
                target["port"] = ports[name]
    return out


def simulate(document: dict[str, Any]) -> PeerSet:
    """One simulated peer per target of a config document, with its AE title."""
    return PeerSet.start({name: t["ae_title"] for name, t in document["targets"].items()})


def loopback_config(document: dict[str, Any], peers: PeerSet, source: str) -> tuple[Config, str]:
    """The document pointed at the simulated peers, parsed as any config is."""
    ports = {name: peer.port for name, peer in peers.peers.items()}
    text = yaml.safe_dump(on_loopback(document, ports), sort_keys=False, allow_unicode=True)
    return config_module.parse(text, source), text


@dataclass
class Demo:
    peers: PeerSet
    config: Config
    config_text: str  # the example on loopback, for tools that read a file

    @classmethod
    def start(cls) -> Demo:
        document = yaml.safe_load(example_text())
        peers = simulate(document)
        config, text = loopback_config(document, peers, f"{EXAMPLE} (demo, on loopback)")
        return cls(peers, config, text)

    def stop(self) -> None:
        self.peers.stop()


def peer_switch(peers: PeerSet) -> Callable[[Handler, str], None]:
    """The /demo pages: list the simulated peers and switch them up, down or reject."""

    def endpoint(request: Handler, method: str) -> None:
        if method == "POST" and request.url_path.startswith("/demo/peers/"):
            name = request.url_path.removeprefix("/demo/peers/")
            state = request.param("state") or ""
            try:
                peers.set_state(name, state)
            except KeyError:
                request.reply(HTTPStatus.NOT_FOUND, f"no simulated peer {name!r}\n")
                return
            except ValueError as exc:
                request.reply(HTTPStatus.BAD_REQUEST, f"{exc}\n")
                return
            if request.headers.get("Content-Type", "").startswith("application/x-www-form"):
                request.send_response(HTTPStatus.SEE_OTHER)
                request.send_header("Location", "/demo")
                request.send_header("Content-Length", "0")
                request.end_headers()
                return
            request.reply(HTTPStatus.OK, f"{name} is {state}\n")
            return
        if request.url_path != "/demo":
            request.reply(HTTPStatus.NOT_FOUND, "not found\n")
            return
        rows = []
        for name, peer in peers.peers.items():
            buttons = "".join(
                f'<button name="state" value="{s}"{" disabled" * (s == peer.state)}>{s}</button>'
                for s in STATES
            )
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{html.escape(peer.ae_title)}</td>"
                f"<td>{LOOPBACK}:{peer.port}</td><td>{peer.state}</td>"
                f'<td><form method="post" action="/demo/peers/{html.escape(name)}">{buttons}'
                f"</form></td></tr>"
            )
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
        <title>Simulated peers</title></head><body><h1>Simulated peers</h1>
        <p>down: the port is closed (reason refused); reject: the peer refuses our calling AE
        title (reason rejected_calling_ae). <a href="/">Exporter</a></p>
        <table><thead><tr><th>Target</th><th>AE title</th><th>Address</th><th>State</th>
        <th>Switch</th></tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>
        """
        request.reply(HTTPStatus.OK, page, "text/html; charset=utf-8")

    return endpoint
