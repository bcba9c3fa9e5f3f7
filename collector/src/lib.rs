//! instgo-collector: the bundled OTLP collector and trace viewer behind
//! `cargo instrument collector`.
//!
//! Receivers (OTLP/gRPC, OTLP/HTTP) → [`pipeline`] (memory limiter, batching, one bounded
//! queue per exporter) → exporters ([`exporter`]: debug, file, otlp forwarding — fed from
//! the on-disk [`wal`] when asked —, and the [`store`] the viewer and
//! `cargo instrument traces` read through [`api`]).
//!
//! The [`opamp`] server lists the instrumented programs that report to it and hands them
//! the configs pushed from the viewer or `cargo instrument control`.
//!
//! It binds loopback addresses only unless a token is set ([`auth`]): every listener,
//! OpAMP's included, then requires it.

pub mod analysis;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod exporter;
pub mod metrics;
pub mod opamp;
pub mod persist;
pub mod pipeline;
pub mod receiver;
pub mod segments;
pub mod signal;
pub mod store;
pub mod tls;
pub mod tree;
pub mod wal;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use config::{ExporterConfig, ExporterKind};
use pipeline::{Exporter, Limits, Pipeline};
use signal::Signal;
use store::Store;

/// Default addresses: OTLP's ports, and the viewer beside them.
pub const DEFAULT_GRPC: &str = "127.0.0.1:4317";
pub const DEFAULT_HTTP: &str = "127.0.0.1:4318";
pub const DEFAULT_UI: &str = "127.0.0.1:4319";
pub use opamp::DEFAULT_ADDR as DEFAULT_OPAMP;

