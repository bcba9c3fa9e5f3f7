//! `cargo instrument collector` and `cargo instrument traces`: thin fronts over the
//! instgo-collector library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use instgo_collector::client::{read_file, Endpoint};
use instgo_collector::store::{Query, SpanRow, Store};
use instgo_collector::{exporter::Verbosity, Config};

/// Takes the value of `flag` at `args[*i]` (`--flag V` or `--flag=V`).
pub(crate) fn value(args: &[String], i: &mut usize, flag: &str) -> Result<Option<String>> {
    let a = &args[*i];
    if a == flag {
        *i += 1;
        return args
            .get(*i)
            .cloned()
            .map(Some)
            .with_context(|| format!("{flag} needs a value"));
    }
    Ok(a.strip_prefix(flag)
        .and_then(|r| r.strip_prefix('='))
        .map(str::to_string))
}

fn addr(v: &str, flag: &str) -> Result<Option<std::net::SocketAddr>> {
    if v == "off" {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .with_context(|| format!("{flag} {v:?}: expected HOST:PORT (e.g. 127.0.0.1:4318) or off"))
}

/// The collector's flags; they override what a `--config` file says.
#[derive(Default, Clone)]
struct Flags {
    config: Option<PathBuf>,
    grpc: Option<Option<std::net::SocketAddr>>,
    http: Option<Option<std::net::SocketAddr>>,
    ui: Option<Option<std::net::SocketAddr>>,
    opamp: Option<Option<std::net::SocketAddr>>,
    /// `Some(None)`: `--opamp-configs off`.
    opamp_configs: Option<Option<PathBuf>>,
    file: Option<PathBuf>,
    forward: Option<String>,
    forward_queue: Option<PathBuf>,
    debug: Option<Verbosity>,
    /// `Some(None)`: `--storage off`.
    storage: Option<Option<PathBuf>>,
    token: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    forward_headers: Vec<(String, String)>,
    forward_ca: Option<PathBuf>,
}

/// `--token-file`'s content, else `INSTGO_COLLECTOR_TOKEN`.
pub(crate) fn token(file: Option<&str>) -> Result<Option<String>> {
    if let Some(f) = file {
        let t = std::fs::read_to_string(f).with_context(|| format!("--token-file {f}"))?;
        let t = t.trim().to_string();
        if t.is_empty() {
            bail!("--token-file {f} is empty");
        }
        return Ok(Some(t));
    }
    Ok(std::env::var("INSTGO_COLLECTOR_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty()))
}

fn data_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("instgo-rs"))
}

/// Where the viewer's traces live between runs unless told otherwise.
fn default_storage() -> Option<PathBuf> {
    Some(data_dir()?.join("traces"))
}

impl Flags {
    /// The config file's settings (or the defaults), then the flags.
    fn config(&self) -> Result<Config> {
        let mut c = match &self.config {
            Some(path) => instgo_collector::config::load(path)?,
            None => Config::default(),
        };
        if let Some(a) = self.grpc {
            c.grpc = a;
        }
        if let Some(a) = self.http {
            c.http = a;
        }
        if let Some(a) = self.ui {
            c.ui = a;
        }
        c.opamp = match self.opamp {
            Some(a) => a,
            None => instgo_collector::DEFAULT_OPAMP.parse().ok(),
        };
        c.opamp_configs = match &self.opamp_configs {
            Some(p) => p.clone(),
            None => c
                .opamp_configs
                .or_else(|| Some(data_dir()?.join("opamp-configs.json"))),
        };
        c.file = self.file.clone().or(c.file);
        c.forward = self.forward.clone().or(c.forward);
        c.forward_queue = self.forward_queue.clone().or(c.forward_queue);
        c.forward_options
            .headers
            .extend(self.forward_headers.iter().cloned());
        c.forward_options.ca_file = self.forward_ca.clone().or(c.forward_options.ca_file);
        c.debug = self.debug.or(c.debug);
        c.token = self.token.clone().or(c.token);
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                c.tls = Some(instgo_collector::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (None, None) => {}
            _ => bail!("--tls-cert and --tls-key go together"),
        }
        c.storage = match &self.storage {
            Some(s) => s.clone(),
            None => c.storage.or_else(default_storage),
        };
        Ok(c)
    }
}

fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

pub fn collector(args: &[String]) -> Result<ExitCode> {
    let mut f = Flags::default();
    let mut token_file = None;
    let mut i = 0;
    while i < args.len() {
        if let Some(v) = value(args, &mut i, "--config")? {
            f.config = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--grpc")? {
            f.grpc = Some(addr(&v, "--grpc")?);
        } else if let Some(v) = value(args, &mut i, "--http")? {
            f.http = Some(addr(&v, "--http")?);
        } else if let Some(v) = value(args, &mut i, "--ui")? {
            f.ui = Some(addr(&v, "--ui")?);
        } else if let Some(v) = value(args, &mut i, "--opamp-configs")? {
            f.opamp_configs = Some((v != "off").then(|| PathBuf::from(v)));
        } else if let Some(v) = value(args, &mut i, "--opamp")? {
            f.opamp = Some(addr(&v, "--opamp")?);
        } else if let Some(v) = value(args, &mut i, "--file")? {
            f.file = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--token-file")? {
            token_file = Some(v);
        } else if let Some(v) = value(args, &mut i, "--tls-cert")? {
            f.tls_cert = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--tls-key")? {
            f.tls_key = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--storage")? {
            f.storage = Some((v != "off").then(|| PathBuf::from(v)));
        } else if let Some(v) = value(args, &mut i, "--forward-header")? {
            let (k, v) = v
                .split_once('=')
                .with_context(|| format!("--forward-header {v:?}: expected NAME=VALUE"))?;
            f.forward_headers
                .push((k.trim().to_string(), v.trim().to_string()));
        } else if let Some(v) = value(args, &mut i, "--forward-ca")? {
            f.forward_ca = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--forward-queue")? {
            f.forward_queue = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--forward")? {
            f.forward = Some(v);
        } else if let Some(v) = value(args, &mut i, "--debug")? {
            f.debug = Some(match v.as_str() {
                "basic" => Verbosity::Basic,
                "detailed" => Verbosity::Detailed,
                other => bail!("--debug {other:?}: expected basic or detailed"),
            });
        } else if args[i] == "-h" || args[i] == "--help" {
            println!(
                "cargo instrument collector: receive OTLP, keep recent traces for the viewer, export

OPTIONS:
    --config FILE   receivers/processors/exporters/service.pipelines, as the OpenTelemetry
                    Collector's (YAML; docs in the README); reloaded when it changes
    --grpc ADDR     OTLP/gRPC receiver (default {g}; off to disable)
    --http ADDR     OTLP/HTTP receiver (default {h}; off to disable)
    --ui ADDR       trace viewer and its API (default {u}; off to disable)
    --opamp ADDR    OpAMP server for instrumented programs: /v1/opamp (default {o}; off)
    --opamp-configs FILE   where configs pushed to programs are kept across restarts
                    (default $XDG_DATA_HOME/instgo-rs/opamp-configs.json; off for memory)
    --token-file F  a bearer token every request must carry (or INSTGO_COLLECTOR_TOKEN);
                    needed to listen on other than loopback
    --tls-cert F --tls-key F   serve every listener over TLS (PEM certificate chain and key)
    --storage DIR   keep the viewer's traces here across restarts, up to 512 MB (default
                    $XDG_DATA_HOME/instgo-rs/traces; off for memory only)
    --file PATH     also write what arrives to PATH as OTLP JSON lines (rotated at 100 MB)
    --debug LEVEL   also print what arrives: basic (counts) or detailed (trace trees)
    --forward URL   also send everything to an OTLP endpoint: http(s)://HOST:PORT (OTLP/HTTP)
                    or grpc(s)://HOST:PORT (OTLP/gRPC), retrying with backoff
    --forward-header NAME=VALUE   a header for the upstream (repeatable), e.g. a token
    --forward-ca FILE   a CA certificate to trust for the upstream, beside the system's
    --forward-queue DIR   keep what is to be forwarded on disk until the upstream took it:
                    requests are acknowledged only once stored, and survive kill -9
Flags override the config file.",
                g = instgo_collector::DEFAULT_GRPC,
                h = instgo_collector::DEFAULT_HTTP,
                u = instgo_collector::DEFAULT_UI,
                o = instgo_collector::DEFAULT_OPAMP,
            );
            return Ok(ExitCode::SUCCESS);
        } else {
            bail!(
                "unknown collector option {:?}; see `cargo instrument collector --help`",
                args[i]
            );
        }
        i += 1;
    }
    f.token = token(token_file.as_deref())?;
    let config = f.config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the collector's runtime")?;
    rt.block_on(serve(f, config))?;
    Ok(ExitCode::SUCCESS)
}

