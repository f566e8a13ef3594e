"""A scripted MCP agent for the gateway's end-to-end tests, on the official
Python SDK (PyPI's `mcp`, installed by scripts/install-mcp-client).

    python mcp_agent.py URL CA_FILE TOKEN CLIENT_NAME
    python mcp_agent.py URL CA_FILE --oauth CLIENT_NAME

With `--oauth` the agent holds no token: it signs its human in the way MCP
clients do (the SDK's OAuthClientProvider: protected-resource and
authorization-server discovery, dynamic registration, PKCE), printing
{"authorize": URL} for the test to open in a browser and listening on a
loopback address for the redirect back.

Reads one JSON command per line on stdin and answers one JSON line on
stdout, so the test can interleave a human's approval between calls:

    {"op": "list_tools"}
    {"op": "call", "tool": "query", "args": {...}}

Answers: {"ok": true, "tools": [...]} or {"ok": true, "structured": {...},
"is_error": bool, "text": "..."} or {"ok": false, "error": "..."} (a JSON-RPC
error: unknown tool, invalid arguments), or, as the last line, {"ok": false,
"fatal": true, "error": "..."} when the SDK ended the session (it does on an
HTTP error such as 401).
"""

import asyncio
import json
import ssl
import sys
from urllib.parse import parse_qs, urlparse

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.shared.auth import OAuthClientMetadata
from mcp.types import Implementation


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


class MemoryStorage(TokenStorage):
    """Tokens and registration kept for this run only."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def loopback_callback():
    """A one-shot HTTP listener on 127.0.0.1 for the authorization
    server's redirect, as desktop MCP clients run. Returns its redirect URI
    and a future of the redirect's query."""
    answer = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        request_line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        target = request_line.split(" ")[1] if " " in request_line else "/"
        query = parse_qs(urlparse(target).query)
        body = b"Signed in: you may close this window."
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()
        if not answer.done():
            answer.set_result({k: v[0] for k, v in query.items()})

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}/callback", answer, server


async def oauth_provider(url, client_name):
    redirect_uri, answer, server = await loopback_callback()

    async def redirect_handler(authorization_url):
        emit({"authorize": authorization_url})

    async def callback_handler():
        query = await answer
        server.close()
        if "error" in query:
            raise RuntimeError(f"authorization refused: {query['error']}: {query.get('error_description', '')}")
        return query.get("code"), query.get("state")

    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name=client_name,
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=MemoryStorage(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


async def main(url, ca_file, token, client_name):
    tls = ssl.create_default_context(cafile=ca_file)
    if token == "--oauth":
        http = httpx.AsyncClient(
            auth=await oauth_provider(url, client_name),
            verify=tls,
            timeout=httpx.Timeout(60.0, read=300.0),
        )
    else:
        http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            verify=tls,
            timeout=httpx.Timeout(60.0, read=300.0),
        )
    async with http, streamable_http_client(url, http_client=http) as (read, write, _):
        async with ClientSession(
            read, write, client_info=Implementation(name=client_name, version="1.0")
        ) as session:
            await session.initialize()
            emit({"ok": True, "ready": True})
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                command = json.loads(line)
                try:
                    if command["op"] == "list_tools":
                        tools = await session.list_tools()
                        emit({
                            "ok": True,
                            "tools": [
                                {
                                    "name": t.name,
                                    "input_schema": t.inputSchema,
                                    "output_schema": t.outputSchema,
                                }
                                for t in tools.tools
                            ],
                        })
                    elif command["op"] == "call":
                        result = await session.call_tool(command["tool"], command.get("args", {}))
                        text = "".join(getattr(c, "text", "") for c in result.content)
                        emit({
                            "ok": True,
                            "structured": result.structuredContent,
                            "is_error": bool(result.isError),
                            "text": text,
                        })
                    else:
                        emit({"ok": False, "error": f"unknown op {command['op']}"})
                except McpError as e:
                    emit({"ok": False, "error": str(e), "code": e.error.code})
                except Exception as e:  # noqa: BLE001 - reported to the test
                    emit({"ok": False, "error": f"{type(e).__name__}: {e}"})


def describe(error):
    """An exception and, for a group, every exception inside it."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(e) for e in error.exceptions)
    return f"{type(error).__name__}: {error}"


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:5]))
    except BaseException as e:  # noqa: BLE001 - the SDK ends the session on HTTP errors
        emit({"ok": False, "fatal": True, "error": describe(e)})
        sys.exit(1)
