//! The pump around the IO-free [`Uplink`]: one live connection's reader,
//! why it closed, and sending what the session's window allows from the
//! spool. The session decides; this only moves bytes between it, the disk
//! and QUIC. The agent drives it today; a node's link to its parent is the
//! next user.

use std::{net::SocketAddr, time::Duration};

use quinn::{ClientConfig, Connection, Endpoint, RecvStream, SendStream};
use suanli_protocol::{
    session::Uplink,
    stream::{Inbound, encode_sample_frame},
};
use tokio::sync::mpsc;

use crate::{
    spool::{Spool, SpoolError},
    transport::{self, CloseCode, MessageReader, ReadError, SERVER_NAME, TransportError},
};

/// Frames written to the stream in one go, at most.
const SEND_BATCH: usize = 64;
/// How long a QUIC and TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("resolving {address}: {source}")]
    Resolve {
        address: String,
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error(transparent)]
    Endpoint(#[from] TransportError),
    #[error(transparent)]
    Connect(#[from] quinn::ConnectError),
    #[error("handshake timed out")]
    Timeout,
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
}

/// The first address `address` (`host:port`) resolves to.
pub async fn resolve(address: &str) -> Result<SocketAddr, DialError> {
    tokio::net::lookup_host(address)
        .await
        .map_err(|source| DialError::Resolve {
            address: address.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| DialError::NoAddress(address.to_owned()))
}

/// A local wildcard address of the same family, for a client endpoint.
pub fn unspecified_for(remote: SocketAddr) -> SocketAddr {
    match remote {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

/// Dials `address` with `client` (made once into `endpoint`, then reused)
/// and opens the stream: the connection and both halves.
pub async fn dial(
    endpoint: &mut Option<Endpoint>,
    address: &str,
    client: &ClientConfig,
) -> Result<(Connection, SendStream, RecvStream), DialError> {
    let remote = resolve(address).await?;
    let ep = match endpoint {
        Some(ep) => ep.clone(),
        None => endpoint
            .insert(transport::endpoint(unspecified_for(remote), None, None)?.0)
            .clone(),
    };
    let connection = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        ep.connect_with(client.clone(), remote, SERVER_NAME)?,
    )
    .await
    .map_err(|_| DialError::Timeout)??;
    let (send, recv) = connection.open_bi().await?;
    Ok((connection, send, recv))
}

/// One live connection: its send half, and the messages its reader task
/// forwards, ending with why it closed.
#[derive(Debug)]
pub struct Link<M> {
    pub connection: Connection,
    pub send: SendStream,
    messages: mpsc::Receiver<Result<M, Closed>>,
}

/// Why the connection ended, as far as this end can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The peer's close code, when it closed with one of ours.
    pub code: Option<CloseCode>,
    pub reason: String,
}

impl<M: Inbound + Send + 'static> Link<M> {
    /// Starts reading `recv` on its own task; the task ends with the
    /// connection or when the link is dropped.
    pub fn new(connection: Connection, send: SendStream, recv: RecvStream) -> Self {
        let (tx, messages) = mpsc::channel(64);
        tokio::spawn(read_messages(
            MessageReader::new(recv),
            connection.clone(),
            tx,
        ));
        Self {
            connection,
            send,
            messages,
        }
    }
}

/// The next message of `link`, or why it closed; never resolves without a
/// link, so it can sit in a `select!` while disconnected.
pub async fn next_message<M>(link: &mut Option<Link<M>>) -> Result<M, Closed> {
    match link {
        Some(l) => l.messages.recv().await.unwrap_or_else(|| {
            Err(Closed {
                code: None,
                reason: "reader stopped".into(),
            })
        }),
        None => std::future::pending().await,
    }
}

async fn read_messages<M: Inbound>(
    mut reader: MessageReader,
    connection: Connection,
    tx: mpsc::Sender<Result<M, Closed>>,
) {
    let closed = loop {
        match reader.next::<M>().await {
            Ok(Some(message)) => {
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            Ok(None) => break closed_reason(&connection, "stream ended".into()).await,
            Err(ReadError::Frame(e)) => {
                connection.close(CloseCode::Protocol.code(), e.to_string().as_bytes());
                break Closed {
                    code: None,
                    reason: format!("bad frame from the peer: {e}"),
                };
            }
            Err(ReadError::Stream(e)) => break closed_reason(&connection, e.to_string()).await,
        }
    };
    let _ = tx.send(Err(closed)).await;
}

async fn closed_reason(connection: &Connection, fallback: String) -> Closed {
    match transport::close_reason(connection).await {
        Some(quinn::ConnectionError::ApplicationClosed(close)) => Closed {
            code: CloseCode::from_code(close.error_code),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        Some(other) => Closed {
            code: None,
            reason: other.to_string(),
        },
        None => Closed {
            code: None,
            reason: fallback,
        },
    }
}

/// Why sending from the spool stopped.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
}

/// Sends the spooled samples the session's window allows, several frames
/// per write.
pub async fn pump(
    send: &mut SendStream,
    uplink: &mut Uplink,
    spool: &mut Spool,
) -> Result<(), PumpError> {
    loop {
        let mut bytes = Vec::new();
        let mut frames = 0;
        while frames < SEND_BATCH {
            let Some(next) = uplink.next_to_send(spool.pending()) else {
                break;
            };
            let Some((seq, sample)) = spool.read(next)? else {
                break;
            };
            encode_sample_frame(&sample, &mut bytes);
            uplink.on_sent(seq);
            frames += 1;
        }
        if frames == 0 {
            return Ok(());
        }
        send.write_all(&bytes).await?;
    }
}

/// Sleeps `duration`, or forever without one: a dial timer for `select!`.
pub async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Randomness for backoff jitter.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Jitter only: if the system source failed, no jitter is still correct.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_literal_address_resolves_to_itself_and_a_bad_one_is_named() {
        let addr = resolve("127.0.0.1:7443").await.unwrap();
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 7443)));
        assert_eq!(unspecified_for(addr), SocketAddr::from(([0, 0, 0, 0], 0)));
        let v6 = resolve("[::1]:7443").await.unwrap();
        assert_eq!(unspecified_for(v6), SocketAddr::from(([0u16; 8], 0)));
        let err = resolve("no port here").await.unwrap_err();
        assert!(err.to_string().contains("no port here"), "{err}");
    }
}
