//! Starting the OpenTelemetry SDK from the environment, and flushing it at exit.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{Protocol, RetryPolicy, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanExporter};

use crate::diag::{debug, warning};
use crate::transport::{Signal, StdHttpClient, Wire};

pub(crate) struct Sdk {
    pub(crate) tracer: SdkTracer,
    provider: SdkTracerProvider,
}

static SDK: OnceLock<Option<Sdk>> = OnceLock::new();

thread_local! {
    static STARTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The SDK, started on first use; `None` when telemetry is switched off.
#[inline]
pub(crate) fn get() -> Option<&'static Sdk> {
    match SDK.get() {
        Some(sdk) => sdk.as_ref(),
        None => start(),
    }
}

/// Starting the SDK runs code that may reach instrumented functions of the app again
/// (through its allocator): on the starting thread those calls get no span, where waiting
/// for the `OnceLock` would deadlock.
#[cold]
fn start() -> Option<&'static Sdk> {
    if STARTING.try_with(|s| s.get()).unwrap_or(true) {
        return None;
    }
    SDK.get_or_init(|| {
        let _ = STARTING.try_with(|s| s.set(true));
        let sdk = init();
        let _ = STARTING.try_with(|s| s.set(false));
        sdk
    })
    .as_ref()
}

/// The instrumentation scope of everything the runtime records: `instgo`, its version.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("instgo")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A per-signal variable, else its general form (`OTEL_EXPORTER_OTLP_TRACES_X`, then `..._X`).
fn signal_env(signal: &str, suffix: &str) -> Option<String> {
    env(&format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}"))
        .or_else(|| env(&format!("OTEL_EXPORTER_OTLP_{suffix}")))
}

/// `OTEL_EXPORTER_OTLP_[SIGNAL_]TIMEOUT` in milliseconds, default 10 s.
pub(crate) fn otlp_timeout(signal: &str) -> Duration {
    signal_env(signal, "TIMEOUT")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(10))
}

/// `OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL`: `http/protobuf` (the default), `http/json`, `grpc`.
pub(crate) fn otlp_wire(signal: &str) -> Wire {
    match signal_env(signal, "PROTOCOL").as_deref().map(str::trim) {
        None | Some("http/protobuf") => Wire::HttpProtobuf,
        Some("http/json") => Wire::HttpJson,
        Some("grpc") => Wire::Grpc,
        Some(other) => {
            warning!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not one of http/protobuf, http/json, \
                 grpc: using http/protobuf"
            );
            Wire::HttpProtobuf
        }
    }
}

/// The exporter's HTTP client for `signal` (`TRACES`, `METRICS`), and the endpoint to give
/// the exporter when the wire is gRPC: there the endpoint variables name the server
/// (default `http://localhost:4317`) with no `/v1/<signal>` path, unlike OTLP/HTTP's.
pub(crate) fn otlp_client(signal: &str) -> (StdHttpClient, Option<String>) {
    let wire = otlp_wire(signal);
    let kind = if signal == "TRACES" {
        Signal::Traces
    } else {
        Signal::Metrics
    };
    let client = StdHttpClient::new(otlp_timeout(signal), kind, wire);
    let endpoint = (wire == Wire::Grpc).then(|| {
        env(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .unwrap_or_else(|| "http://localhost:4317".into())
    });
    (client, endpoint)
}

fn init() -> Option<Sdk> {
    if crate::build_time::is_build_time() {
        return None;
    }
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        debug!("OTEL_SDK_DISABLED=true: no telemetry");
        return None;
    }
    match sampler_config() {
        Ok(c) => crate::sampler::configure(c),
        Err(e) => warning!("{e}; using parentbased_always_on"),
    }
    let timeout = otlp_timeout("TRACES");
    let exporter = env("OTEL_TRACES_EXPORTER").unwrap_or_else(|| "otlp".into());
    let provider = match exporter.trim() {
        "none" => {
            debug!("OTEL_TRACES_EXPORTER=none: no spans");
            return None;
        }
        "console" => provider(crate::sink::ConsoleExporter),
        // Spans are made, sampled and batched, then dropped at export: what the
        // benchmarks measure, without an exporter thread competing for the CPU.
        "discard" => provider(crate::sink::Discard),
        "otlp" => provider(otlp_exporter(timeout)?),
        other => {
            warning!(
                "OTEL_TRACES_EXPORTER={other:?} is not supported (otlp, console, none): using otlp"
            );
            provider(otlp_exporter(timeout)?)
        }
    };
    let tracer = provider.tracer_with_scope(scope());
    install_panic_hook();
    register_exit_flush();
    // Metrics start with the spans, so the runtime's self-metrics are exported even by
    // programs whose hooks record none.
    let _ = crate::metrics::provider();
    crate::opamp::start(resource());
    Some(Sdk { tracer, provider })
}

