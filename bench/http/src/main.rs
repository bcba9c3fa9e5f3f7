//! A small axum service for the load benchmark: `GET /users/{id}`.

use axum::extract::Path;
use axum::routing::get;
use axum::Router;

async fn user(Path(id): Path<u64>) -> String {
    format!("{{\"id\":{id},\"name\":\"user {id}\"}}")
}

#[cfg(feature = "hand")]
mod hand {
    //! What a team writes by hand today: a tracing span per request from tower-http,
    //! turned into OpenTelemetry spans by tracing-opentelemetry, batched by the SDK and
    //! dropped at export (as the instrumented variant's `OTEL_TRACES_EXPORTER=discard`).
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Debug)]
    struct Discard;

    impl SpanExporter for Discard {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            drop(batch);
            Ok(())
        }
    }

    pub fn init() -> SdkTracerProvider {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(Discard).build())
            .build();
        let tracer = provider.tracer("benchsrv");
        // INFO, as services run: the request span is kept, tower-http's DEBUG events not.
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::set_global_default(subscriber).unwrap();
        provider
    }

    pub fn layer() -> tower_http::trace::TraceLayer<
        tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    > {
        tower_http::trace::TraceLayer::new_for_http()
            .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO))
    }
}

#[tokio::main]
async fn main() {
    #[cfg(feature = "hand")]
    let _provider = hand::init();
    let router = Router::new().route("/users/{id}", get(user));
    #[cfg(feature = "hand")]
    let router = router.layer(hand::layer());
    let port = std::env::var("PORT").unwrap_or_else(|_| "0".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, router).await.unwrap();
}
