//! Bad input gets a clear error and harms no one else: while a real agent
//! streams, hostile and broken clients hit the same aggregator, each is
//! closed with a reason it can read, and the real agent's connection is
//! never disturbed.

#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use quinn::{ConnectionError, Endpoint};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use suanli_link::transport::{self, CloseCode, SERVER_NAME, ServerTrust};
use suanli_protocol::stream::{AgentMessage, Hello, MAX_FRAME_LEN};
use suanli_tests::{Agent, Aggregator, Backend, wait_until};

const WAIT: Duration = Duration::from_secs(30);

fn node_ca(node: &Aggregator) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(node.data_dir.join("ca.pem")).unwrap()
}

fn client_endpoint() -> Endpoint {
    transport::endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), None, None)
        .unwrap()
        .0
}

/// A certificate and key signed by a CA that is not the node's.
fn foreign_identity() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

/// The close the aggregator sent, as the client sees it.
async fn closed(conn: &quinn::Connection) -> (Option<CloseCode>, String) {
    match tokio::time::timeout(WAIT, conn.closed()).await.unwrap() {
        ConnectionError::ApplicationClosed(close) => (
            CloseCode::from_code(close.error_code),
            String::from_utf8_lossy(&close.reason).into_owned(),
        ),
        other => (None, other.to_string()),
    }
}

