//! A child node played by the test itself: it speaks the node link
//! (`suanli-node/1`) directly, so a test can file what a real node never
//! would (outside its prefix, a revision going backwards, an oversize
//! record) and a benchmark can file as fast as the parent takes it.

#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use suanli_link::transport::{self, MessageReader, SERVER_NAME, ServerTrust};
use suanli_protocol::{
    identifier::{
        Identifier, Industry, NodePrefix, OwnerCode, RegionCode, ResourceType, Serial, SpecCode,
    },
    join::JoinString,
    node::{
        ChildMessage, Filing, FilingBatch, JoinRequest, JoinStatus, MarketReport, ParentMessage,
        Role,
    },
    stream::{AgentMessage, AggregatorMessage, Hello, Inbound},
};

use crate::Aggregator;

/// An approved child: its certificate, key, the parent's CA and its prefix.
#[derive(Debug)]
pub struct ScriptedChild {
    pub parent: SocketAddr,
    pub prefix: String,
    pub certificate: CertificateDer<'static>,
    key_der: Vec<u8>,
    pub parent_ca: CertificateDer<'static>,
}

/// One open stream of a connection.
#[derive(Debug)]
pub struct Stream {
    pub connection: quinn::Connection,
    send: quinn::SendStream,
    reader: MessageReader,
}

impl Stream {
    pub async fn open(parent: SocketAddr, client: quinn::ClientConfig) -> Result<Self, String> {
        let (endpoint, _) = transport::endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), None, None)
            .map_err(|e| e.to_string())?;
        let connection = endpoint
            .connect_with(client, parent, SERVER_NAME)
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let (send, recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
        Ok(Self {
            connection,
            send,
            reader: MessageReader::new(recv),
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.send.write_all(bytes).await.map_err(|e| e.to_string())
    }

    pub async fn send(&mut self, message: ChildMessage) -> Result<(), String> {
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        self.write(&bytes).await
    }

    /// The next message, or the reason the peer closed the connection.
    pub async fn next<M: Inbound>(&mut self) -> Result<M, String> {
        match tokio::time::timeout(Duration::from_secs(20), self.reader.next::<M>()).await {
            Ok(Ok(Some(message))) => Ok(message),
            Err(_) => Err("no answer within 20 s".into()),
            _ => Err(match transport::close_reason(&self.connection).await {
                Some(quinn::ConnectionError::ApplicationClosed(c)) => {
                    String::from_utf8_lossy(&c.reason).into_owned()
                }
                Some(other) => other.to_string(),
                None => "closed without a reason".into(),
            }),
        }
    }
}

impl ScriptedChild {
    /// Joins `parent` as an industry node of `industry`: a token, the
    /// request, approval by the parent's staff, the poll that fetches the
    /// certificate.
    pub async fn join(parent: &Aggregator, industry: &str) -> Self {
        let out = parent.admin(&[
            "node",
            "token",
            "create",
            "--role",
            "industry",
            "--industry",
            industry,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let join: JoinString = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let pinned = || {
            transport::node_client_config(ServerTrust::CaFingerprint(join.ca_fingerprint), None)
                .unwrap()
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let mut stream = Stream::open(parent.quic, pinned()).await.unwrap();
        stream
            .send(ChildMessage::JoinRequest(Box::new(JoinRequest {
                token: join.token.clone(),
                csr_der: csr.der().to_vec(),
                role: Some(Role::Industry),
                operator_name: "脚本节点".into(),
                operator_uscc: crate::tree::OPERATOR_USCC.into(),
                ca_fingerprint: "00".repeat(32),
                advertise: "127.0.0.1:1".into(),
                node_version: "test".into(),
            })))
            .await
            .unwrap();
        let ParentMessage::JoinReceipt {
            request_id,
            poll_secret,
        } = stream.next::<ParentMessage>().await.unwrap()
        else {
            panic!("no receipt")
        };
        let out = parent.admin(&["node", "approve", &request_id.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut stream = Stream::open(parent.quic, pinned()).await.unwrap();
        stream
            .send(ChildMessage::JoinPoll {
                request_id,
                poll_secret,
            })
            .await
            .unwrap();
        let ParentMessage::JoinStatus(JoinStatus::Approved(approval)) =
            stream.next::<ParentMessage>().await.unwrap()
        else {
            panic!("not approved")
        };
        Self {
            parent: parent.quic,
            prefix: approval.prefix,
            certificate: approval.certificate_der.into(),
            key_der: key.serialize_der(),
            parent_ca: approval.ca_certificate_der.into(),
        }
    }

    fn identity(&self) -> Option<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
        Some((
            self.certificate.clone(),
            PrivateKeyDer::Pkcs8(self.key_der.clone().into()),
        ))
    }

    /// Opens the link: `Hello`, and the parent's `Welcome`.
    pub async fn link(&self) -> Result<Stream, String> {
        let client =
            transport::node_client_config(ServerTrust::Ca(self.parent_ca.clone()), self.identity())
                .unwrap();
        let mut stream = Stream::open(self.parent, client).await?;
        stream.send(ChildMessage::Hello(hello())).await?;
        match stream.next::<ParentMessage>().await? {
            ParentMessage::Welcome(_) => Ok(stream),
            other => Err(format!("expected Welcome, got {other:?}")),
        }
    }

    /// Presents this node certificate on the agents' ALPN instead.
    pub async fn as_agent(&self) -> Result<AggregatorMessage, String> {
        let client =
            transport::client_config(ServerTrust::Ca(self.parent_ca.clone()), self.identity())
                .unwrap();
        let mut stream = Stream::open(self.parent, client).await?;
        let mut bytes = Vec::new();
        AgentMessage::Hello(hello()).encode(&mut bytes);
        stream.write(&bytes).await?;
        stream.next::<AggregatorMessage>().await
    }

    /// A filing of an identifier under `prefix` with `serial`, at `revision`.
    pub fn filing(prefix: &str, serial: u64, revision: u64) -> Filing {
        let identifier = Identifier::new(
            NodePrefix::parse(prefix).unwrap(),
            OwnerCode::parse("P00001").unwrap(),
            Industry::parse("I65").unwrap(),
            RegionCode::parse("320102").unwrap(),
            ResourceType::AiAccelerator,
            SpecCode::parse("H100-80G").unwrap(),
            Serial::parse(&format!("{serial:06}")).unwrap(),
        )
        .to_string();
        Filing {
            identifier,
            revision,
            resource_type: "A".into(),
            owner_code: "P00001".into(),
            provider_name: "脚本算力".into(),
            provider_uscc: "91350100M000100Y43".into(),
            industry: "I65".into(),
            region: "320102".into(),
            spec: "H100-80G".into(),
            model: Some("NVIDIA H100 80GB HBM3".into()),
            memory_bytes: Some(80 << 30),
            logical_cpus: None,
            state: "active".into(),
            superseded_by: String::new(),
            changed_at_unix_ms: 1_700_000_000_000,
        }
    }

    pub fn batch(seq: u64, filings: Vec<Filing>) -> ChildMessage {
        ChildMessage::Filings(FilingBatch {
            seq,
            filings,
            reports: Vec::new(),
        })
    }

    /// A record of market reports alone.
    pub fn reports(seq: u64, reports: Vec<MarketReport>) -> ChildMessage {
        ChildMessage::Filings(FilingBatch {
            seq,
            filings: Vec::new(),
            reports,
        })
    }
}

fn hello() -> Hello {
    Hello {
        min_version: 1,
        max_version: 1,
        agent_version: "test".into(),
        first_pending_seq: None,
        next_seq: 0,
        dropped_samples: 0,
    }
}
