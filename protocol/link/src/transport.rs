//! QUIC and TLS glue shared by both ends (feature `quic`).
//!
//! TLS 1.3 only, ring as the one crypto provider, ALPN [`ALPN`]. The
//! aggregator presents `[server certificate, node CA]`; an agent that has not
//! joined yet trusts that chain only if the CA's SHA-256 fingerprint matches
//! the one in its join string ([`ServerTrust::CaFingerprint`]), afterwards it
//! trusts the stored CA ([`ServerTrust::Ca`]). Client certificates are
//! optional at the TLS layer so that a joining host can reach enrollment; the
//! aggregator refuses everything else from a connection without one.
//!
//! No 0-RTT: early data is replayable and precedes the client-certificate check.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use quinn::{
    ClientConfig, Connection, ConnectionError, Endpoint, EndpointConfig, RecvStream, SendStream,
    ServerConfig, TokioRuntime, TransportConfig, VarInt,
    crypto::rustls::{QuicClientConfig, QuicServerConfig},
};
use rustls::{
    DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    server::WebPkiClientVerifier,
};

use suanli_protocol::{
    node::NODE_ALPN,
    stream::{ALPN, FrameDecoder, FrameError, Inbound, Outbound},
};

/// The name every aggregator certificate carries; agents verify against it,
/// whatever address they dial (the node CA is pinned, not a public one).
pub const SERVER_NAME: &str = "suanli-aggregator";

/// Requested UDP socket buffers: the kernel default (208 KiB) overflows when
/// thousands of agents handshake at once.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// How long a silent connection lives; agents send keep-alives well within it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const KEEP_ALIVE: Duration = Duration::from_secs(12);

/// Application close codes, so the peer can tell why it was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum CloseCode {
    Done = 0,
    /// A frame broke the protocol: too long, malformed, unknown, out of order.
    Protocol = 1,
    /// No client certificate, or one this node does not know.
    Unauthenticated = 2,
    Revoked = 3,
    Version = 4,
    /// Bad, expired or used-up enrollment token.
    EnrollmentRefused = 5,
    /// The peer opened a stream and sent nothing in time.
    Idle = 6,
    ShuttingDown = 7,
    /// A newer connection of the same host took over.
    Replaced = 8,
    Internal = 9,
    /// Too many connections of this kind at once (from this address): later.
    Busy = 10,
}

impl CloseCode {
    pub fn code(self) -> VarInt {
        VarInt::from_u32(self as u32)
    }

    pub fn from_code(code: VarInt) -> Option<Self> {
        use CloseCode::*;
        [
            Done,
            Protocol,
            Unauthenticated,
            Revoked,
            Version,
            EnrollmentRefused,
            Idle,
            ShuttingDown,
            Replaced,
            Internal,
            Busy,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }

    /// Whether dialing again can help without a person acting first.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            CloseCode::Unauthenticated
                | CloseCode::Revoked
                | CloseCode::Version
                | CloseCode::EnrollmentRefused
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("QUIC crypto: {0}")]
    Crypto(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("UDP socket on {addr}: {source}")]
    Socket { addr: SocketAddr, source: io::Error },
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 of a certificate's DER, as the join string carries it.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn transport(keep_alive: Option<Duration>) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .expect("60 s is a valid idle timeout"),
    ));
    t.keep_alive_interval(keep_alive);
    // One control stream per connection; nobody needs more.
    t.max_concurrent_bidi_streams(VarInt::from_u32(1));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    Arc::new(t)
}

/// The aggregator's QUIC server configuration.
pub fn server_config(
    ca: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TransportError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert, ca], server_key)?;
    // Agents and child nodes share the port; ALPN tells them apart.
    tls.alpn_protocols = vec![ALPN.to_vec(), NODE_ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let mut config = ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    config.transport_config(transport(None));
    Ok(config)
}

/// How an agent decides to trust an aggregator.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// Joined: the node CA stored at enrollment.
    Ca(CertificateDer<'static>),
    /// Joining: whatever CA the server presents, if its fingerprint matches.
    CaFingerprint([u8; 32]),
}

/// An agent's QUIC client configuration; `identity` is its enrolled
/// certificate and key (none while joining).
pub fn client_config(
    trust: ServerTrust,
    identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TransportError> {
    client_config_for(ALPN, trust, identity)
}

/// A child node's configuration for the link to its parent (ALPN
/// `suanli-node/1`): the parent's CA pinned or stored, the node
/// certificate the parent signed once approved.
pub fn node_client_config(
    trust: ServerTrust,
    identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TransportError> {
    client_config_for(NODE_ALPN, trust, identity)
}

fn client_config_for(
    alpn: &[u8],
    trust: ServerTrust,
    identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TransportError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match trust {
        ServerTrust::Ca(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca)?;
            builder.with_root_certificates(roots)
        }
        ServerTrust::CaFingerprint(expected) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCa { expected, provider })),
    };
    let mut tls = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key)?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.enable_early_data = false;
    let mut config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    config.transport_config(transport(Some(KEEP_ALIVE)));
    Ok(config)
}

