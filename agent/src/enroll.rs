//! `suanli-agent join`: enroll this host with a node.
//!
//! Generates a key pair here (the private key never leaves the host), trusts
//! the aggregator only if its CA matches the join string's fingerprint, sends
//! the token with a CSR, and stores the signed certificate and the node CA.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};
use suanli_link::{
    transport::{self, CloseCode, MessageReader, SERVER_NAME, ServerTrust},
    uplink::{resolve, unspecified_for},
};
use suanli_protocol::{
    join::JoinString,
    stream::{AgentMessage, AggregatorMessage, EnrollRequest, Enrolled},
};

use crate::{
    collect::{Collector, HostRoot, host::HostCollector},
    state::{AgentState, Enrollment},
};
use suanli_protocol::model::HostReport;

/// How long joining may take before it is given up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Waits between tries while the node is busy, doubling up to the most.
const BUSY_FIRST_PAUSE: Duration = Duration::from_millis(250);
const BUSY_MAX_PAUSE: Duration = Duration::from_secs(4);

pub async fn join(
    join: &JoinString,
    state_dir: &Path,
    root: &HostRoot,
) -> anyhow::Result<Enrollment> {
    if state_dir.join("agent.json").exists() {
        bail!(
            "{} already holds an enrollment; remove it to join again",
            state_dir.display()
        );
    }
    // Everything local before the token, which works once, is spent.
    AgentState::check_writable(state_dir).context(
        "the token was not used: run as root (or the agent's user), or give --state-dir a \
         directory this user can write",
    )?;
    let address = resolve(&join.address)
        .await
        .with_context(|| format!("the token was not used: resolving {}", join.address))?;
    // The machine-id keeps the host's identity (and identifiers) across
    // reinstalls; the host collector is what reads it.
    let mut report = HostReport::default();
    HostCollector::new(root.clone())
        .collect()
        .apply(&mut report);
    let inventory = report.inventory;

    let key = rcgen::KeyPair::generate().context("generating the host key")?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())?
        .serialize_request(&key)
        .context("building the CSR")?;

    let client = transport::client_config(ServerTrust::CaFingerprint(join.ca_fingerprint), None)?;
    let (endpoint, _) = transport::endpoint(unspecified_for(address), None, None)?;
    let mut request = Vec::new();
    AgentMessage::EnrollRequest(EnrollRequest {
        token: join.token.clone(),
        csr_der: csr.der().to_vec(),
        machine_id: inventory.machine_id.clone(),
        hostname: inventory.hostname.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        // Root-only files: read when joining as root, which is when it matters.
        product_uuid: inventory.dmi.product_uuid.clone(),
        board_serial: inventory.dmi.board_serial.clone(),
    })
    .encode(&mut request);
    let enrolled = tokio::time::timeout(JOIN_TIMEOUT, async {
        // A node at its cap of certificate-less connections (close code
        // busy: a rack joining at once behind one address) is tried again,
        // at spread-out times so the rack does not come back in step.
        let mut pause = BUSY_FIRST_PAUSE;
        loop {
            match attempt(&endpoint, &client, address, &request).await? {
                Ok(enrolled) => return anyhow::Ok(enrolled),
                Err(busy) => {
                    let jitter = Duration::from_millis(
                        u64::from(std::process::id()) % (pause.as_millis() as u64 + 1),
                    );
                    eprintln!("the node is busy ({busy}); trying again");
                    tokio::time::sleep(pause + jitter).await;
                    pause = (pause * 2).min(BUSY_MAX_PAUSE);
                }
            }
        }
    })
    .await
    .with_context(|| {
        format!(
            "no answer from the node at {} ({address}) within {} s: is it running, and is UDP \
             port {} open on the way? The token was not used",
            join.address,
            JOIN_TIMEOUT.as_secs(),
            address.port()
        )
    })??;
    endpoint.wait_idle().await;

    let enrollment = Enrollment {
        aggregator: join.address.clone(),
        host_id: enrolled.host_id,
        host_identifier: enrolled.host_identifier,
    };
    AgentState::save(
        state_dir,
        &enrollment,
        &enrolled.ca_certificate_der,
        &enrolled.certificate_der,
        &key.serialize_der(),
    )?;
    Ok(enrollment)
}

/// One enrollment try: the node's answer, or `Err(reason)` when it was too
/// busy to take the connection (worth trying again); any other refusal is
/// an error.
async fn attempt(
    endpoint: &quinn::Endpoint,
    client: &quinn::ClientConfig,
    address: std::net::SocketAddr,
    request: &[u8],
) -> anyhow::Result<Result<Enrolled, String>> {
    let conn = endpoint
        .connect_with(client.clone(), address, SERVER_NAME)?
        .await
        .with_context(|| format!("connecting to {address}"))?;
    // The node may turn a busy connection away before a stream opens.
    let answer = async {
        let (mut send, recv) = conn.open_bi().await?;
        send.write_all(request).await?;
        anyhow::Ok(MessageReader::new(recv).next::<AggregatorMessage>().await?)
    }
    .await;
    let reason = match answer {
        Ok(Some(AggregatorMessage::Enrolled(enrolled))) => {
            conn.close(CloseCode::Done.code(), b"enrolled");
            return Ok(Ok(enrolled));
        }
        // A refusal is a connection close with a reason; the stream may
        // end or fail before that close arrives.
        other => match transport::close_reason(&conn).await {
            Some(quinn::ConnectionError::ApplicationClosed(close)) => {
                let reason = String::from_utf8_lossy(&close.reason).into_owned();
                if CloseCode::from_code(close.error_code) == Some(CloseCode::Busy) {
                    return Ok(Err(reason));
                }
                reason
            }
            Some(closed) => closed.to_string(),
            None => match other {
                Ok(answer) => format!("unexpected answer {answer:?}"),
                Err(e) => e.to_string(),
            },
        },
    };
    bail!("the aggregator refused to enroll this host: {reason}")
}
