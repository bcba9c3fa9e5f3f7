"""OpAMP over WebSocket against the collector under test, from an independent WebSocket
implementation (the `websockets` package) and the official generated messages
(`opamp_pb2` from opentelemetry-opamp-client).

    opamp_ws.py agent URL      an agent that never polls: it reports once, prints
                               `uid UUID`, then `config BODY` for every config the server
                               sends it unasked, which it reports APPLIED. When stdin
                               closes it closes the socket without a goodbye.
    opamp_ws.py malformed URL  prints what the server does with a bad header, an
                               oversized message and a text message.
"""
import os
import sys
import threading
import uuid

from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed

from opentelemetry._opamp.proto import anyvalue_pb2, opamp_pb2

CAPS = (opamp_pb2.AgentCapabilities_ReportsStatus
        | opamp_pb2.AgentCapabilities_AcceptsRemoteConfig
        | opamp_pb2.AgentCapabilities_ReportsEffectiveConfig
        | opamp_pb2.AgentCapabilities_ReportsRemoteConfig)


def frame(msg):
    # Header varint 0, then the protobuf (the spec's WebSocket message format).
    return b"\x00" + msg.SerializeToString()


def unframe(data):
    assert isinstance(data, bytes), f"a text message: {data!r}"
    assert data[0] == 0, f"header {data[0]}"
    m = opamp_pb2.ServerToAgent()
    m.ParseFromString(data[1:])
    return m


def agent(url):
    uid = os.urandom(16)
    seq = 0
    first = opamp_pb2.AgentToServer(instance_uid=uid, sequence_num=seq, capabilities=CAPS)
    first.agent_description.identifying_attributes.append(anyvalue_pb2.KeyValue(
        key="service.name", value=anyvalue_pb2.AnyValue(string_value="ws-agent")))
    with connect(url, max_size=4 * 1024 * 1024) as ws:
        ws.send(frame(first))
        reply = unframe(ws.recv(timeout=10))
        assert reply.instance_uid == uid, reply
        print("uid", uuid.UUID(bytes=uid), "capabilities", reply.capabilities, flush=True)
        # stdin closing ends the agent; the socket is closed without agent_disconnect.
        threading.Thread(target=lambda: (sys.stdin.read(), ws.close()), daemon=True).start()
        got = False
        try:
            while True:
                # The first config must come unasked within 10 s; a TimeoutError fails.
                m = unframe(ws.recv(timeout=None if got else 10))
                if not m.HasField("remote_config"):
                    continue
                got = True
                body = m.remote_config.config.config_map["instgo.toml"].body.decode()
                print("config", repr(body), flush=True)
                seq += 1
                status = opamp_pb2.AgentToServer(instance_uid=uid, sequence_num=seq, capabilities=CAPS)
                status.remote_config_status.last_remote_config_hash = m.remote_config.config_hash
                status.remote_config_status.status = opamp_pb2.RemoteConfigStatuses_APPLIED
                f = status.effective_config.config_map.config_map["instgo.toml"]
                f.body = body.encode()
                f.content_type = "application/toml"
                ws.send(frame(status))
        except ConnectionClosed:
            pass


def malformed(url):
    with connect(url) as ws:
        ws.send(b"\x01" + opamp_pb2.AgentToServer(instance_uid=os.urandom(16)).SerializeToString())
        print("header 1:", unframe(ws.recv(timeout=10)).error_response.error_message, flush=True)
        ws.send(b"\x00\xff\xff")
        print("garbage:", unframe(ws.recv(timeout=10)).error_response.error_message, flush=True)
    for what, data in (("oversized", b"\x00" + b"\x0a" * (5 * 1024 * 1024)),
                       ("text", "hello")):
        with connect(url, max_size=None) as ws:
            ws.send(data)
            try:
                ws.recv(timeout=10)
                print(what + ": answered", flush=True)
            except ConnectionClosed as e:
                print(f"{what}: closed {e.rcvd.code} {e.rcvd.reason}", flush=True)


{"agent": agent, "malformed": malformed}[sys.argv[1]](sys.argv[2])
