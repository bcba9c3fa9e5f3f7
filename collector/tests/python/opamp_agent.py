"""An OpAMP agent made with the official Python client (opentelemetry-opamp-client on
PyPI), polling the collector under test: prints `uid UUID` once, then `config NAME BODY`
for each remote config, which it reports APPLIED (FAILED when the body says FAIL) with
the body as its effective config. Runs until stdin closes."""
import sys
import uuid

from opentelemetry._opamp.agent import OpAMPAgent
from opentelemetry._opamp.callbacks import OpAMPCallbacks
from opentelemetry._opamp.client import OpAMPClient
from opentelemetry._opamp.proto import opamp_pb2


class Callbacks(OpAMPCallbacks):
    def on_message(self, agent, client, message):
        remote = message.remote_config
        if remote is None:
            return
        body = ""
        for name, f in remote.config.config_map.items():
            body = f.body.decode()
            print(f"config {name} {body!r}", flush=True)
        failed = "FAIL" in body
        status = client.update_remote_config_status(
            remote_config_hash=remote.config_hash,
            status=opamp_pb2.RemoteConfigStatuses_FAILED if failed else opamp_pb2.RemoteConfigStatuses_APPLIED,
            error_message="asked to fail" if failed else "",
        )
        if status is not None:
            client.update_effective_config({"instgo.toml": body}, "application/toml")
            agent.send(client.build_full_state_message())


client = OpAMPClient(
    endpoint=sys.argv[1],
    agent_identifying_attributes={"service.name": "py-agent"},
    agent_non_identifying_attributes={"host.name": "interop"},
)
print("uid", uuid.UUID(bytes=client._instance_uid), flush=True)
agent = OpAMPAgent(interval=0.5, callbacks=Callbacks(), client=client)
agent.start()
sys.stdin.read()
agent.stop()
