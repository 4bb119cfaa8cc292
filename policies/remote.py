"""Client of :mod:`policies.serve`: a :class:`~policies.base.Policy` whose calls run on a policy server.

``python -m bench.run --policy remote:ws://127.0.0.1:8765 ...`` evaluates a policy served with
``python -m policies.serve --policy SPEC --port 8765``. The token, if the server wants one, comes from
the environment variable ``ROBOVLM_POLICY_TOKEN``; ``ROBOVLM_POLICY_TIMEOUT_S`` (default 60) sets how
long to wait for the server to come up (e.g. while it loads a large model).

A connection that is lost is not re-established behind the harness's back: the server's per-slot
memory might not match the episode any more, so every later call raises :class:`RemotePolicyError`.

``--policy remote:openpi+ws://HOST:PORT`` evaluates a policy behind an openpi-style server (openpi's
``WebsocketPolicyServer``: metadata on connect, then one observation map in, ``{"actions": ...}``
out, in openpi's msgpack format; ``$ROBOVLM_POLICY_TOKEN`` goes as its ``Api-Key``). Keys map as
:data:`policies.wire.OPENPI_KEYS` says (``rgb_static`` -> ``observation/image``, ``rgb_gripper`` ->
``observation/wrist_image``, ``robot_obs`` -> ``observation/state``, any other key K ->
``observation/K``) plus ``prompt``: the slot's instruction. A reply's ``actions`` is one action
(7,) or a chunk (H, 7); a chunk is executed step by step before the next request, and ``reset``
drops what is left of it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from policies.base import Observation, Policy
from policies.wire import WireError, pack, pack_openpi, to_openpi, unpack

PROTOCOL_VERSION = 1
TOKEN_ENV = "ROBOVLM_POLICY_TOKEN"
TIMEOUT_ENV = "ROBOVLM_POLICY_TIMEOUT_S"
MIB = 1 << 20

__all__ = ["OpenPIRemotePolicy", "RemotePolicy", "RemotePolicyError", "make_remote"]


class RemotePolicyError(RuntimeError):
    """The server answered with an error, or the connection failed.

    ``code`` is the server's error code (``"policy_error"``, ``"bad_request"``, ``"unauthorized"``,
    ``"busy"``, ...) or ``"connection"`` / ``"protocol"`` for failures seen by the client;
    ``remote_traceback`` is what the server sent as a traceback (empty: servers log theirs).
    """

    def __init__(self, message: str, *, code: str = "connection", remote_traceback: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.remote_traceback = remote_traceback


class RemotePolicy(Policy):
    """A policy served by ``python -m policies.serve`` at ``url`` (``ws://host:port``).

    Args:
        url: The server's address.
        token: Shared secret, if the server was started with one.
        timeout_s: How long to wait for the server to accept the connection, retrying with backoff
            while nothing listens yet or while it serves another client.
        connect_retries: Give up after this many connection attempts (``None``: only ``timeout_s``
            limits them).
        request_timeout_s: Longest wait for the reply to one request (``None``: no limit); on a
            timeout the connection is closed, since a late reply would answer the wrong request.
        max_reply_mb: Refuse replies larger than this many MiB.
        verbose: Say on stderr when waiting for the server.

    ``needs_images`` and ``action_mode`` are those the server's policy declares.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout_s: float = 60.0,
        connect_retries: int | None = None,
        request_timeout_s: float | None = 600.0,
        max_reply_mb: float = 64.0,
        verbose: bool = True,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValueError(f"a remote policy URL must look like ws://host:port, got {url!r}")
        if connect_retries is not None and connect_retries < 1:
            raise ValueError(f"connect_retries must be >= 1 or None, got {connect_retries}")
        self.url = url
        self.token = token or None
        self.timeout_s = float(timeout_s)
        self.connect_retries = connect_retries
        self.request_timeout_s = request_timeout_s
        self.max_reply_bytes = int(max_reply_mb * MIB)
        self.verbose = verbose
        self.metadata: dict[str, Any] = {}
        self.last_server_time_s: float | None = None
        self._ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._connect()
        self.needs_images = bool(self.metadata.get("needs_images", True))
        self.action_mode = str(self.metadata.get("action_mode", "relative"))
        conventions = self.metadata.get("action_conventions")
        self.action_conventions = None if conventions is None else tuple(str(c) for c in conventions)

    # ------------------------------------------------------------------ connection

    def _open(self, remaining: float) -> tuple[ClientConnection, dict]:
        """One attempt: connect and handshake. Returns the connection and the server's reply."""
        ws = connect(
            self.url,
            open_timeout=max(min(remaining, 10.0), 0.1),
            proxy=None,  # a policy server is reached directly, never through an HTTP proxy
            compression=None,
            max_size=self.max_reply_bytes,
            close_timeout=2,
        )
        ws.__enter__()  # the documented context-manager use (no legacy-API warning); closed by close()
        try:
            ws.send(pack({"type": "hello", "token": self.token, "protocol": PROTOCOL_VERSION}))
            raw = ws.recv(timeout=max(remaining, 5.0))
            reply = unpack(raw) if not isinstance(raw, str) else None
        except BaseException:
            ws.close()
            raise
        if not isinstance(reply, dict):
            ws.close()
            raise RemotePolicyError(
                f"{self.url} is not a policy server (bad handshake reply)", code="protocol"
            )
        return ws, reply

    def _connect(self) -> None:
        start = time.monotonic()
        deadline = start + self.timeout_s
        attempt, delay, announced = 0, 0.05, False
        last = ""
        while True:
            attempt += 1
            try:
                ws, reply = self._open(deadline - time.monotonic())
            except (OSError, TimeoutError, ConnectionClosed) as exc:  # nothing listens (yet), reset, ...
                last = f"{type(exc).__name__}: {exc}"
            except InvalidURI as exc:
                raise ValueError(f"bad remote policy URL {self.url!r}: {exc}") from None
            except (InvalidHandshake, WireError) as exc:
                raise RemotePolicyError(
                    f"{self.url} does not speak the policy protocol: {type(exc).__name__}: {exc}",
                    code="protocol",
                ) from None
            else:
                kind = reply.get("type")
                if kind == "metadata":
                    if reply.get("protocol") != PROTOCOL_VERSION:
                        ws.close()
                        raise RemotePolicyError(
                            f"policy server {self.url} speaks protocol {reply.get('protocol')!r}, this client "
                            f"{PROTOCOL_VERSION}",
                            code="protocol",
                        )
                    self._ws = ws
                    self._stack.callback(ws.close)
                    self.metadata = reply
                    return
                ws.close()
                error = str(reply.get("error", reply))
                if kind != "error" or reply.get("code") != "busy":
                    raise RemotePolicyError(
                        f"policy server {self.url} refused the connection: {error}",
                        code=str(reply.get("code", "protocol")),
                    )
                last = error
            elapsed = time.monotonic() - start
            if (self.connect_retries is not None and attempt >= self.connect_retries) or (
                time.monotonic() + delay > deadline
            ):
                if last.startswith("Busy"):
                    advice = "it stayed busy with another client; wait for that client to finish"
                else:
                    advice = "start one with: python -m policies.serve --policy SPEC --port PORT"
                raise RemotePolicyError(
                    f"no policy server available at {self.url} after {attempt} attempt(s) in {elapsed:.1f} s "
                    f"(last: {last}); {advice}",
                    code="connection",
                )
            if self.verbose and not announced and elapsed + delay > 1.0:
                print(
                    f"RemotePolicy: waiting up to {self.timeout_s:g} s for the policy server at {self.url} ({last})",
                    file=sys.stderr,
                    flush=True,
                )
                announced = True
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _request(self, message: dict[str, Any], expect: str) -> dict[str, Any]:
        data = pack(message)
        limit = int(self.metadata.get("max_message_bytes", 0)) or None
        if limit is not None and len(data) > limit:
            raise RemotePolicyError(
                f"a {message['type']!r} request of {len(data) / MIB:.2f} MiB exceeds the server's limit of "
                f"{limit / MIB:.2f} MiB (start the server with a larger --max-message-mb)",
                code="too_big",
            )
        with self._lock:
            if self._ws is None:
                raise RemotePolicyError(
                    f"the connection to {self.url} is closed" + (f" ({self._broken})" if self._broken else "")
                )
            try:
                self._ws.send(data)
                raw = self._ws.recv(timeout=self.request_timeout_s)
            except TimeoutError:
                self._abandon(f"no reply within {self.request_timeout_s} s")
                raise RemotePolicyError(
                    f"policy server {self.url} sent no reply within {self.request_timeout_s} s; connection closed"
                ) from None
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                detail = (
                    f"code {rcvd.code}" + (f": {rcvd.reason}" if rcvd.reason else "") if rcvd else str(exc)
                )
                self._abandon(f"lost: {detail}")
                raise RemotePolicyError(f"connection to policy server {self.url} lost ({detail})") from None
        try:
            reply = unpack(raw) if not isinstance(raw, str) else None
        except WireError as exc:
            raise RemotePolicyError(f"unreadable reply from {self.url}: {exc}", code="protocol") from None
        if not isinstance(reply, dict):
            raise RemotePolicyError(f"unexpected reply from {self.url}: not a map", code="protocol")
        if reply.get("type") == "error":
            raise RemotePolicyError(
                str(reply.get("error", "unknown error")),
                code=str(reply.get("code", "error")),
                remote_traceback=str(reply.get("traceback", "")),
            )
        if reply.get("type") != expect:
            raise RemotePolicyError(
                f"unexpected reply type {reply.get('type')!r} from {self.url} (wanted {expect!r})",
                code="protocol",
            )
        return reply

    def _abandon(self, why: str) -> None:
        self._broken = why
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()

    # ------------------------------------------------------------------ the Policy interface

    def reset(
        self,
        instruction: str,
        *,
        slot: int = 0,
        seed: int | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self._request(
            {
                "type": "reset",
                "instruction": instruction,
                "slot": int(slot),
                "seed": None if seed is None else int(seed),
                "info": None if info is None else dict(info),
            },
            "ok",
        )

    def act_batch(self, observations: Sequence[Observation], slots: Sequence[int]) -> np.ndarray:
        reply = self._request(
            {"type": "act", "observations": list(observations), "slots": [int(s) for s in slots]}, "actions"
        )
        self.last_server_time_s = reply.get("server_time_s")
        return np.asarray(reply["actions"])

    def health(self) -> dict[str, Any]:
        """The server's ``{"type": "ok", "uptime_s", "requests"}``."""
        return self._request({"type": "health"}, "ok")

    def close(self) -> None:
        with self._lock:
            self._ws = None
            self._broken = self._broken or "closed by the client"
            self._stack.close()

    def __enter__(self) -> RemotePolicy:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemotePolicy({self.url!r}, policy={self.metadata.get('policy')!r})"


OPENPI_PREFIX = "openpi+"


class OpenPIRemotePolicy(Policy):
    """A policy behind an openpi-style websocket server (see the module docstring for the mapping).

    openpi's servers keep no per-slot memory, so slots are served one request at a time, and
    ``needs_images`` stays True (the server does not say).
    """

    def __init__(self, url: str, api_key: str | None = None, *, timeout_s: float = 60.0) -> None:
        headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
        self.url = url
        try:
            self._ws = connect(
                url,
                open_timeout=timeout_s,
                proxy=None,
                compression=None,
                max_size=None,
                additional_headers=headers,
            )
            self._ws.__enter__()  # the documented context-manager use; closed by close()
            self.metadata = unpack(self._ws.recv(timeout=timeout_s), openpi=True)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed, WireError) as exc:
            raise RemotePolicyError(
                f"no openpi-style policy server at {url}: {type(exc).__name__}: {exc}"
            ) from None
        self._prompts: dict[int, str] = {}
        self._chunks: dict[int, deque] = {}

    def reset(self, instruction: str, *, slot: int = 0, **_: Any) -> None:  # openpi's servers take no seed
        self._prompts[slot] = instruction
        self._chunks[slot] = deque()

    def act(self, obs: Observation, *, slot: int = 0) -> np.ndarray:
        chunk = self._chunks.setdefault(slot, deque())
        if not chunk:
            try:
                self._ws.send(pack_openpi(to_openpi(obs, self._prompts.get(slot, ""))))
                raw = self._ws.recv()
            except ConnectionClosed as exc:
                raise RemotePolicyError(
                    f"connection to openpi-style server {self.url} lost ({exc})"
                ) from None
            if isinstance(raw, str):  # openpi's servers send their error as text
                lines = [line for line in raw.strip().splitlines() if line.strip()] or ["error"]
                raise RemotePolicyError(lines[-1], code="policy_error")
            actions = np.asarray(unpack(raw, openpi=True).get("actions"), dtype=np.float32)
            chunk.extend(actions.reshape(-1, actions.shape[-1]) if actions.ndim else [actions])
        return chunk.popleft()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()


def make_remote(arg: str | None) -> Policy:
    """Registry factory for ``remote:ws://host:port`` (our server) and ``remote:openpi+ws://host:port``
    (an openpi-style one); token from ``$ROBOVLM_POLICY_TOKEN``."""
    if not arg:
        raise ValueError(
            "policy 'remote' needs the server's URL: remote:ws://HOST:PORT or remote:openpi+ws://HOST:PORT"
        )
    timeout = os.environ.get(TIMEOUT_ENV)
    try:
        timeout_s = float(timeout) if timeout else 60.0
    except ValueError:
        raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds, got {timeout!r}") from None
    if arg.startswith(OPENPI_PREFIX):
        return OpenPIRemotePolicy(
            arg.removeprefix(OPENPI_PREFIX), os.environ.get(TOKEN_ENV) or None, timeout_s=timeout_s
        )
    return RemotePolicy(arg, os.environ.get(TOKEN_ENV) or None, timeout_s=timeout_s)
