//! The Resource: who is sending. `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are
//! read by the SDK's own detectors; this adds what they leave out.

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::IdGenerator as _;
use opentelemetry_sdk::Resource;

pub(crate) fn detect() -> Resource {
    let exe = std::env::current_exe().ok();
    let exe_name = exe
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown_service".to_string());
    let mut attrs = vec![
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("process.executable.name", exe_name.clone()),
        KeyValue::new("process.runtime.name", "rust"),
        KeyValue::new("host.arch", host_arch()),
        KeyValue::new("os.type", std::env::consts::OS),
        KeyValue::new("telemetry.distro.name", "instgo-rs"),
        KeyValue::new("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(p) = &exe {
        attrs.push(KeyValue::new(
            "process.executable.path",
            p.to_string_lossy().into_owned(),
        ));
    }
    if let Some(h) = hostname() {
        attrs.push(KeyValue::new("host.name", h));
    }
    attrs.extend(kubernetes());
    if let Some(id) = container_id() {
        attrs.push(KeyValue::new("container.id", id));
    }
    if !configured("service.instance.id") {
        attrs.push(KeyValue::new(
            "service.instance.id",
            crate::opamp::proto::uuid_text(&instance_uid()),
        ));
    }
    let mut builder = Resource::builder().with_attributes(attrs);
    if !service_name_configured() {
        builder = builder.with_service_name(exe_name);
    }
    builder.build()
}

fn service_name_configured() -> bool {
    let set = |v: &str| !v.trim().is_empty();
    std::env::var("OTEL_SERVICE_NAME")
        .map(|v| set(&v))
        .unwrap_or(false)
        || configured("service.name")
}

/// Whether `OTEL_RESOURCE_ATTRIBUTES` sets `key`.
fn configured(key: &str) -> bool {
    std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
        v.split(',')
            .any(|kv| kv.split_once('=').is_some_and(|(k, _)| k.trim() == key))
    })
}

/// This process's id, a UUID v7 (48 bits of Unix milliseconds, then random bits): the
/// OpAMP `instance_uid` and, unless configured, `service.instance.id`.
pub(crate) fn instance_uid() -> [u8; 16] {
    static UID: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    *UID.get_or_init(|| {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut id = [0u8; 16];
        id[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        // The SDK's id generator: an OS-seeded generator, as for trace ids.
        let random = opentelemetry_sdk::trace::RandomIdGenerator::default()
            .new_trace_id()
            .to_bytes();
        id[6..].copy_from_slice(&random[..10]);
        id[6] = 0x70 | (id[6] & 0x0F); // version 7
        id[8] = 0x80 | (id[8] & 0x3F); // RFC 4122 variant
        id
    })
}

fn host_arch() -> &'static str {
    // Semantic-convention names where they differ from Rust's.
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        other => other,
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // when the name fits, and we stop at the first NUL or the end of the buffer anyway.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

fn kubernetes() -> Vec<KeyValue> {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        return Vec::new();
    }
    let mut attrs = Vec::new();
    if let Ok(pod) = std::env::var("HOSTNAME") {
        attrs.push(KeyValue::new("k8s.pod.name", pod));
    }
    if let Ok(ns) =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    {
        attrs.push(KeyValue::new("k8s.namespace.name", ns.trim().to_string()));
    }
    attrs
}

/// The container id from cgroup paths (cgroup v1) or mountinfo (v2), when there is one.
fn container_id() -> Option<String> {
    let from = |text: String| {
        text.lines().find_map(|l| {
            l.split(['/', '-', '.', ':', ' '])
                .find(|part| part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_string)
        })
    };
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(from)
        .or_else(|| {
            std::fs::read_to_string("/proc/self/mountinfo")
                .ok()
                .and_then(from)
        })
}
