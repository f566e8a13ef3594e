"""A scripted MCP agent for the gateway's end-to-end tests, on the official
Python SDK (PyPI's `mcp`, installed by scripts/install-mcp-client).

    python mcp_agent.py URL CA_FILE TOKEN CLIENT_NAME

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

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.types import Implementation


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main(url, ca_file, token, client_name):
    tls = ssl.create_default_context(cafile=ca_file)
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
