"""openpi interop: our policy server answers the openpi-client package, and remote:openpi+ws://...
evaluates an openpi-style server (one written here with openpi-client's own msgpack format)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from policies.registry import make_policy
from policies.remote import RemotePolicyError
from tests.test_remote_policy import Server

openpi_client = pytest.importorskip("openpi_client", reason="openpi-client is not installed")
from openpi_client import msgpack_numpy  # noqa: E402
from openpi_client.websocket_client_policy import WebsocketClientPolicy  # noqa: E402


def test_our_server_answers_openpi_clients(tmp_path):
    log = tmp_path / "server.log"
    server = Server(["--policy", "tests.policy_fixtures:RaisingPolicy", "--token", "k3y"], log)
    try:
        url = server.wait_listening()
        client = WebsocketClientPolicy(host=f"{url}/openpi", api_key="k3y")
        assert client.get_server_metadata()["policy"] == "tests.policy_fixtures:RaisingPolicy"
        request = {"observation/state": np.zeros(15, np.float32), "prompt": "open the drawer"}
        for _ in range(2):
            reply = client.infer(request)
            assert reply["actions"].shape == (1, 7) and "infer_ms" in reply["server_timing"]
        with pytest.raises(RuntimeError, match="RuntimeError: deliberate failure") as info:
            client.infer(request)  # the policy raises on its third action
        assert "Traceback" not in str(info.value)
        from websockets.sync.client import connect

        headers = {"Authorization": "Api-Key wrong"}
        with connect(f"{url}/openpi", proxy=None, additional_headers=headers) as ws:
            assert ws.recv(timeout=5) == "Unauthorized: wrong or missing Api-Key"
    finally:
        server.stop()
    assert "deliberate failure" in log.read_text() and "Traceback" in log.read_text()


class OpenPIStyleServer:
    """openpi's WebsocketPolicyServer in miniature: metadata first, then obs -> a chunk of 3 actions."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        async def handler(ws):
            await ws.send(msgpack_numpy.packb({"name": "tiny"}))
            async for raw in ws:
                obs = msgpack_numpy.unpackb(raw)
                self.requests.append(obs)
                if obs["prompt"] == "fail":
                    await ws.send("Traceback (most recent call last):\n  ...\nValueError: no such task")
                    continue
                step = float(len(self.requests))
                await ws.send(msgpack_numpy.packb({"actions": np.full((3, 7), step / 10, np.float32)}))

        self.stop = asyncio.Event()
        async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
            self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            self.ready.set()
            await self.stop.wait()


def test_remote_openpi_policy_maps_keys_and_runs_chunks():
    server = OpenPIStyleServer()
    policy = make_policy(f"remote:openpi+{server.url}")
    obs = {
        "rgb_static": np.zeros((8, 8, 3), np.uint8),
        "robot_obs": np.ones(15, np.float32),
        "scene_obs": np.zeros(24),
    }
    policy.reset("push the block", slot=0)
    actions = [policy.act(obs, slot=0) for _ in range(4)]
    assert len(server.requests) == 2, "a chunk of 3 is played before the next request"
    np.testing.assert_allclose(np.stack(actions)[:, 0], [0.1, 0.1, 0.1, 0.2])
    first = server.requests[0]
    assert set(first) == {"observation/image", "observation/state", "observation/scene_obs", "prompt"}
    assert first["prompt"] == "push the block" and first["observation/image"].shape == (8, 8, 3)
    policy.reset("fail", slot=1)
    with pytest.raises(RemotePolicyError, match="^ValueError: no such task$"):
        policy.act(obs, slot=1)
    policy.close()
