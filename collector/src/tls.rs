//! TLS for the collector's listeners, when a certificate and key are configured: tonic's
//! own TLS for gRPC, and rustls in front of hyper for the HTTP receiver and the viewer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// PEM files: the certificate chain and its private key.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The PEM texts, for tonic.
pub fn pem(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    Ok((read(&files.cert)?, read(&files.key)?))
}

/// A rustls acceptor for the HTTP listeners (HTTP/1.1 and h2 offered by ALPN), from the
/// PEM texts [`pem`] read (`files` names them in errors).
pub fn acceptor(
    files: &TlsFiles,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<TlsAcceptor, TlsError> {
    let bad = |path: &Path, what: &str| TlsError::File {
        path: path.display().to_string(),
        reason: format!("no {what} in it (PEM expected)"),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(bad(&files.cert, "certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| bad(&files.key, "private key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A client configuration trusting the system's roots, and `ca_file` when given.
pub fn client(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        let mut any = false;
        for cert in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            any = true;
        }
        if !any {
            return Err(format!(
                "{}: no certificate in it (PEM expected)",
                ca.display()
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A byte stream to a server: plain TCP, or TLS over it.
pub(crate) trait Stream: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> Stream for T {}

/// `tcp` as is, or wrapped in TLS for `host` when there is a client configuration. A
/// host that cannot be a TLS server name is `InvalidInput`.
pub(crate) fn over(
    tcp: std::net::TcpStream,
    host: &str,
    config: Option<Arc<rustls::ClientConfig>>,
) -> std::io::Result<Box<dyn Stream>> {
    let Some(config) = config else {
        return Ok(Box::new(tcp));
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
    })?;
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves. A failed handshake
/// concerns that client only.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    acceptor: TlsAcceptor,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        }
    }
}