fn sampler_config() -> Result<crate::sampler::SamplerConfig, String> {
    crate::sampler::parse(
        env("OTEL_TRACES_SAMPLER").as_deref(),
        env("OTEL_TRACES_SAMPLER_ARG").as_deref(),
    )
}

fn provider<E: SpanExporter + 'static>(exporter: E) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(crate::queue::processor(exporter))
        .with_sampler(crate::sampler::Switchable)
        .with_resource(resource().clone())
        .build()
}

/// The Resource, detected once: the tracer, the meter and the OpAMP agent share it.
pub(crate) fn resource() -> &'static opentelemetry_sdk::Resource {
    static RESOURCE: OnceLock<opentelemetry_sdk::Resource> = OnceLock::new();
    RESOURCE.get_or_init(crate::resource::detect)
}

fn otlp_exporter(timeout: Duration) -> Option<opentelemetry_otlp::SpanExporter> {
    let (client, endpoint) = otlp_client("TRACES");
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(timeout)
        .with_retry_policy(RetryPolicy::disabled())
        .with_http_client(client);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let built = builder.build();
    match built {
        Ok(e) => Some(e),
        Err(e) => {
            warning!("cannot set up the OTLP span exporter: {e}; no spans will be exported");
            None
        }
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The message of the panic unwinding this thread, if our hook saw it.
pub(crate) fn take_panic_message() -> Option<String> {
    LAST_PANIC
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()
}

/// The text a panic was raised with (`panic!("...")`), or "panic".
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// Remembers each panic's message for the spans it unwinds through, then runs the hook
/// that was there before, so what the user sees is unchanged.
fn install_panic_hook() {
    if std::thread::panicking() {
        return; // set_hook would panic while panicking
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = panic_message(info.payload());
        let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(msg));
        // A panicking hook is ours to report (once, as a warning), not the app's.
        if !crate::hook::in_hook() {
            previous(info);
        }
    }));
}

/// Runs `f` on a thread of its own and waits for it at most `timeout`: exporters may hang
/// on a server that never answers, and the caller (often the process exiting) must not.
pub(crate) fn bounded(timeout: Duration, f: impl FnOnce() + Send + 'static) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("instgo-flush".into())
        .spawn(move || {
            crate::call::mark_runtime_thread();
            f();
            let _ = tx.send(());
        });
    spawned.is_ok() && rx.recv_timeout(timeout).is_ok()
}

/// Exports the buffered spans, waiting at most `timeout`; `true` when it finished.
pub(crate) fn flush(timeout: Duration) -> bool {
    let Some(Some(sdk)) = SDK.get() else {
        return true;
    };
    let provider = sdk.provider.clone();
    bounded(timeout, move || {
        let _ = provider.force_flush();
    })
}

/// Flushes spans and metrics when the process exits (normal return from main and
/// `std::process::exit` alike), once, however many signals started.
pub(crate) fn register_exit_flush() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `at_exit` is a plain `extern "C" fn` with no arguments, as atexit requires.
        unsafe {
            libc::atexit(at_exit);
        }
    });
}

fn exit_timeout() -> Duration {
    otlp_timeout("TRACES").min(Duration::from_secs(5))
}

static EXITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the process is exiting (the exit flush has begun): exports no longer retry.
pub(crate) fn exiting() -> bool {
    EXITING.load(std::sync::atomic::Ordering::Relaxed)
}

extern "C" fn at_exit() {
    EXITING.store(true, std::sync::atomic::Ordering::Relaxed);
    let timeout = exit_timeout();
    // Spans and metrics flush side by side, so the exit waits for the slower, not the sum.
    let metrics = std::thread::Builder::new()
        .name("instgo-exit-metrics".into())
        .spawn(move || {
            crate::call::mark_runtime_thread();
            crate::metrics::flush(timeout)
        });
    if !flush(timeout) {
        warning!("spans still buffered at exit were dropped after {timeout:?}");
    }
    // After the flush, so the goodbye does not hold up the spans; briefly, since a
    // server that does not answer learns of the exit from the silence anyway.
    crate::opamp::disconnect(Duration::from_millis(500));
    if let Ok(Ok(false)) = metrics.map(|h| h.join()) {
        warning!("metrics recorded since the last export were dropped at exit after {timeout:?}");
    }
}
