"""The policy server (``python -m policies.serve``), its client ``RemotePolicy`` and the wire format.

Servers run as subprocesses bound to 127.0.0.1 on a port they pick (``--port 0``); the test reads the
``listening on ws://...`` line. Every subprocess is terminated by its fixture's finalizer.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from policies.random_policy import RandomPolicy
from policies.remote import RemotePolicy, RemotePolicyError, make_remote
from policies.wire import WireError, pack, unpack

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret"
PROBE = "tests.remote_helpers:ProbePolicy"


class Server:
    def __init__(self, args: list[str], log: Path, port: int = 0) -> None:
        env = {k: v for k, v in os.environ.items() if k != "ROBOVLM_POLICY_TOKEN"}
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "policies.serve", *args, "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        self.url = f"ws://127.0.0.1:{port}" if port else None

    def wait_listening(self, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("listening on "):
                    self.url = line.split()[-1]
                    return self.url
            if self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError(f"server did not start; its stderr:\n{self.log.read_text()}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def random_url(tmp_path_factory):
    server = Server(["--policy", "random"], tmp_path_factory.mktemp("srv") / "random.log")
    try:
        yield server.wait_listening()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def probe_url(tmp_path_factory):
    log = tmp_path_factory.mktemp("srv") / "probe.log"
    server = Server(["--policy", PROBE, "--token", TOKEN, "--max-message-mb", "0.25"], log)
    try:
        yield server.wait_listening()
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _raw_client(url: str, token: str | None = None):
    """A bare websocket after a successful handshake."""
    ws = connect(url, proxy=None, compression=None, open_timeout=10)
    ws.__enter__()
    ws.send(pack({"type": "hello", "token": token}))
    assert unpack(ws.recv(timeout=10))["type"] == "metadata"
    return ws


def _obs(value: float = 0.5, state=(1.0, 2.0)) -> dict:
    return {"image": np.full((4, 5, 3), value * 255, np.uint8), "state": np.asarray(state, np.float32)}


# ----------------------------------------------------------------------------- wire format


def test_wire_round_trip():
    obj = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],  # non-contiguous
        "img": np.random.default_rng(0).integers(0, 255, (8, 6, 3), dtype=np.uint8),
        "big_endian": np.arange(3, dtype=">i2"),
        "empty": np.zeros((0, 7)),
        "zero_d": np.array(2.5),
        "strings": np.array(["ab", "c"]),
        "scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.float64(0.1)],
        "plain": [None, True, False, 3, -(2**63), 2.5, "é", b"\x00\x01", (1, 2)],
        7: {"nested": [{"x": np.ones(2)}]},
    }
    out = unpack(pack(obj))
    for key in ("f32", "img", "big_endian", "empty", "zero_d", "strings"):
        np.testing.assert_array_equal(out[key], obj[key])
        assert out[key].dtype == obj[key].dtype and out[key].shape == obj[key].shape
    assert out["img"].flags.writeable and out["f32"].flags.c_contiguous
    for got, want in zip(out["scalars"], obj["scalars"], strict=True):
        assert type(got) is type(want) and got == want
    assert out["plain"] == [None, True, False, 3, -(2**63), 2.5, "é", b"\x00\x01", [1, 2]]
    np.testing.assert_array_equal(out[7]["nested"][0]["x"], np.ones(2))


def test_wire_errors():
    with pytest.raises(WireError, match=r"builtins\.set.*\['obs'\]\[1\]"):
        pack({"obs": [1, {2}]})
    with pytest.raises(WireError, match="dtype object"):
        pack([np.array([1, None], dtype=object)])
    with pytest.raises(WireError, match="64-bit"):
        pack(2**70)
    for bad in (b"\xc1", b"", pack([1]) + b"x", msgpack.packb(msgpack.ExtType(42, b""))):
        with pytest.raises(WireError):
            unpack(bad)
    lying = msgpack.packb(msgpack.ExtType(1, msgpack.packb(["<f4", [3], b"1234"])))
    with pytest.raises(WireError, match="needs 12"):
        unpack(lying)
    with pytest.raises(WireError, match="not allowed"):
        unpack(msgpack.packb(msgpack.ExtType(1, msgpack.packb(["|O", [1], b"12345678"]))))


# ----------------------------------------------------------------------------- server and client


def test_handshake_metadata(random_url, probe_url):
    assert random_url.startswith("ws://127.0.0.1:")
    with RemotePolicy(random_url) as policy:
        assert policy.needs_images is False and policy.action_mode == "relative"
        assert policy.metadata["policy"] == "random" and policy.metadata["protocol"] == 1
        assert policy.health()["type"] == "ok"
    with RemotePolicy(probe_url, TOKEN) as policy:
        assert policy.needs_images is True and policy.action_mode == "absolute"
        assert policy.metadata["policy"] == PROBE
        assert policy.metadata["max_message_bytes"] == int(0.25 * 2**20)


def test_actions_equal_local_policy(random_url):
    local = RandomPolicy()
    with RemotePolicy(random_url) as remote:
        for seed_base in (0, 11):
            for policy in (local, remote):
                for slot in range(3):
                    policy.reset("open the drawer", slot=slot, seed=seed_base + 7 * slot, info={"suite": "t"})
            for _ in range(4):
                obs = [{"robot_obs": np.zeros(15, np.float32)}] * 3
                want = local.act_batch(obs, [0, 1, 2])
                got = remote.act_batch(obs, [0, 1, 2])
                assert got.shape == (3, 7) and got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
                assert remote.last_server_time_s is not None and remote.last_server_time_s >= 0
            np.testing.assert_array_equal(remote.act(obs[0], slot=1), local.act(obs[0], slot=1))


def test_observations_cross_the_wire(probe_url):
    with RemotePolicy(probe_url, TOKEN) as policy:
        policy.reset("pick", slot=2, seed=41, info={"suite": "calvin", "scene": "D"})
        policy.reset("push the block", slot=0, seed=None)
        actions = policy.act_batch([_obs(0.2, (1, 2, 3)), _obs(1.0)], [2, 0])
    np.testing.assert_allclose(actions[0], [2, 41, 4, 51, 1, 6, 2])
    np.testing.assert_allclose(actions[1], [0, -1, 14, 255, 1, 3, 0])


def test_policy_error_text_returned_and_server_keeps_serving(probe_url):
    with RemotePolicy(probe_url, TOKEN) as policy:
        with pytest.raises(RemotePolicyError, match=r"^ValueError: cannot follow 'explode'$") as info:
            policy.reset("explode", slot=0, seed=1)
        assert info.value.code == "policy_error"
        assert info.value.remote_traceback == "", "the traceback stays in the server's log"
        policy.reset("go", slot=0, seed=1)
        with pytest.raises(RemotePolicyError, match=r"RuntimeError: kaboom in slot 0"):
            policy.act_batch([{**_obs(), "explode": True}], [0])
        with pytest.raises(RemotePolicyError, match=r"KeyError: 5"):  # slot never reset
            policy.act_batch([_obs()], [5])
        np.testing.assert_allclose(policy.act(_obs(), slot=0)[:3], [0, 1, 2])


def test_malformed_messages_get_error_replies(probe_url):
    ws = _raw_client(probe_url, TOKEN)
    try:
        bad_messages = [
            (b"\xc1\x00 not msgpack", "not a valid msgpack message"),
            ("a text frame", "text frame"),
            (pack([1, 2]), "must be a msgpack map"),
            (pack({"no": "type"}), "no string 'type'"),
            (pack({"type": "dance"}), "unknown message type 'dance'"),
            (pack({"type": "hello", "token": TOKEN}), "unknown message type 'hello'"),
            (pack({"type": "reset", "slot": 0}), "'instruction' must be a string"),
            (pack({"type": "reset", "instruction": "x", "slot": "0"}), "'slot' must be an integer"),
            (pack({"type": "act", "observations": [_obs()]}), "'slots' must be a list"),
            (pack({"type": "act", "observations": [_obs()], "slots": [0, 1]}), "1 observations but 2 slots"),
            (pack({"type": "act", "observations": 3, "slots": []}), "list of maps"),
        ]
        for message, expected in bad_messages:
            ws.send(message)
            reply = unpack(ws.recv(timeout=10))
            assert reply["type"] == "error" and reply["code"] == "bad_request", reply
            assert expected in reply["error"], (expected, reply["error"])
        ws.send(pack({"type": "health"}))
        assert unpack(ws.recv(timeout=10))["type"] == "ok"
        ws.send(pack({"type": "reset", "instruction": "x", "slot": 0}))  # seed and info may be left out
        assert unpack(ws.recv(timeout=10)) == {"type": "ok"}
    finally:
        ws.close()


def test_wrong_token_rejected(probe_url):
    for token in ("wrong", None):
        start = time.monotonic()
        with pytest.raises(RemotePolicyError, match="Unauthorized") as info:
            RemotePolicy(probe_url, token, timeout_s=20)
        assert info.value.code == "unauthorized"
        assert time.monotonic() - start < 5  # not retried
    ws = connect(probe_url, proxy=None, compression=None)
    ws.__enter__()
    try:
        ws.send(pack({"type": "hello", "token": "wrong"}))
        assert unpack(ws.recv(timeout=10))["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1008
    finally:
        ws.close()
    with RemotePolicy(probe_url, TOKEN) as policy:  # still serving
        assert policy.health()["type"] == "ok"


def test_oversize_message_refused(probe_url):
    big = {"image": np.zeros(300_000, np.uint8), "state": [0.0]}  # over the 0.25 MiB limit
    ws = _raw_client(probe_url, TOKEN)
    try:
        with pytest.raises(ConnectionClosed):
            ws.send(pack({"type": "act", "observations": [big], "slots": [0]}))
            ws.recv(timeout=10)
        assert ws.close_code == 1009
    finally:
        ws.close()
    with RemotePolicy(probe_url, TOKEN) as policy:  # the server keeps serving
        policy.reset("go", slot=0)
        with pytest.raises(RemotePolicyError, match="exceeds the server's limit") as info:
            policy.act_batch([big], [0])  # refused before sending: the connection stays usable
        assert info.value.code == "too_big"
        assert policy.act(_obs(), slot=0).shape == (7,)


def test_policy_tracebacks_go_to_the_server_log(tmp_path):
    log = tmp_path / "probe.log"
    server = Server(["--policy", PROBE], log)
    try:
        with RemotePolicy(server.wait_listening()) as policy, pytest.raises(RemotePolicyError):
            policy.reset("explode", slot=0, seed=1)
    finally:
        server.stop()
    text = log.read_text()
    assert "policy_error: ValueError: cannot follow 'explode'" in text and "remote_helpers.py" in text


def test_an_idle_client_is_disconnected(tmp_path):
    log = tmp_path / "idle.log"
    server = Server(["--policy", "random", "--idle-timeout-s", "0.5"], log)
    try:
        url = server.wait_listening()
        idle = RemotePolicy(url, timeout_s=5)
        time.sleep(1.2)
        with RemotePolicy(url, timeout_s=2) as other:  # not busy: the idle one was let go
            assert other.health()["type"] == "ok"
        with pytest.raises(RemotePolicyError, match="lost|closed"):
            idle.health()
        idle.close()
    finally:
        server.stop()
    assert "idle for 0.5 s, disconnected" in log.read_text()


def test_one_client_at_a_time(probe_url):
    first = RemotePolicy(probe_url, TOKEN)
    try:
        with pytest.raises(RemotePolicyError, match="Busy") as info:
            RemotePolicy(probe_url, TOKEN, timeout_s=0.5, verbose=False)
        assert info.value.code == "connection"
        assert "stayed busy with another client" in str(info.value) and "start one" not in str(info.value)
        assert first.health()["type"] == "ok"
    finally:
        first.close()
    with pytest.raises(RemotePolicyError, match="closed"):
        first.health()
    with RemotePolicy(probe_url, TOKEN, timeout_s=10) as second:  # free again (retries a late release)
        assert second.health()["type"] == "ok"


def test_client_waits_for_server_and_shutdown_is_graceful(tmp_path):
    port = _free_port()
    with pytest.raises(RemotePolicyError, match="no policy server available") as info:
        RemotePolicy(f"ws://127.0.0.1:{port}", connect_retries=2, verbose=False)
    assert info.value.code == "connection"
    server = Server(["--policy", "random"], tmp_path / "late.log", port=port)
    try:
        with RemotePolicy(server.url, timeout_s=30, verbose=False) as policy:  # connects once it is up
            policy.reset("x", slot=0, seed=3)
            assert policy.act({}, slot=0).shape == (7,)
            assert server.stop() == 0  # SIGTERM while a client is connected
            with pytest.raises(RemotePolicyError, match="lost"):
                policy.health()
    finally:
        server.stop()
    assert "stopped" in (tmp_path / "late.log").read_text()


def test_make_remote_factory(random_url, monkeypatch):
    with pytest.raises(ValueError, match="remote:ws://"):
        make_remote(None)
    with pytest.raises(ValueError, match="ws://host:port"):
        make_remote("http://127.0.0.1:1")
    monkeypatch.setenv("ROBOVLM_POLICY_TOKEN", "ignored-by-a-server-without-token")
    policy = make_remote(random_url)
    try:
        assert isinstance(policy, RemotePolicy) and policy.token == "ignored-by-a-server-without-token"
        assert policy.health()["type"] == "ok"
    finally:
        policy.close()


def test_evaluate_chains_remote_equals_local(random_url):
    from bench.calvin_eval import evaluate_chains
    from envs.calvin.chains import official_chains

    chains = official_chains()[:1]
    with RemotePolicy(random_url) as remote:
        (got,) = evaluate_chains(remote, chains, scene="D", max_steps=40)
    (want,) = evaluate_chains(RandomPolicy(), chains, scene="D", max_steps=40)
    for key in ("chain", "completed", "steps", "stop_reason"):
        assert got[key] == want[key], key
    assert not str(got["stop_reason"]).startswith("error"), got["stop_reason"]


def test_bench_run_remote(random_url, tmp_path):
    from policies.registry import available_policies

    if "remote" not in available_policies():
        pytest.skip("policy 'remote' is not registered yet")
    from bench import run

    out = tmp_path / "run"
    argv = [
        "--policy",
        f"remote:{random_url}",
        "--chains",
        "1",
        "--max-steps",
        "40",
        "--quiet",
        "--out",
        str(out),
    ]
    assert run.main(argv) == 0
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 1


def test_loopback_detection():
    from policies.serve import _is_loopback

    assert all(map(_is_loopback, ["127.0.0.1", "localhost", "::1", "127.0.0.2"]))
    assert not any(map(_is_loopback, ["0.0.0.0", "", "192.168.1.5", "::", "example.org"]))