#[derive(Debug, Clone)]
pub struct Config {
    /// OTLP/gRPC; `None` turns the receiver off.
    pub grpc: Option<SocketAddr>,
    /// OTLP/HTTP; `None` turns the receiver off.
    pub http: Option<SocketAddr>,
    /// The viewer and its API; `None` turns it off.
    pub ui: Option<SocketAddr>,
    /// The OpAMP server (`/v1/opamp`); `None` (the library's default, so that embedding
    /// programs and tests bind nothing unasked) turns it off. The CLI serves
    /// [`DEFAULT_OPAMP`] unless told otherwise.
    pub opamp: Option<SocketAddr>,
    /// Where configs pushed to agents are kept across restarts (`None`: memory only).
    pub opamp_configs: Option<PathBuf>,
    /// A file exporter writing OTLP JSON lines here.
    pub file: Option<PathBuf>,
    pub file_rotation: exporter::Rotation,
    /// The debug exporter, on stdout.
    pub debug: Option<exporter::Verbosity>,
    /// Forward everything to this OTLP endpoint (`http://host:4318`, `grpc://host:4317`).
    pub forward: Option<String>,
    /// Keep what is to be forwarded in this directory until the upstream took it, so
    /// acknowledged data survives a crash or a restart.
    pub forward_queue: Option<PathBuf>,
    /// Headers and CA for `forward`.
    pub forward_options: exporter::ForwardOptions,
    /// Exporters from a config file, each with the signals its pipelines give it.
    pub exporters: Vec<ExporterConfig>,
    pub limits: Limits,
    /// Largest request body or gRPC message accepted.
    pub max_body: usize,
    /// Traces the viewer keeps.
    pub max_traces: usize,
    /// Where the viewer's traces are kept across restarts (`None`: memory only).
    pub storage: Option<PathBuf>,
    /// The bound of `storage`, in bytes.
    pub storage_max_bytes: u64,
    /// A bearer token every request must carry; required to bind other than loopback.
    pub token: Option<String>,
    /// Serve every listener over TLS with this certificate and key.
    pub tls: Option<tls::TlsFiles>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grpc: DEFAULT_GRPC.parse().ok(),
            http: DEFAULT_HTTP.parse().ok(),
            ui: DEFAULT_UI.parse().ok(),
            opamp: None,
            opamp_configs: None,
            file: None,
            file_rotation: exporter::Rotation::default(),
            debug: None,
            forward: None,
            forward_queue: None,
            forward_options: Default::default(),
            exporters: Vec::new(),
            limits: Limits::default(),
            max_body: 16 * 1024 * 1024,
            max_traces: 10_000,
            storage: None,
            storage_max_bytes: 512 * 1024 * 1024,
            token: None,
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{addr} ({what}) is not a loopback address: serving other machines needs a token \
         (--token-file FILE, or INSTGO_COLLECTOR_TOKEN); or use 127.0.0.1 or [::1]"
    )]
    NotLoopback {
        addr: SocketAddr,
        what: &'static str,
    },
    #[error("--forward: {0}")]
    Forward(String),
    #[error("--forward-queue needs --forward (where to send what it keeps)")]
    QueueWithoutForward,
    #[error("cannot open the forward queue in {path}: {source}")]
    Queue {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(tls::TlsError),
    #[error("OpAMP: {0}")]
    Opamp(String),
    #[error("trace storage: {0}")]
    Storage(persist::PersistError),
    #[error("cannot open the file exporter's {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A collector that is running; [`Running::stop`] ends it and flushes the exporters.
pub struct Running {
    /// The addresses actually bound (port 0 in the config picks a free one).
    pub grpc: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub ui: Option<SocketAddr>,
    pub opamp: Option<SocketAddr>,
    /// The agents that reported over OpAMP, and the configs pushed to them.
    pub agents: Arc<opamp::agents::Agents>,
    pub store: Arc<Store>,
    /// The RED histograms services exported, for the viewer.
    pub metrics: Arc<metrics::MetricStore>,
    pub pipeline: Arc<Pipeline>,
    stop: tokio::sync::watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    /// The forward queue's sender thread, and the flag that stops it.
    forwarder: Option<(
        Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    )>,
    /// Counters of the forward exporter, when there is one.
    pub forward: Option<Arc<exporter::ForwardStats>>,
}

async fn bind(
    addr: Option<SocketAddr>,
    what: &'static str,
    token: bool,
) -> Result<Option<tokio::net::TcpListener>, StartError> {
    let Some(addr) = addr else { return Ok(None) };
    if !addr.ip().is_loopback() && !token {
        return Err(StartError::NotLoopback { addr, what });
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| StartError::Bind { addr, what, source })
}

/// Binds every address first (so a taken port fails before anything runs), then serves.
/// Must be called inside a multi-thread tokio runtime.
pub async fn start(config: Config) -> Result<Running, StartError> {
    start_with_store(config, None).await
}

/// [`start`], keeping the traces of `store` (a reload must not empty the viewer).
pub async fn start_with_store(
    config: Config,
    store: Option<Arc<Store>>,
) -> Result<Running, StartError> {
    let token = config.token.as_deref().filter(|t| !t.is_empty());
    let grpc = bind(config.grpc, "OTLP/gRPC", token.is_some()).await?;
    let http = bind(config.http, "OTLP/HTTP", token.is_some()).await?;
    let ui = bind(config.ui, "viewer", token.is_some()).await?;
    let opamp = bind(config.opamp, "OpAMP", token.is_some()).await?;
    let agents = Arc::new(
        opamp::agents::Agents::open(config.opamp_configs.clone()).map_err(StartError::Opamp)?,
    );
    let token: Option<Arc<str>> = token.map(Arc::from);
    // Certificates are read before anything starts: a bad one fails here.
    let (acceptor, grpc_tls) = match &config.tls {
        Some(files) => {
            let (cert, key) = tls::pem(files).map_err(StartError::Tls)?;
            let acceptor = tls::acceptor(files, &cert, &key).map_err(StartError::Tls)?;
            let identity = tonic::transport::Identity::from_pem(cert, key);
            (
                Some(acceptor),
                Some(tonic::transport::ServerTlsConfig::new().identity(identity)),
            )
        }
        None => (None, None),
    };

    let fresh = store.is_none();
    let store = store.unwrap_or_else(|| Arc::new(Store::new(config.max_traces)));
    let persist = match &config.storage {
        Some(dir) => Some(
            persist::Persist::open(dir, config.storage_max_bytes, fresh.then_some(&*store))
                .map_err(StartError::Storage)?,
        ),
        None => None,
    };
    let all = vec![Signal::Traces, Signal::Metrics, Signal::Logs];
    let metric_store = Arc::new(metrics::MetricStore::default());
    let mut exporters: Vec<(Box<dyn Exporter>, Vec<Signal>)> = vec![
        (
            Box::new(exporter::ToStore(store.clone(), persist)),
            vec![Signal::Traces],
        ),
        (
            Box::new(exporter::ToMetrics(metric_store.clone())),
            vec![Signal::Metrics],
        ),
    ];
    let mut configured = config.exporters.clone();
    // The flags are exporters for every signal.
    if let Some(path) = &config.file {
        configured.push(ExporterConfig {
            name: "file".into(),
            kind: ExporterKind::File {
                path: path.clone(),
                rotation: config.file_rotation.clone(),
            },
            signals: all.clone(),
        });
    }
    if let Some(verbosity) = config.debug {
        configured.push(ExporterConfig {
            name: "debug".into(),
            kind: ExporterKind::Debug(verbosity),
            signals: all.clone(),
        });
    }
    match (&config.forward, &config.forward_queue) {
        (Some(url), queue) => configured.push(ExporterConfig {
            name: "otlp".into(),
            kind: ExporterKind::Otlp {
                endpoint: url.clone(),
                queue: queue.clone(),
                options: config.forward_options.clone(),
            },
            signals: all.clone(),
        }),
        (None, Some(_)) => return Err(StartError::QueueWithoutForward),
        (None, None) => {}
    }
    let mut forward = None;
    let mut forwarder = None;
    let mut durable = None;
    for e in configured {
        match e.kind {
            ExporterKind::Debug(verbosity) => {
                exporters.push((Box::new(exporter::Debug { verbosity }), e.signals))
            }
            ExporterKind::File { path, rotation } => {
                let f = exporter::File::new(&path, rotation)
                    .map_err(|source| StartError::File { path, source })?;
                exporters.push((Box::new(f), e.signals));
            }
            ExporterKind::Otlp {
                endpoint,
                queue,
                options,
            } => {
                let upstream = exporter::Upstream::parse(&endpoint).map_err(StartError::Forward)?;
                let f = exporter::Forward::new(upstream, options).map_err(StartError::Forward)?;
                forward = Some(f.stats.clone());
                match queue {
                    Some(dir) => {
                        let wal = Arc::new(
                            wal::Wal::open(&dir)
                                .map_err(|source| StartError::Queue { path: dir, source })?,
                        );
                        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                        let (w, s) = (wal.clone(), stop.clone());
                        let thread = std::thread::Builder::new()
                            .name("forward queue".into())
                            .spawn(move || f.drain(w, s))
                            .expect("spawning the forward thread");
                        forwarder = Some((stop, thread));
                        durable = Some((wal, e.signals));
                    }
                    None => exporters.push((Box::new(f), e.signals)),
                }
            }
        }
    }
    let pipeline = Pipeline::start(config.limits.clone(), exporters, durable);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let opamp_stopped = stopped.clone();
    let until_stopped = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut servers = Vec::new();
    let addr = |l: &Option<tokio::net::TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
    let (grpc_addr, http_addr, ui_addr) = (addr(&grpc), addr(&http), addr(&ui));
    let opamp_addr = addr(&opamp);

    if let Some(listener) = grpc {
        use receiver::grpc::{Logs, Metrics, Service, Traces};
        let max = config.max_body;
        let t = token.clone();
        let routes =
            tonic::service::Routes::new(Service::<Traces>::new(pipeline.clone(), max, t.clone()))
                .add_service(Service::<Metrics>::new(pipeline.clone(), max, t.clone()))
                .add_service(Service::<Logs>::new(pipeline.clone(), max, t));
        let shutdown = until_stopped();
        servers.push(tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let mut builder = tonic::transport::Server::builder();
            if let Some(tls) = grpc_tls {
                builder = match builder.tls_config(tls) {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("collector: the OTLP/gRPC receiver cannot use TLS: {e}");
                        return;
                    }
                };
            }
            if let Err(e) = builder
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
            {
                eprintln!("collector: the OTLP/gRPC receiver stopped: {e}");
            }
        }));
    }
    if let Some(listener) = http {
        let app = guarded(
            receiver::http::router(pipeline.clone(), config.max_body),
            &token,
        );
        servers.push(serve(listener, app, until_stopped(), acceptor.clone()));
    }
    if let Some(listener) = ui {
        let app = guarded(
            api::router(store.clone(), metric_store.clone(), agents.clone()),
            &token,
        );
        servers.push(serve(listener, app, until_stopped(), acceptor.clone()));
    }
    if let Some(listener) = opamp {
        let app = guarded(opamp::server::router(agents.clone(), opamp_stopped), &token);
        servers.push(serve(listener, app, until_stopped(), acceptor.clone()));
    }
    Ok(Running {
        grpc: grpc_addr,
        http: http_addr,
        ui: ui_addr,
        opamp: opamp_addr,
        agents,
        store,
        metrics: metric_store,
        pipeline,
        stop,
        servers,
        forwarder,
        forward,
    })
}

/// `app` behind the token, when there is one.
fn guarded(app: axum::Router, token: &Option<Arc<str>>) -> axum::Router {
    match token {
        Some(t) => app.layer(axum::middleware::from_fn_with_state(
            t.clone(),
            auth::require,
        )),
        None => app,
    }
}

fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) -> tokio::task::JoinHandle<()> {
    if let Some(acceptor) = acceptor {
        return tokio::spawn(tls::serve(listener, app, acceptor, shutdown));
    }
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            eprintln!("collector: an HTTP server stopped: {e}");
        }
    })
}

impl Running {
    /// Stops the receivers, then lets every exporter finish its queue.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for s in self.servers {
            let _ = s.await;
        }
        let pipeline = self.pipeline;
        let _ = tokio::task::spawn_blocking(move || pipeline.shutdown()).await;
        // What the forward queue holds stays on disk for the next start.
        if let Some((stop, thread)) = self.forwarder {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