/// Connects without a client certificate, sends `bytes` on a stream, and
/// returns how the aggregator closed the connection.
async fn send_raw(node: &Aggregator, bytes: &[u8]) -> (Option<CloseCode>, String) {
    let client = transport::client_config(ServerTrust::Ca(node_ca(node)), None).unwrap();
    let conn = client_endpoint()
        .connect_with(client, node.quic, SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    closed(&conn).await
}

/// A framed Hello from an agent speaking minor versions `min..=max`.
fn hello(min_version: u32, max_version: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    AgentMessage::Hello(Hello {
        min_version,
        max_version,
        agent_version: "test".into(),
        first_pending_seq: None,
        next_seq: 0,
        dropped_samples: 0,
    })
    .encode(&mut bytes);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_get_clear_reasons_and_disturb_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(
        &dir.path().join("node"),
        Backend::Sqlite,
        &["--handshake-timeout", "500ms"],
    );
    let join = node.join_string(None);
    let mut agent = Agent::join(&dir.path().join("agent"), &join, "20ms");
    agent.run();
    let stored = || node.host().unwrap()["samples_stored"].as_i64().unwrap();
    wait_until(WAIT, "the good agent to stream", || stored() >= 10);
    let connected_for = || {
        node.host().unwrap()["link"]["connected_for_ms"]
            .as_i64()
            .unwrap_or(0)
    };
    let before = connected_for();

    // Garbage datagrams at the QUIC port.
    let garbage = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..500u32 {
        let junk: Vec<u8> = (0..1200).map(|j| (i * 31 + j) as u8).collect();
        garbage.send_to(&junk, node.quic).unwrap();
    }

    // Wrong ALPN: refused in the TLS handshake.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(node_ca(&node)).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(transport::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"suanli/9".to_vec()];
    let wrong_alpn = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
    ));
    let err = client_endpoint()
        .connect_with(wrong_alpn, node.quic, SERVER_NAME)
        .unwrap()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("application protocol") || err.to_string().contains("120"),
        "wrong ALPN: {err}"
    );

    // No client certificate, but talks like an enrolled agent.
    let (code, reason) = send_raw(&node, &hello(1, 1)).await;
    assert_eq!(code, Some(CloseCode::Unauthenticated), "{reason}");
    assert!(reason.contains("no client certificate"), "{reason}");

    // A certificate from another CA: the handshake "succeeds" on the client
    // side and the aggregator refuses it right after.
    let client =
        transport::client_config(ServerTrust::Ca(node_ca(&node)), Some(foreign_identity()))
            .unwrap();
    let outcome = client_endpoint()
        .connect_with(client, node.quic, SERVER_NAME)
        .unwrap()
        .await;
    let refusal = match outcome {
        Err(e) => e.to_string(),
        Ok(conn) => closed(&conn).await.1,
    };
    assert!(
        refusal.contains("certificate") || refusal.contains("UnknownIssuer"),
        "foreign CA: {refusal}"
    );

    // A length prefix over the limit: refused before the body is read.
    let mut oversize = ((MAX_FRAME_LEN as u32) + 1).to_be_bytes().to_vec();
    oversize.extend_from_slice(&[0; 64]);
    let (code, reason) = send_raw(&node, &oversize).await;
    assert_eq!(code, Some(CloseCode::Protocol), "{reason}");
    assert!(reason.contains("exceeds"), "{reason}");

    // Malformed protobuf.
    let (code, reason) = send_raw(&node, &[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
    assert_eq!(code, Some(CloseCode::Protocol), "{reason}");
    assert!(reason.contains("malformed"), "{reason}");

    // A frame with no message this version knows (an empty oneof, as a newer
    // peer's unknown message type decodes).
    let (code, reason) = send_raw(&node, &[0, 0, 0, 3, 0xf8, 0x01, 0x01]).await;
    assert_eq!(code, Some(CloseCode::Protocol), "{reason}");
    assert!(reason.contains("no message"), "{reason}");

    // A message only the aggregator may send.
    let mut ack = Vec::new();
    suanli_protocol::stream::AggregatorMessage::Ack { through_seq: 1 }.encode(&mut ack);
    let (code, reason) = send_raw(&node, &ack).await;
    assert_eq!(code, Some(CloseCode::Protocol), "{reason}");

    // Opens a stream and never writes.
    let client = transport::client_config(ServerTrust::Ca(node_ca(&node)), None).unwrap();
    let conn = client_endpoint()
        .connect_with(client, node.quic, SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    // A stream exists for the peer only once something is sent on it.
    send.write_all(&[0, 0]).await.unwrap();
    let (code, reason) = closed(&conn).await;
    assert_eq!(code, Some(CloseCode::Idle), "{reason}");

    // Connects and opens nothing at all.
    let client = transport::client_config(ServerTrust::Ca(node_ca(&node)), None).unwrap();
    let conn = client_endpoint()
        .connect_with(client, node.quic, SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let (code, reason) = closed(&conn).await;
    assert_eq!(code, Some(CloseCode::Idle), "{reason}");

    // Each refusal was logged once, naming the peer (address and certificate).
    let log = std::fs::read_to_string(node.data_dir.with_extension("aggregator.log")).unwrap();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("closing connection"))
        .collect();
    assert_eq!(refusals.len(), 7, "{refusals:#?}");
    assert!(
        refusals
            .iter()
            .all(|l| l.contains("remote=127.0.0.1:") && l.contains("certificate=")),
        "{refusals:#?}"
    );

    // The good agent never noticed: still on its first connection, still storing.
    let after = stored();
    wait_until(WAIT, "the good agent to keep streaming", || {
        stored() >= after + 10
    });
    let host = node.host().unwrap();
    assert!(host["link"]["connected"].as_bool().unwrap(), "{host:#}");
    assert!(
        connected_for() > before,
        "the good agent's connection was replaced: {host:#}"
    );
    assert_eq!(host["gaps"].as_i64(), Some(0), "{host:#}");
}

#[test]
fn an_expired_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    node.join_string(None);
    let out = node.admin(&[
        "token",
        "create",
        "--provider",
        "P00001",
        "--ttl",
        "1ms",
        "--address",
        &node.quic.to_string(),
    ]);
    assert!(out.status.success());
    let join = String::from_utf8(out.stdout).unwrap();
    let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args(["join", join.trim(), "--state-dir"])
        .arg(dir.path().join("agent"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("enrollment token expired"), "{stderr}");
    assert!(!dir.path().join("agent/agent.json").exists());
}

#[test]
fn a_used_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let join = node.join_string(None);
    Agent::join(&dir.path().join("first"), &join, "1s");
    let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args(["join", &join, "--state-dir"])
        .arg(dir.path().join("second"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already used"), "{stderr}");
}

#[test]
fn a_bad_join_string_names_what_is_wrong() {
    let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args([
            "join",
            "suanli://127.0.0.1:1/?ca=zz&token=x",
            "--state-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SHA-256 fingerprint"), "{stderr}");
}

#[test]
fn a_revoked_host_is_cut_off_and_stays_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let join = node.join_string(None);
    let mut agent = Agent::join(&dir.path().join("agent"), &join, "20ms");
    agent.run();
    wait_until(WAIT, "the agent to connect", || {
        node.host()
            .is_some_and(|h| h["link"]["connected"].as_bool() == Some(true))
    });
    let out = node.admin(&["host", "revoke", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The agent is told why and stops: retrying cannot help.
    let status = agent.wait();
    assert!(!status.success());
    assert!(agent.log().contains("host revoked"), "{}", agent.log());
    // Coming back with the same certificate is refused at once.
    agent.run();
    assert!(!agent.wait().success());
    assert_eq!(node.host().unwrap()["revoked"].as_bool(), Some(true));
    // The first connection's task lets its link go once it has wound
    // down, which on a busy machine may be after the agent has exited.
    wait_until(WAIT, "the revoked host's link to close", || {
        node.host()
            .is_some_and(|h| h["link"]["connected"].as_bool() == Some(false))
    });
}

#[test]
fn the_api_refuses_missing_and_wrong_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let (status, body) = suanli_tests::http(node.http, "GET", "/api/v1/hosts", None, None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Bearer"), "{body}");
    let (status, _) = suanli_tests::http(node.http, "GET", "/api/v1/hosts", Some("wrong"), None);
    assert_eq!(status, 401);
    let token = node.admin_token();
    let (status, body) = suanli_tests::http(
        node.http,
        "POST",
        "/api/v1/hosts/1/sample-interval",
        Some(&token),
        Some("{\"interval_ms\": \"fast\"}"),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = suanli_tests::http(
        node.http,
        "POST",
        "/api/v1/hosts/1/sample-interval",
        Some(&token),
        Some(&format!(
            "{{\"interval_ms\": 1000, \"pad\": \"{}\"}}",
            "x".repeat(100_000)
        )),
    );
    assert_eq!(status, 413, "{body}");
}

/// The bounds the OpenAPI document states are the server's: a body with a
/// field over its bound is refused before any handler reads it, every such
/// field named, counting characters rather than bytes.
#[test]
fn bodies_over_their_documented_bounds_are_refused_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let token = node.admin_token();
    let send = |path: &str, body: serde_json::Value| {
        let (status, body) = suanli_tests::http(
            node.http,
            "POST",
            path,
            Some(&token),
            Some(&body.to_string()),
        );
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
    };
    let (status, problem) = send(
        "/api/v1/selection",
        serde_json::json!({
            "industries": vec!["I65"; 21],
            "providers": ["P00001", "长".repeat(33)],
            "accelerator": {"model": "H".repeat(65)},
        }),
    );
    assert_eq!(status, 422, "{problem}");
    let named: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        named,
        ["accelerator.model", "industries", "providers[1]"],
        "{problem}"
    );
    let (status, problem) = send(
        "/api/v1/silences",
        serde_json::json!({
            "matchers": [{"name": "hostname", "value": "x".repeat(257)}],
            "duration": "1h", "reason": "maintenance",
        }),
    );
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"], "matchers[0].value",
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["message"], "at most 256 characters");
    // At the bound, in characters of three bytes each: read, and matched.
    let (status, problem) = send(
        "/api/v1/selection",
        serde_json::json!({"providers": ["长".repeat(32)]}),
    );
    assert_eq!(status, 200, "{problem}");
}

/// A client speaking as the enrolled host in `state_dir`.
async fn enrolled_connection(node: &Aggregator, state_dir: &std::path::Path) -> quinn::Connection {
    let cert = CertificateDer::from_pem_file(state_dir.join("agent.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_file(state_dir.join("agent.key")).unwrap();
    let client =
        transport::client_config(ServerTrust::Ca(node_ca(node)), Some((cert, key))).unwrap();
    client_endpoint()
        .connect_with(client, node.quic, SERVER_NAME)
        .unwrap()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_negotiated_or_refused_with_a_reason() {
    use suanli_link::transport::MessageReader;
    use suanli_protocol::stream::AggregatorMessage;
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let join = node.join_string(None);
    let agent = Agent::join(&dir.path().join("agent"), &join, "1s");

    // A newer agent (speaks 1 to 5) meets this aggregator at 1.
    let conn = enrolled_connection(&node, &agent.state_dir).await;
    let (mut send, recv) = conn.open_bi().await.unwrap();
    send.write_all(&hello(1, 5)).await.unwrap();
    match MessageReader::new(recv)
        .next::<AggregatorMessage>()
        .await
        .unwrap()
    {
        Some(AggregatorMessage::Welcome(welcome)) => assert_eq!(welcome.version, 1),
        other => panic!("expected Welcome, got {other:?}"),
    }
    conn.close(CloseCode::Done.code(), b"done");

    // An agent that only speaks versions this aggregator does not.
    let conn = enrolled_connection(&node, &agent.state_dir).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&hello(4, 5)).await.unwrap();
    let (code, reason) = closed(&conn).await;
    assert_eq!(code, Some(CloseCode::Version), "{reason}");
    assert!(reason.contains("no common protocol version"), "{reason}");
}

#[test]
fn the_aggregator_can_change_an_agents_interval() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let join = node.join_string(None);
    let mut agent = Agent::join(&dir.path().join("agent"), &join, "10s");
    agent.run();
    wait_until(WAIT, "the agent to connect", || {
        node.host()
            .is_some_and(|h| h["link"]["connected"].as_bool() == Some(true))
    });
    // At 10 s ten samples take 100 s; at 100 ms, one second.
    let (status, body) = suanli_tests::http(
        node.http,
        "POST",
        "/api/v1/hosts/1/sample-interval",
        Some(&node.admin_token()),
        Some("{\"interval_ms\": 100}"),
    );
    assert_eq!(status, 202, "{body}");
    wait_until(WAIT, "samples at the new interval", || {
        node.host().unwrap()["samples_stored"].as_i64().unwrap() >= 10
    });
    assert!(
        agent
            .log()
            .contains("sampling interval set by the aggregator")
    );
}

#[test]
fn a_second_agent_on_the_same_state_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let join = node.join_string(None);
    let mut first = Agent::join(&dir.path().join("agent"), &join, "50ms");
    first.run();
    wait_until(WAIT, "the first agent to connect", || {
        node.host()
            .is_some_and(|h| h["link"]["connected"].as_bool() == Some(true))
    });
    let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .arg("run")
        .arg("--state-dir")
        .arg(&first.state_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already running"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_csr_is_refused_and_does_not_spend_the_token() {
    use suanli_protocol::{join::JoinString, stream::EnrollRequest};
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let join_text = node.join_string(None);
    let join: JoinString = join_text.parse().unwrap();
    let mut bytes = Vec::new();
    AgentMessage::EnrollRequest(EnrollRequest {
        token: join.token.clone(),
        csr_der: b"not a CSR".to_vec(),
        machine_id: Some("m".into()),
        hostname: "h".into(),
        agent_version: "test".into(),
        product_uuid: None,
        board_serial: None,
    })
    .encode(&mut bytes);
    let (code, reason) = send_raw(&node, &bytes).await;
    assert_eq!(code, Some(CloseCode::EnrollmentRefused), "{reason}");
    assert!(reason.contains("bad CSR"), "{reason}");
    // The single-use token is still good for a real join.
    Agent::join(&dir.path().join("agent"), &join_text, "1s");
}

#[test]
fn a_refused_install_does_not_spend_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let join = node.join_string(None);
    let state = dir.path().join("agent");
    // The packaged unit runs from /var/lib/suanli-agent only: refused
    // before the aggregator is asked, so the one-use token still works.
    let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args(["join", &join, "--install", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/var/lib/suanli-agent"), "{stderr}");
    assert!(!state.join("agent.json").exists());
    let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args(["join", &join, "--install", "--user", "no-such-user-here"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-user-here") || stderr.contains("needs root"),
        "{stderr}"
    );
    // A state directory it cannot write (its parent is a file: so for root
    // too) fails before the token is spent, and says so.
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, b"").unwrap();
    let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args(["join", &join, "--state-dir"])
        .arg(blocked.join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the token was not used"), "{stderr}");
    assert!(stderr.contains("a-file"), "{stderr}");
    let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args(["join", &join, "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(state.join("agent.json").exists());
    // And says what comes next.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("suanli-agent run --state-dir"), "{stdout}");
}

#[test]
fn a_broken_agent_config_file_is_named_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (text, named) in [
        ("intervall = \"5s\"\n", "intervall"),
        ("interval = \"soon\"\n", "interval = \"soon\""),
        ("[accelerator_libraries]\nnvidia = \"/x.so\"\n", "nvidia"),
    ] {
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(suanli_tests::binary("suanli-agent"))
            .arg("run")
            .arg("--config")
            .arg(&file)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{text}: {stderr}");
        assert!(stderr.contains("agent.toml"), "{text}: {stderr}");
    }
}

/// `suanli-agent join` as the host `root` describes; the output either way.
fn try_join(state_dir: &std::path::Path, join: &str, root: &str) -> std::process::Output {
    std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args(["join", join, "--host-root", root, "--state-dir"])
        .arg(state_dir)
        .output()
        .unwrap()
}

/// Connected, and its samples arriving.
fn connected(node: &Aggregator, hostname: &str) -> bool {
    node.hosts().iter().any(|h| {
        h["hostname"] == hostname
            && h["link"]["connected"].as_bool() == Some(true)
            && h["last_seen_ms"].is_i64()
    })
}

#[test]
fn a_host_another_provider_holds_is_refused_until_staff_transfer_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let first_join = node.join_string(None);
    node.admin_ok(&[
        "provider",
        "create",
        "--name",
        "乙方算力",
        "--uscc",
        "91110108551385082Q",
        "--region",
        "440305",
        "--industry",
        "I65",
    ]);
    let quic = node.quic.to_string();
    let second_token = |uses: &str| {
        node.admin_ok(&[
            "token",
            "create",
            "--provider",
            "91110108551385082Q",
            "--uses",
            uses,
            "--address",
            &quic,
        ])
    };
    let shared =
        |name: &str| suanli_tests::identity_root(&dir.path().join(name), "m-shared", name, None);
    // Joined as the fixture says; run reads this machine (the listing keeps
    // the hostname it enrolled with).
    let mut first = Agent::join_with_root(
        &dir.path().join("first"),
        &first_join,
        "200ms",
        &shared("first"),
    );
    first.run();
    wait_until(WAIT, "the first provider's host to stream", || {
        connected(&node, "first")
    });

    // The second provider's agent claims the same machine-id: refused, told
    // what is in conflict but not who holds it, and its token is not spent.
    let join = second_token("1");
    let out = try_join(&dir.path().join("second"), &join, &shared("second"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already enrolled on this node by another provider"),
        "{stderr}"
    );
    for secret in ["测试算力", "P00001", "91350100M000100Y43"] {
        assert!(
            !stderr.contains(secret),
            "the refusal names the holder: {stderr}"
        );
    }
    assert!(
        connected(&node, "first"),
        "the holder's agent was disturbed"
    );
    let (status, audit) = node.get("/api/v1/audit");
    assert_eq!(status, 200, "{audit}");
    assert!(audit.contains("host.enroll_refused"), "{audit}");
    let other = suanli_tests::identity_root(&dir.path().join("other"), "m-other", "other", None);
    // Its own machine, but reporting the first host's GPUs (the same
    // stand-in NVML): its host is named and streams, the GPUs are not its.
    let library = suanli_tests::nvml_standin(dir.path());
    let mut second_host = Agent::join_with_root(&dir.path().join("other"), &join, "200ms", &other);
    second_host.env = vec![("SUANLI_NVML_LIBRARY".into(), library.display().to_string())];
    first.stop();
    first.env = second_host.env.clone();
    first.run();
    wait_until(WAIT, "the first host's GPUs to be named", || {
        node.hosts().iter().any(|h| {
            h["hostname"] == "first"
                && h["resources"].as_array().is_some_and(|r| {
                    r.iter().any(|r| {
                        r["resource_key"]
                            .as_str()
                            .is_some_and(|k| k.starts_with("gpu:"))
                    })
                })
        })
    });
    second_host.run();
    wait_until(WAIT, "the second provider's host to stream", || {
        connected(&node, "other")
    });
    wait_until(WAIT, "its GPUs to be refused", || {
        node.get("/api/v1/audit").1.contains("resource.refused")
    });
    let listing = node.hosts();
    let other_host = listing.iter().find(|h| h["hostname"] == "other").unwrap();
    let keys: Vec<&str> = other_host["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["resource_key"].as_str())
        .collect();
    assert!(keys.iter().all(|k| !k.starts_with("gpu:")), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.starts_with("host:")),
        "the host itself is named: {keys:?}"
    );
    second_host.stop();

    // Staff transfer it: the first agent is cut off, the second joins it.
    let out = node.admin(&[
        "host",
        "transfer",
        "first",
        "--provider",
        "91110108551385082Q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(WAIT, "the first agent to be cut off", || {
        !connected(&node, "first")
    });
    let out = try_join(
        &dir.path().join("second"),
        &second_token("1"),
        &shared("second"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("host 1 "),
        "the same host, its identifiers kept: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (_, audit) = node.get("/api/v1/audit");
    assert!(audit.contains("host.transfer"), "{audit}");

    // And back, over the API: the host is the first provider's again.
    let r = suanli_tests::Request::new("POST", "/api/v1/hosts/1/transfer")
        .bearer(&node.admin_token())
        .json(r#"{"provider": "P00001"}"#)
        .send(node.http);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["provider"], "P00001", "{}", r.body);
    let host = node
        .hosts()
        .into_iter()
        .find(|h| h["host_id"] == 1)
        .unwrap();
    assert_eq!(host["provider"], "P00001", "{host}");
    let r = suanli_tests::Request::new("POST", "/api/v1/hosts/1/transfer")
        .bearer(&node.admin_token())
        .json(r#"{"provider": "P09999"}"#)
        .send(node.http);
    assert_eq!(r.status, 404, "no such provider: {}", r.body);
    let (_, audit) = node.get("/api/v1/audit");
    assert_eq!(audit.matches("host.transfer").count(), 2, "{audit}");
}

#[test]
fn a_cloned_image_is_refused_while_its_original_streams_and_other_hardware_is_another_host() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(
        &dir.path().join("node"),
        Backend::Sqlite,
        &["--alert-interval", "200ms"],
    );
    let join = node.join_string_for(None, 4);
    let root = |name: &str, uuid: &str| {
        suanli_tests::identity_root(&dir.path().join(name), "m-image", name, Some(uuid))
    };
    const UUID: &str = "4C4C4544-0042-3510-8052-B4C04F384E32";
    let mut original = Agent::join_with_root(
        &dir.path().join("original"),
        &join,
        "200ms",
        &root("original", UUID),
    );
    original.run();
    wait_until(WAIT, "the original to stream", || {
        connected(&node, "original")
    });

    // Same machine-id and firmware while the original is connected: a copy.
    let out = try_join(&dir.path().join("copy"), &join, &root("copy", UUID));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by an agent reporting now"),
        "{stderr}"
    );
    assert!(connected(&node, "original"), "the original was swapped out");
    // Staff are told, by an alert on the original host.
    wait_until(WAIT, "the cloned-identity alert", || {
        let (_, firing) = node.get("/api/v1/alerts?state=firing");
        let firing: serde_json::Value = serde_json::from_str(&firing).unwrap();
        firing["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "host_identity_cloned" && a["labels"]["hostname"] == "original")
    });

    // A VM cloned from the same image gets new firmware: another host.
    let vm_root = root("vm", "5D3F0000-1111-2222-3333-444455556666");
    let mut vm = Agent::join_with_root(&dir.path().join("vm"), &join, "200ms", &vm_root);
    vm.run();
    wait_until(WAIT, "both to stream as two hosts", || {
        connected(&node, "original") && connected(&node, "vm")
    });

    // The original reinstalled (its agent gone): the same host again.
    original.stop();
    wait_until(WAIT, "the original to go", || !connected(&node, "original"));
    let out = try_join(
        &dir.path().join("reinstalled"),
        &join,
        &root("original", UUID),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("host 1 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_certificate_are_short_lived_and_capped_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let mut agent = Agent::join(&dir.path().join("agent"), &node.join_string(None), "200ms");
    agent.run();
    wait_until(WAIT, "the agent to stream", || {
        node.host()
            .is_some_and(|h| h["link"]["connected"].as_bool() == Some(true))
    });
    // Silent clients without a certificate, from one address: the first 64
    // (ingest::MAX_UNAUTHENTICATED_PER_ADDRESS) are given a few seconds, the
    // next is turned away at once.
    let connect = || async {
        let client = transport::client_config(ServerTrust::Ca(node_ca(&node)), None).unwrap();
        client_endpoint()
            .connect_with(client, node.quic, SERVER_NAME)
            .unwrap()
            .await
            .unwrap()
    };
    let late_join = node.join_string(None);
    let late_root =
        suanli_tests::identity_root(&dir.path().join("late-root"), "m-late", "late", None);
    let mut silent = Vec::new();
    for _ in 0..64 {
        silent.push(connect().await);
    }
    let started = std::time::Instant::now();
    let (code, reason) = closed(&connect().await).await;
    assert_eq!(code, Some(CloseCode::Busy), "{reason}");
    assert!(reason.contains("without a certificate"), "{reason}");
    // An agent joining now, from the same address, is told the node is
    // busy and tries again until a place is free (the silent ones hold
    // theirs for 5 s).
    let joining = std::process::Command::new(suanli_tests::binary("suanli-agent"))
        .args(["join", &late_join, "--host-root", &late_root, "--state-dir"])
        .arg(dir.path().join("late"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for conn in &silent {
        let (code, reason) = closed(conn).await;
        assert_eq!(code, Some(CloseCode::Idle), "{reason}");
        assert!(reason.contains("no enrollment request within"), "{reason}");
    }
    println!(
        "silent unauthenticated connections closed after {:?} (the idle timeout is 60 s)",
        started.elapsed()
    );
    let joined = tokio::task::spawn_blocking(|| joining.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&joined.stderr);
    assert!(joined.status.success(), "{stderr}");
    assert!(stderr.contains("the node is busy"), "{stderr}");
    // Their places are free again, and the agent was never disturbed.
    let (code, _) = send_raw(&node, b"\x00").await;
    assert_ne!(code, Some(CloseCode::Busy));
    let host = node.host().unwrap();
    assert_eq!(host["link"]["connected"].as_bool(), Some(true), "{host}");
}

#[test]
fn the_first_hour_at_the_command_line_names_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    node.create_provider("110108");
    // Which provider a token is for, without guessing its code.
    let listed = node.admin_ok(&["provider", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with('P') && l.contains("测试算力")),
        "{listed}"
    );
    // An address already taken names the flag that gives another.
    let serve = |flag: &str, taken: String| {
        let free = "127.0.0.1:0".to_owned();
        let (quic, http) = if flag == "--quic-listen" {
            (taken, free)
        } else {
            (free, taken)
        };
        std::process::Command::new(suanli_tests::binary("suanli-aggregator"))
            .args(["serve", "--data-dir"])
            .arg(dir.path().join(format!("second{flag}")))
            .args(["--quic-listen", &quic, "--http-listen", &http])
            .output()
            .unwrap()
    };
    for (flag, taken) in [
        ("--http-listen", node.http.to_string()),
        ("--quic-listen", node.quic.to_string()),
    ] {
        let out = serve(flag, taken.clone());
        assert!(!out.status.success(), "{flag} {taken}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag) && stderr.contains(&taken), "{stderr}");
        // Nothing was created for a node that never started.
        let data = dir.path().join(format!("second{flag}"));
        assert!(!data.join("ca.pem").exists(), "{flag}: a CA was made");
        assert!(!data.join("admin.password").exists(), "{flag}");
    }
}

/// A join string that reaches another node, or nothing, says so and
/// names the address; the token is not spent.
#[test]
fn joining_the_wrong_node_or_none_names_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let other = Aggregator::start(&dir.path().join("other"), Backend::Sqlite, &[]);
    let root = suanli_tests::identity_root(&dir.path().join("root"), "m-wrong", "wrong", None);
    // The node's token, at the other node's address.
    let join = node.join_string(Some(other.quic));
    let out = try_join(&dir.path().join("agent"), &join, &root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("is not the one this join string pins")
            && stderr.contains(&other.quic.to_string()),
        "{stderr}"
    );
    // Nothing answers at the address.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let join = node.join_string(Some(silent.local_addr().unwrap()));
    let out = try_join(&dir.path().join("agent"), &join, &root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no answer from the node at")
            && stderr.contains(&silent.local_addr().unwrap().to_string())
            && stderr.contains("not used"),
        "{stderr}"
    );
    // Neither spent the token: the right address still joins with it.
    let join = join.replace(
        &silent.local_addr().unwrap().to_string(),
        &node.quic.to_string(),
    );
    let out = try_join(&dir.path().join("agent"), &join, &root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every tool the project ships or benchmarks with answers `--help`, and
/// so does each administrative group.
#[test]
fn every_tool_answers_help() {
    let tools: &[(&str, &[&str])] = &[
        ("suanli-agent", &[]),
        ("suanli-agent", &["join"]),
        ("suanli-aggregator", &[]),
        ("suanli-aggregator", &["serve"]),
        ("suanli-aggregator", &["replica", "init"]),
        ("suanli-aggregator", &["token", "create"]),
        ("suanli-loadgen", &[]),
        ("suanli-apibench", &[]),
        ("suanli-fedbench", &[]),
        ("suanli-filebench", &[]),
        ("suanli-paintbench", &[]),
    ];
    for (tool, args) in tools {
        let out = std::process::Command::new(suanli_tests::binary(tool))
            .args(*args)
            .arg("--help")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("Usage:"),
            "{tool} {args:?} --help: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