fn show(running: &instgo_collector::Running, tls: bool) {
    let line = |what: &str, a: Option<std::net::SocketAddr>, scheme: &str, path: &str| {
        if let Some(a) = a {
            eprintln!("collector: {what:<10} {scheme}{a}{path}");
        }
    };
    let (http, ws) = if tls {
        ("https://", "wss://")
    } else {
        ("http://", "ws://")
    };
    line("OTLP/gRPC", running.grpc, "", "");
    line("OTLP/HTTP", running.http, http, "");
    line("viewer", running.ui, http, "");
    line("OpAMP", running.opamp, http, "/v1/opamp");
    if let Some(a) = running.opamp {
        eprintln!("collector: {:<10} {ws}{a}/v1/opamp", "");
    }
}

/// Runs until Ctrl-C; a changed config file is checked and, if good, takes over (the
/// viewer's traces stay); a bad one is reported and the running config kept.
async fn serve(f: Flags, mut current: Config) -> Result<()> {
    let mut running = instgo_collector::start(current.clone()).await?;
    show(&running, current.tls.is_some());
    eprintln!("collector: running; Ctrl-C stops it");
    let mut stamp = f.config.as_deref().and_then(modified);
    // SIGTERM (a service manager, `kill`) stops it as Ctrl-C does: exporters flushed.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let Some(path) = &f.config else { continue };
        let now = modified(path);
        if now == stamp {
            continue;
        }
        stamp = now;
        let next = match f.config() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("collector: {e:#}; keeping the running config");
                continue;
            }
        };
        let store = running.store.clone();
        running.stop().await;
        match instgo_collector::start_with_store(next.clone(), Some(store.clone())).await {
            Ok(r) => {
                running = r;
                current = next;
                eprintln!("collector: reloaded {}", path.display());
                show(&running, current.tls.is_some());
            }
            Err(e) => {
                eprintln!("collector: the new config cannot start: {e}; back to the running one");
                running = instgo_collector::start_with_store(current.clone(), Some(store)).await?;
            }
        }
    }
    eprintln!("collector: stopping");
    running.stop().await;
    Ok(())
}

