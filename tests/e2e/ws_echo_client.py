"""A WebSocket client for the lab's client namespace (run as a script by e2e tests).

    python ws_echo_client.py URL CONNECT_HOST [--cookie C] [--messages N] [--ca FILE]

Opens URL (its host goes in the Host header) over a TCP connection to CONNECT_HOST,
sends N text messages and reads their echoes, and prints one JSON line: the 101's
x-server and set-cookie headers and the echoes (only the status when it is not 101).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def main(args: argparse.Namespace) -> dict[str, object]:
    headers = {"Cookie": args.cookie} if args.cookie else {}
    context = None
    if urlsplit(args.url).scheme == "wss":
        context = ssl.create_default_context(cafile=args.ca)
        context.check_hostname = False
    port = urlsplit(args.url).port or (443 if context else 80)
    try:
        ws = await connect(args.url, host=args.connect, port=port, additional_headers=headers,
                           ssl=context, open_timeout=5)
    except InvalidStatus as exc:
        return {"status": exc.response.status_code}
    async with ws:
        response = ws.response
        assert response is not None
        echoes = []
        for i in range(args.messages):
            await ws.send(f"message {i}")
            echoes.append(await asyncio.wait_for(ws.recv(), 5))
        return {"status": response.status_code,
                "x_server": response.headers.get("X-Server"),
                "set_cookie": response.headers.get("Set-Cookie"),
                "echoes": echoes}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("connect")
    parser.add_argument("--cookie")
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--ca")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
