"""Sends one trace (a server span with a client child and an error) and one counter
through the official OpenTelemetry Python SDK exporters, to the collector under test.

    python send.py http|grpc ENDPOINT SERVICE

http: ENDPOINT is the OTLP/HTTP base (http://127.0.0.1:PORT); grpc: HOST:PORT.
"""
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

protocol, endpoint, service = sys.argv[1:4]
if protocol == "http":
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    spans = OTLPSpanExporter(endpoint=endpoint + "/v1/traces")
    metrics = OTLPMetricExporter(endpoint=endpoint + "/v1/metrics")
else:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    spans = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    metrics = OTLPMetricExporter(endpoint=endpoint, insecure=True)

resource = Resource.create({"service.name": service})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(spans))
tracer = tracer_provider.get_tracer("interop")
with tracer.start_as_current_span("GET /python", kind=SpanKind.SERVER) as root:
    root.set_attribute("http.request.method", "GET")
    with tracer.start_as_current_span("call upstream", kind=SpanKind.CLIENT) as child:
        child.set_status(Status(StatusCode.ERROR, "upstream said no"))
ok = tracer_provider.force_flush()

reader = PeriodicExportingMetricReader(metrics, export_interval_millis=60_000)
meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
meter_provider.get_meter("interop").create_counter("requests").add(3)
ok = meter_provider.force_flush() and ok
tracer_provider.shutdown()
meter_provider.shutdown()
sys.exit(0 if ok else 1)
