"""The OpAMP wire format as the official Python package's generated `opamp_pb2` reads
and writes it. `decode HEX`: an AgentToServer made by our Rust types, printed as JSON.
`encode`: a ServerToAgent with every field our types declare, printed as hex."""
import json
import sys

from google.protobuf.json_format import MessageToDict
from opentelemetry._opamp.proto import anyvalue_pb2, opamp_pb2

if sys.argv[1] == "decode":
    msg = opamp_pb2.AgentToServer.FromString(bytes.fromhex(sys.argv[2]))
    print(json.dumps(MessageToDict(msg, preserving_proto_field_name=True)))
else:
    msg = opamp_pb2.ServerToAgent(
        instance_uid=bytes(range(16)),
        flags=opamp_pb2.ServerToAgentFlags_ReportFullState,
        capabilities=opamp_pb2.ServerCapabilities_AcceptsStatus | opamp_pb2.ServerCapabilities_OffersRemoteConfig,
        agent_identification=opamp_pb2.AgentIdentification(new_instance_uid=bytes([7] * 16)),
        connection_settings=opamp_pb2.ConnectionSettingsOffers(
            hash=b"h", opamp=opamp_pb2.OpAMPConnectionSettings(destination_endpoint="http://x/v1/opamp", heartbeat_interval_seconds=9)
        ),
        remote_config=opamp_pb2.AgentRemoteConfig(
            config_hash=b"\x01\x02",
            config=opamp_pb2.AgentConfigMap(
                config_map={"instgo.toml": opamp_pb2.AgentConfigFile(body=b"sampling_ratio = 0.5\n", content_type="application/toml")}
            ),
        ),
        # Fields our types leave out must be skipped, not break decoding.
        packages_available=opamp_pb2.PackagesAvailable(all_packages_hash=b"p"),
        custom_message=opamp_pb2.CustomMessage(capability="c", type="t", data=b"d"),
    )
    print(msg.SerializeToString().hex())
    err = opamp_pb2.ServerToAgent(
        error_response=opamp_pb2.ServerErrorResponse(
            type=opamp_pb2.ServerErrorResponseType_Unavailable,
            error_message="busy",
            retry_info=opamp_pb2.RetryInfo(retry_after_nanoseconds=5),
        )
    )
    print(err.SerializeToString().hex())
