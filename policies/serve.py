"""Serve any policy over a websocket: ``python -m policies.serve --policy SPEC [--port 8765]``.

Evaluate it from another process (or machine) with ``python -m bench.run --policy
remote:ws://HOST:PORT ...``: the harness talks to :class:`policies.remote.RemotePolicy`, which
forwards ``reset`` and ``act_batch`` here, so a policy can run in its own environment (its own
Python, CUDA and dependencies) while the benchmark runs elsewhere.

Options: ``--host`` (default ``127.0.0.1``: only this machine can connect; another address needs an
explicit ``--host`` and prints a warning), ``--port`` (default 8765; 0 picks a free port), ``--token``
(or the environment variable ``ROBOVLM_POLICY_TOKEN``: a shared secret the client must present),
``--max-message-mb`` (default 64, in MiB: larger incoming messages are refused). Once listening the
server prints ``listening on ws://HOST:PORT`` on stdout. Ctrl-C or SIGTERM shuts it down gracefully
(a running policy call finishes, connections are closed with code 1001, ``policy.close()`` runs,
exit code 0); a second signal exits at once.

Protocol (version 1)
--------------------
Every message is one binary websocket frame holding a msgpack map encoded by :mod:`policies.wire`
(numpy arrays travel as msgpack extension types). The client sends requests one at a time and each
gets exactly one reply, in order.

1. Handshake. The client's first message is ``{"type": "hello", "token": str | None}``. The server
   replies ``{"type": "metadata", "protocol": 1, "policy": SPEC, "needs_images": bool,
   "action_mode": str, "max_message_bytes": int}``. If the server has a token and the client's
   differs, the reply is an error with code ``"unauthorized"`` and the server closes the connection
   (close code 1008); so it does for a first message that is not a valid hello (code
   ``"bad_request"``) or no hello within 10 s (code ``"handshake_timeout"``).
2. Requests, after the handshake:

   * ``{"type": "reset", "instruction": str, "slot": int, "seed": int | None, "info": map | None}``
     -> ``{"type": "ok"}`` (``seed`` and ``info`` may be left out).
   * ``{"type": "act", "observations": [map, ...], "slots": [int, ...]}`` -> ``{"type": "actions",
     "actions": array (B, 7), "server_time_s": float}`` (time spent in ``policy.act_batch``).
   * ``{"type": "health"}`` -> ``{"type": "ok", "uptime_s": float, "requests": int}``.

3. Errors. Any failure while handling a request is answered with ``{"type": "error", "code": ...,
   "error": "<exception type>: <message>", "traceback": ""}`` and the connection stays usable (the
   traceback goes to the server's log, never to the client; the key stays for older clients):
   code ``"policy_error"`` when the policy raised,
   ``"bad_request"`` for a malformed message (not msgpack, a text frame, not a map, an unknown
   ``type``, a missing or mistyped key), ``"encode_error"`` when the reply cannot be encoded,
   ``"internal"`` for a bug of the server itself. A message larger than ``--max-message-mb`` is
   refused by the websocket layer: the server closes that connection with code 1009 ("message too
   big") and keeps serving other connections.

Clients and slots: the server holds one policy and serves **one client at a time**. The client
owns the policy's whole slot namespace (slots mean what they mean to a local policy), so two
clients sharing it would clear each other's memory: while a client is connected, another client's
hello is answered with an error of code ``"busy"`` (close code 1013, "try again later");
:class:`~policies.remote.RemotePolicy` retries busy servers until its connect timeout. A slot's
memory survives reconnections; the harness resets every slot before using it. All policy calls run
on one worker thread, so a policy never sees two calls at once, and the event loop keeps answering
keepalive pings while a slow policy computes. A client that sends nothing for ``--idle-timeout-s``
(default 300) after its hello is disconnected (close code 1001), so a forgotten client cannot hold
the server.

Clients of openpi (the ``openpi-client`` package's ``WebsocketClientPolicy``) connect to
``ws://HOST:PORT/openpi``: they get the metadata on connect, then each request is one observation
map in openpi's keys (``policies.wire.OPENPI_KEYS``: ``observation/image`` -> ``rgb_static``, ...,
``prompt``: the instruction; a new prompt resets slot 0) and each reply ``{"actions": (1, 7),
"server_timing"}``; an error is a one-line text frame. ``--token`` is their ``Api-Key``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hmac
import ipaddress
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from policies.base import Policy
from policies.wire import WireError, from_openpi, pack, pack_openpi, unpack

PROTOCOL_VERSION = 1
TOKEN_ENV = "ROBOVLM_POLICY_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_MESSAGE_MB = 64.0
HANDSHAKE_TIMEOUT_S = 10.0
#: A connected client that sends nothing for this long is disconnected, so it cannot hold the server.
IDLE_TIMEOUT_S = 300.0
MIB = 1 << 20

#: Connections to this path speak openpi's protocol (clients of the ``openpi-client`` package).
OPENPI_PATH = "/openpi"

# websocket close codes
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013


class BadRequest(ValueError):
    """A request that does not follow the protocol."""


def error_reply(code: str, error: str, tb: str = "") -> dict[str, Any]:
    return {"type": "error", "code": code, "error": error, "traceback": tb}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _int(msg: Mapping[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = msg.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise BadRequest(f"{key!r} must be an integer{' or None' if optional else ''}, got {value!r}")
    return int(value)


class PolicyServer:
    """Serves one policy to one websocket client at a time (see the module docstring)."""

    def __init__(
        self,
        policy: Policy,
        *,
        spec: str,
        token: str | None = None,
        max_message_bytes: int = int(DEFAULT_MAX_MESSAGE_MB * MIB),
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.token = token or None
        self.max_message_bytes = int(max_message_bytes)
        self.handshake_timeout_s = handshake_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.spec = spec
        self.metadata = {
            "type": "metadata",
            "protocol": PROTOCOL_VERSION,
            "policy": spec,
            "needs_images": bool(getattr(policy, "needs_images", True)),
            "action_mode": str(getattr(policy, "action_mode", "relative")),
            "action_conventions": getattr(policy, "action_conventions", None),
            "max_message_bytes": self.max_message_bytes,
        }
        self._log = log or (lambda text: print(f"policies.serve: {text}", file=sys.stderr, flush=True))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy")
        self._client: ServerConnection | None = None
        self._started = time.monotonic()
        self.requests = 0

    # ------------------------------------------------------------------ connections

    async def handler(self, ws: ServerConnection) -> None:
        peer = f"{ws.remote_address[0]}:{ws.remote_address[1]}" if ws.remote_address else "?"
        if ws.request is not None and ws.request.path.rstrip("/") == OPENPI_PATH:
            with contextlib.suppress(ConnectionClosed):
                await self._serve_openpi(ws, peer)
            return
        served = 0
        try:
            if not await self._handshake(ws, peer):
                return
            self._log(f"client {peer} connected")
            how = "closed normally"
            try:
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), self.idle_timeout_s)
                    except asyncio.TimeoutError:
                        how = f"idle for {self.idle_timeout_s:g} s, disconnected"
                        await ws.close(CLOSE_GOING_AWAY, f"idle for {self.idle_timeout_s:g} s")
                        break
                    reply = await self.respond(raw)
                    served += 1
                    try:
                        data = pack(reply)
                    except WireError as exc:
                        data = pack(error_reply("encode_error", f"WireError: {exc}"))
                    await ws.send(data)
            except ConnectionClosed as exc:
                how = "closed normally" if exc.rcvd is not None and exc.rcvd.code == 1000 else str(exc)
            finally:
                self._client = None
                self._log(f"client {peer} disconnected after {served} request(s): {how}")
        except ConnectionClosed:
            pass

    async def _reject(self, ws: ServerConnection, reply: dict, close_code: int) -> bool:
        await ws.send(pack(reply))
        await ws.close(close_code, reply["code"])
        return False

    async def _handshake(self, ws: ServerConnection, peer: str) -> bool:
        try:
            raw = await asyncio.wait_for(ws.recv(), self.handshake_timeout_s)
        except asyncio.TimeoutError:
            reply = error_reply(
                "handshake_timeout", f"HandshakeTimeout: no hello within {self.handshake_timeout_s} s"
            )
            return await self._reject(ws, reply, CLOSE_POLICY_VIOLATION)
        try:
            msg = self._parse(raw)
            if msg["type"] != "hello":
                raise BadRequest(f"the first message must be of type 'hello', got {msg['type']!r}")
        except BadRequest as exc:
            return await self._reject(
                ws, error_reply("bad_request", f"BadRequest: {exc}"), CLOSE_POLICY_VIOLATION
            )
        if self.token is not None:
            given = msg.get("token")
            if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self.token.encode()):
                self._log(f"client {peer} rejected: wrong or missing token")
                reply = error_reply("unauthorized", "Unauthorized: wrong or missing token")
                return await self._reject(ws, reply, CLOSE_POLICY_VIOLATION)
        if self._client is not None:
            self._log(f"client {peer} rejected: busy with another client")
            return await self._reject(ws, self._busy_reply(), CLOSE_TRY_AGAIN_LATER)
        self._client = ws  # no await between the check and here: no other handler can interleave
        try:
            await ws.send(pack(self.metadata))
        except BaseException:
            self._client = None
            raise
        return True

    async def _serve_openpi(self, ws: ServerConnection, peer: str) -> None:
        """openpi's protocol: metadata on connect, then one observation map in, ``{"actions"}`` out;
        errors go as a text frame. A new ``prompt`` resets slot 0."""
        if self.token is not None:
            given = ws.request.headers.get("Authorization", "") if ws.request is not None else ""
            if not hmac.compare_digest(given.encode(), f"Api-Key {self.token}".encode()):
                self._log(f"openpi client {peer} rejected: wrong or missing Api-Key")
                await ws.send("Unauthorized: wrong or missing Api-Key")
                await ws.close(CLOSE_POLICY_VIOLATION, "unauthorized")
                return
        if self._client is not None:
            await ws.send(self._busy_reply()["error"])
            await ws.close(CLOSE_TRY_AGAIN_LATER, "busy")
            return
        self._client = ws
        self._log(f"openpi client {peer} connected")
        try:
            await ws.send(pack_openpi({k: v for k, v in self.metadata.items() if k != "type"}))
            prompt: str | None = None
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), self.idle_timeout_s)
                except asyncio.TimeoutError:
                    await ws.close(CLOSE_GOING_AWAY, f"idle for {self.idle_timeout_s:g} s")
                    return
                reply, prompt = await self._openpi_reply(raw, prompt)
                await ws.send(reply)
        finally:
            self._client = None
            self._log(f"openpi client {peer} disconnected")

    async def _openpi_reply(self, raw: Any, prompt: str | None) -> tuple[bytes | str, str | None]:
        self.requests += 1
        try:
            request = unpack(raw, openpi=True)
            if not isinstance(request, dict):
                raise BadRequest(f"a request must be a msgpack map, got {type(request).__name__}")
        except (WireError, BadRequest) as exc:
            return f"BadRequest: {exc}", prompt
        obs, asked = from_openpi(request)
        try:
            if asked is not None and asked != prompt:
                await self._call(self.policy.reset, asked, slot=0, seed=None, info=None)
                prompt = asked
            start = time.perf_counter()
            actions = np.asarray(await self._call(self.policy.act_batch, [obs], [0]), dtype=np.float64)
            timing = {"infer_ms": 1000 * (time.perf_counter() - start)}
            return pack_openpi({"actions": actions[:1], "server_timing": timing}), prompt
        except Exception as exc:
            return self._failure("policy_error", exc)["error"], prompt

    def _busy_reply(self) -> dict[str, Any]:
        return error_reply(
            "busy",
            f"Busy: this server of {self.spec!r} is serving another client (one client at a time); "
            "try again when that client is done, or start a second server on another port",
        )

    # ------------------------------------------------------------------ requests

    @staticmethod
    def _parse(raw: Any) -> dict[str, Any]:
        if isinstance(raw, str):
            raise BadRequest("got a text frame; messages must be binary msgpack")
        try:
            msg = unpack(raw)
        except WireError as exc:
            raise BadRequest(str(exc)) from None
        if not isinstance(msg, dict):
            raise BadRequest(f"a message must be a msgpack map, got {type(msg).__name__}")
        if not isinstance(msg.get("type"), str):
            raise BadRequest("the message has no string 'type'")
        return msg

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def respond(self, raw: Any) -> dict[str, Any]:
        """The reply to one request (never raises for a bad request or a failing policy)."""
        self.requests += 1
        try:
            msg = self._parse(raw)
            kind = msg["type"]
            if kind == "health":
                return {"type": "ok", "uptime_s": time.monotonic() - self._started, "requests": self.requests}
            if kind == "reset":
                instruction = msg.get("instruction")
                if not isinstance(instruction, str):
                    raise BadRequest(f"'instruction' must be a string, got {instruction!r}")
                slot, seed = _int(msg, "slot"), _int(msg, "seed", optional=True)
                info = msg.get("info")
                if info is not None and not isinstance(info, dict):
                    raise BadRequest(f"'info' must be a map or None, got {type(info).__name__}")
            elif kind == "act":
                observations, slots = msg.get("observations"), msg.get("slots")
                if not isinstance(observations, list) or not all(isinstance(o, dict) for o in observations):
                    raise BadRequest("'observations' must be a list of maps")
                if not isinstance(slots, list):
                    raise BadRequest("'slots' must be a list of integers")
                slots = [_int({"slot": s}, "slot") for s in slots]
                if len(slots) != len(observations):
                    raise BadRequest(f"{len(observations)} observations but {len(slots)} slots")
            else:
                raise BadRequest(f"unknown message type {kind!r}; valid: hello (first), reset, act, health")
        except BadRequest as exc:
            return error_reply("bad_request", f"BadRequest: {exc}")
        except Exception as exc:  # a bug here must not stop the server
            return self._failure("internal", exc)
        try:
            if kind == "reset":
                await self._call(self.policy.reset, instruction, slot=slot, seed=seed, info=info)
                return {"type": "ok"}
            start = time.perf_counter()
            actions = await self._call(self.policy.act_batch, observations, slots)
            elapsed = time.perf_counter() - start
            actions = np.asarray(actions)
            if actions.dtype.kind not in "biuf":
                raise TypeError(f"act_batch returned an array of dtype {actions.dtype}, not numbers")
            return {"type": "actions", "actions": actions, "server_time_s": elapsed}
        except Exception as exc:
            return self._failure("policy_error", exc)

    def _failure(self, code: str, exc: Exception) -> dict[str, Any]:
        """The error line for the client; the traceback goes to this server's log only."""
        line = f"{type(exc).__name__}: {exc}"
        self._log(f"{code}: {line}\n{traceback.format_exc().rstrip()}")
        return error_reply(code, line)

    # ------------------------------------------------------------------ life cycle

    async def serve(
        self,
        host: str,
        port: int,
        stop: asyncio.Event,
        on_listening: Callable[[str], None] | None = None,
    ) -> None:
        """Serve until ``stop`` is set; then close connections (code 1001) and ``policy.close()``."""
        async with serve(
            self.handler,
            host,
            port,
            max_size=self.max_message_bytes,
            compression=None,
            close_timeout=5,
        ) as server:
            bound = server.sockets[0].getsockname()
            shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
            if on_listening is not None:
                on_listening(f"ws://{shown}:{bound[1]}")
            await stop.wait()
            self._log("shutting down")
        await self.close()

    async def close(self) -> None:
        try:
            await self._call(self.policy.close)
        finally:
            self._executor.shutdown(wait=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m policies.serve",
        description="Serve a policy over a websocket (msgpack messages; see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--policy", required=True, help="policy spec: NAME, NAME:ARG or package.module:Class")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind; anything but loopback exposes the policy"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (0 picks a free one)")
    parser.add_argument(
        "--token",
        default=None,
        help=f"shared secret clients must send (default: ${TOKEN_ENV}; none: any client is accepted)",
    )
    parser.add_argument(
        "--max-message-mb",
        type=float,
        default=DEFAULT_MAX_MESSAGE_MB,
        help="refuse incoming messages larger than this many MiB",
    )
    parser.add_argument(
        "--idle-timeout-s",
        type=float,
        default=IDLE_TIMEOUT_S,
        help="disconnect a client that sends nothing for this many seconds",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log connections")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from policies.registry import make_policy

    args = parse_args(argv)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    if not 0 < args.max_message_mb < 1 << 20:
        print(
            f"policies.serve: error: --max-message-mb must be > 0, got {args.max_message_mb}", file=sys.stderr
        )
        return 2
    if not args.idle_timeout_s > 0:
        print(
            f"policies.serve: error: --idle-timeout-s must be > 0, got {args.idle_timeout_s}", file=sys.stderr
        )
        return 2
    if not 0 <= args.port < 65536:
        print(f"policies.serve: error: --port must be in 0..65535, got {args.port}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        advice = (
            "set --token (or $" + TOKEN_ENV + ") so that only your clients can drive the policy"
            if token is None
            else "the token and all messages travel unencrypted (ws://); use a trusted network or a tunnel"
        )
        print(
            f"policies.serve: warning: binding {args.host!r} exposes the policy beyond this machine; {advice}",
            file=sys.stderr,
            flush=True,
        )
    try:
        policy = make_policy(args.policy)
    except Exception as exc:  # the registry's account (ValueError) or a constructor's failure: one line
        reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        print(f"policies.serve: error: policy {args.policy!r} cannot be built: {reason}", file=sys.stderr)
        return 2
    log = (lambda text: None) if args.quiet else None
    server = PolicyServer(
        policy,
        spec=args.policy,
        token=token,
        max_message_bytes=int(args.max_message_mb * MIB),
        idle_timeout_s=args.idle_timeout_s,
        log=log,
    )

    def listening(url: str) -> None:
        print(f"listening on {url}", flush=True)
        print(
            f"policies.serve: serving {args.policy!r} (needs_images={server.metadata['needs_images']}, "
            f"action_mode={server.metadata['action_mode']!r}, token {'required' if token else 'not set'}, "
            f"max message {args.max_message_mb:g} MiB); evaluate with --policy remote:{url}",
            file=sys.stderr,
            flush=True,
        )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(name: str) -> None:
            if stop.is_set():
                print(f"policies.serve: second {name}: exiting now", file=sys.stderr, flush=True)
                os._exit(130)
            print(f"policies.serve: {name} received", file=sys.stderr, flush=True)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            # not on Windows: there Ctrl-C raises KeyboardInterrupt, handled below
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal, sig.name)
        await server.serve(args.host, args.port, stop, listening)

    try:
        asyncio.run(run())
    except OSError as exc:  # e.g. the port is in use
        print(f"policies.serve: error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        policy.close()
        return 1
    except KeyboardInterrupt:
        policy.close()
        return 130
    print("policies.serve: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
