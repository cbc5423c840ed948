//! HTTPS for the API and dashboard.
//!
//! The session cookie is `Secure`, so a browser signs in only over HTTPS
//! (or to localhost). On a loopback address the node serves plain HTTP; on
//! any other it serves TLS 1.3 with the operator's certificate, or else with
//! one the node CA signs for its names (staff trust `ca.pem`, as agents
//! already do). Plain HTTP elsewhere is an explicit choice, for a node
//! behind a TLS-terminating proxy.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tracing::debug;

use crate::identity::NodeIdentity;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the HTTP listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpTls {
    Plain,
    /// The operator's certificate chain and key, PEM.
    Files {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
    /// A certificate the node CA signs at start for these names.
    NodeCa {
        names: Vec<String>,
    },
}

impl HttpTls {
    pub fn is_tls(&self) -> bool {
        !matches!(self, HttpTls::Plain)
    }

    /// The TLS configuration, `None` for plain HTTP.
    pub fn server_config(&self, identity: &NodeIdentity) -> anyhow::Result<Option<ServerConfig>> {
        let (chain, key) = match self {
            HttpTls::Plain => return Ok(None),
            HttpTls::Files { cert, key } => (read_chain(cert)?, read_key(key)?),
            HttpTls::NodeCa { names } => {
                let (cert, key) = identity
                    .sign_web(names)
                    .context("signing the dashboard's certificate")?;
                (vec![cert, identity.ca_der.clone()], key)
            }
        };
        let config = ServerConfig::builder_with_provider(suanli_link::transport::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the HTTPS certificate and key do not go together")?;
        Ok(Some(config))
    }
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("{}: not a PEM certificate chain", path.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{}: holds no PEM certificate",
        path.display()
    );
    Ok(chain)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("{}: not a PEM private key", path.display()))
}

/// Accepts TCP connections and hands over those whose TLS handshake
/// completed; handshakes run side by side, so a slow client holds up no one.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish()
    }
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: ServerConfig) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = tcp.accept() => accepted,
                    // The server is gone: stop listening.
                    () = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, usually: give the others a moment.
                        debug!(error = %e, "accepting an HTTPS connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, handed) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The acceptor only stops once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