/// Trusts a server chain whose CA has a known fingerprint, then verifies the
/// chain against that CA as usual.
#[derive(Debug)]
struct PinnedCa {
    expected: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.expected)
            .ok_or_else(|| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                    rustls::OtherError(Arc::new(io::Error::other(
                        "the node's CA is not the one this join string pins: a join string \
                         from another node, or a node whose data directory was replaced",
                    ))),
                ))
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A UDP endpoint with socket buffers large enough for handshake bursts.
/// Returns the endpoint and the receive buffer the kernel actually granted
/// (capped by `net.core.rmem_max`; see packaging/sysctl).
///
/// `reset_key` (32 bytes or more, kept across restarts) lets a restarted
/// aggregator answer its predecessor's connections with a valid stateless
/// reset, so agents reconnect at once instead of after the idle timeout.
pub fn endpoint(
    addr: SocketAddr,
    server: Option<ServerConfig>,
    reset_key: Option<&[u8]>,
) -> Result<(Endpoint, usize), TransportError> {
    let socket_error = |source| TransportError::Socket { addr, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(socket_error)?;
    // Best effort: the kernel caps the grant, and we report what it gave.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.bind(&addr.into()).map_err(socket_error)?;
    let granted = socket.recv_buffer_size().map_err(socket_error)?;
    let config = match reset_key {
        Some(key) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
            // Connection IDs carry a keyed check that an endpoint validates
            // before it answers with a reset; derive that key from the same
            // secret so the successor recognises its predecessor's IDs.
            let tag = ring::hmac::sign(&key, b"suanli connection id key");
            let cid_key = u64::from_le_bytes(
                tag.as_ref()[..8]
                    .try_into()
                    .expect("an HMAC-SHA256 tag has 32 bytes"),
            );
            let mut config = EndpointConfig::new(Arc::new(key));
            config.cid_generator(move || {
                Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
            });
            config
        }
        None => EndpointConfig::default(),
    };
    let endpoint = Endpoint::new(config, server, socket.into(), Arc::new(TokioRuntime))
        .map_err(socket_error)?;
    Ok((endpoint, granted))
}

/// The protocol the peer chose at the TLS handshake.
pub fn alpn(conn: &Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// The certificate the peer presented, if any.
pub fn peer_certificate(conn: &Connection) -> Option<CertificateDer<'static>> {
    conn.peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?
        .into_iter()
        .next()
}

/// How long a peer whose stream ended gets to deliver its close reason.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why the peer closed `conn`. A peer that refuses us drops its stream and
/// then closes the connection with a reason, and the stream's FIN can arrive
/// first, so this waits a moment for the CONNECTION_CLOSE that says why.
pub async fn close_reason(conn: &Connection) -> Option<ConnectionError> {
    if let Some(reason) = conn.close_reason() {
        return Some(reason);
    }
    tokio::time::timeout(CLOSE_GRACE, conn.closed()).await.ok()
}

/// Why this end closes a connection: the code and reason the peer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: CloseCode,
    pub reason: String,
}

impl Refusal {
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// A bad frame is the peer's fault; a broken stream just ends it.
impl From<ReadError> for Refusal {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Frame(f) => Refusal::new(CloseCode::Protocol, f.to_string()),
            ReadError::Stream(s) => Refusal::new(CloseCode::Done, format!("stream: {s}")),
        }
    }
}

/// The stream a peer opens on a new connection and its first message,
/// each within `timeout`; `None` when the peer ended the stream at once.
pub async fn first_message<M: Inbound>(
    conn: &Connection,
    timeout: Duration,
) -> Result<(SendStream, MessageReader, Option<M>), Refusal> {
    let idle = || Refusal::new(CloseCode::Idle, "no message within the handshake timeout");
    let (send, recv) = tokio::time::timeout(timeout, conn.accept_bi())
        .await
        .map_err(|_| idle())?
        .map_err(|e| Refusal::new(CloseCode::Done, format!("connection: {e}")))?;
    let mut reader = MessageReader::new(recv);
    let first = tokio::time::timeout(timeout, reader.next::<M>())
        .await
        .map_err(|_| idle())??;
    Ok((send, reader, first))
}

/// Frames and writes one message; a failed write just ends the exchange.
pub async fn send_message(send: &mut SendStream, message: impl Outbound) -> Result<(), Refusal> {
    let mut bytes = Vec::new();
    message.encode(&mut bytes);
    send.write_all(&bytes)
        .await
        .map_err(|e| Refusal::new(CloseCode::Done, format!("write: {e}")))
}

/// Why reading the next message failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("stream: {0}")]
    Stream(#[from] quinn::ReadError),
}

/// Reads whole messages off a stream.
#[derive(Debug)]
pub struct MessageReader {
    recv: RecvStream,
    decoder: FrameDecoder,
    chunk: Box<[u8]>,
}

impl MessageReader {
    pub fn new(recv: RecvStream) -> Self {
        Self {
            recv,
            decoder: FrameDecoder::default(),
            chunk: vec![0; 64 << 10].into_boxed_slice(),
        }
    }

    /// The next message; `None` at a clean end of stream.
    pub async fn next<M: Inbound>(&mut self) -> Result<Option<M>, ReadError> {
        loop {
            if let Some(message) = self.decoder.decode()? {
                return Ok(Some(message));
            }
            // Read no further than the next frame needs: a too-long length
            // prefix is refused before any of its body is buffered.
            let want = self.decoder.wanted()?.clamp(1, self.chunk.len());
            match self.recv.read(&mut self.chunk[..want]).await? {
                Some(n) => self.decoder.push(&self.chunk[..n]),
                None => {
                    self.decoder.finish()?;
                    return Ok(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = fingerprint(b"suanli");
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("abc"), None);
    }

    #[test]
    fn close_codes_round_trip() {
        for code in 0..10 {
            let c = CloseCode::from_code(VarInt::from_u32(code)).unwrap();
            assert_eq!(c.code(), VarInt::from_u32(code));
        }
        assert_eq!(CloseCode::from_code(VarInt::from_u32(99)), None);
    }
}