pub fn traces(args: &[String]) -> Result<ExitCode> {
    let mut file = None;
    let mut endpoint = format!("http://{}", instgo_collector::DEFAULT_UI);
    let mut q = Query {
        limit: Some(10),
        ..Query::default()
    };
    let mut follow = false;
    let mut token_file = None;
    let mut ca_file: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        if let Some(v) = value(args, &mut i, "--file")? {
            file = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--token-file")? {
            token_file = Some(v);
        } else if let Some(v) = value(args, &mut i, "--ca-file")? {
            ca_file = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--endpoint")? {
            endpoint = v;
        } else if let Some(v) = value(args, &mut i, "--service")? {
            q.service = Some(v);
        } else if let Some(v) = value(args, &mut i, "--last")? {
            q.limit = Some(
                v.parse()
                    .with_context(|| format!("--last {v:?}: expected a number"))?,
            );
        } else if args[i] == "--follow" {
            follow = true;
        } else if args[i] == "--errors" {
            q.errors = true;
        } else if args[i] == "-h" || args[i] == "--help" {
            println!(
                "cargo instrument traces: print recent traces as trees

OPTIONS:
    --endpoint URL  a running collector's viewer address (default http://{})
    --file PATH     an OTLP JSON-lines file instead (the collector's --file output)
    --service NAME  traces that involve this service
    --token-file F  the collector's token (or INSTGO_COLLECTOR_TOKEN)
    --ca-file F     a CA to trust for an https:// endpoint, beside the system's
    --errors        traces with an error
    --last N        the N most recent (default 10)
    --follow        keep printing traces as they complete",
                instgo_collector::DEFAULT_UI
            );
            return Ok(ExitCode::SUCCESS);
        } else {
            bail!(
                "unknown traces option {:?}; see `cargo instrument traces --help`",
                args[i]
            );
        }
        i += 1;
    }
    let source = match &file {
        Some(path) => Source::File {
            path: path.clone(),
            offset: 0,
            store: Store::new(100_000),
        },
        None => Source::Endpoint(
            Endpoint::new(&endpoint, ca_file.as_deref())?.with_token(token(token_file.as_deref())?),
        ),
    };
    run_traces(source, q, follow)
}

enum Source {
    File {
        path: PathBuf,
        offset: u64,
        store: Store,
    },
    Endpoint(Endpoint),
}

impl Source {
    /// The matching traces now, oldest first, with their spans.
    fn fetch(&mut self, q: &Query) -> Result<Vec<(String, Vec<SpanRow>)>> {
        let mut out = Vec::new();
        match self {
            Source::File {
                path,
                offset,
                store,
            } => {
                *offset = read_file(path, *offset, store)?;
                for t in store.search(q).into_iter().rev() {
                    out.extend(store.trace(&t.trace_id).map(|s| (t.trace_id, s)));
                }
            }
            Source::Endpoint(e) => {
                for t in e.search(q)?.into_iter().rev() {
                    let spans = e.trace(&t.trace_id)?;
                    out.push((t.trace_id, spans));
                }
            }
        }
        Ok(out)
    }
}

fn run_traces(mut source: Source, q: Query, follow: bool) -> Result<ExitCode> {
    let first = source.fetch(&q)?;
    if !follow {
        if first.is_empty() {
            eprintln!("no traces (yet)");
        }
        for (_, spans) in &first {
            println!("{}", instgo_collector::tree::render(spans));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // A trace is printed once it stopped growing between two looks.
    let mut printed: HashMap<String, usize> = HashMap::new();
    let mut last: HashMap<String, usize> = HashMap::new();
    let mut batch = first;
    loop {
        for (id, spans) in &batch {
            let settled = last.get(id) == Some(&spans.len());
            if settled && printed.get(id) != Some(&spans.len()) {
                println!("{}", instgo_collector::tree::render(spans));
                printed.insert(id.clone(), spans.len());
            }
            last.insert(id.clone(), spans.len());
        }
        std::thread::sleep(Duration::from_secs(1));
        batch = source.fetch(&q)?;
    }
}
