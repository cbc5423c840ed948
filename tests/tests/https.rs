//! HTTPS on the API and dashboard: a node listening beyond loopback serves
//! TLS 1.3 with a certificate its CA signs, or with the operator's; plain
//! HTTP there is refused; bad certificate settings stop the node with a
//! reason.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use rustls::pki_types::{CertificateDer, pem::PemObject};
use suanli_tests::{Aggregator, Backend, Request, binary};

fn ca_of(dir: &std::path::Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap()
}

#[test]
fn beyond_loopback_the_node_speaks_https_signed_by_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let node = Aggregator::start(
        &data,
        Backend::Sqlite,
        &[
            "--http-listen",
            "0.0.0.0:0",
            "--advertise",
            "node.example.cn:7443",
        ],
    );
    assert!(node.https, "a non-loopback listener is HTTPS by default");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], node.http.port()));
    let ca = ca_of(&data);

    // The certificate names the advertised host and loopback, under the node CA.
    for name in ["node.example.cn", "localhost", "127.0.0.1"] {
        let r = Request::new("GET", "/api/v1/openapi.json")
            .send_tls(addr, name, std::slice::from_ref(&ca))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.status, 200, "{name}");
    }
    // Signing in works, and the cookie stays Secure.
    let password = node.admin_password();
    let r = Request::new("POST", "/api/v1/session")
        .json(&serde_json::json!({"login": "admin", "password": password}).to_string())
        .send_tls(addr, "localhost", std::slice::from_ref(&ca))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Audited from the real peer address, through TLS.
    let r = Request::new("GET", "/api/v1/audit")
        .bearer(&node.admin_token())
        .send_tls(addr, "localhost", std::slice::from_ref(&ca))
        .unwrap();
    assert_eq!(r.json()["entries"][0]["address"], "127.0.0.1", "{}", r.body);

    // A name the certificate lacks, or a CA the client does not trust, fails.
    let wrong =
        Request::new("GET", "/").send_tls(addr, "elsewhere.example", std::slice::from_ref(&ca));
    assert!(wrong.unwrap_err().contains("certificate"), "wrong name");
    let other_ca = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let untrusted = Request::new("GET", "/").send_tls(addr, "localhost", &[other_ca.der().clone()]);
    assert!(untrusted.is_err(), "an unknown CA is refused");
    // Plain HTTP gets no answer, and the node goes on serving.
    assert_eq!(
        Request::new("GET", "/api/v1/openapi.json")
            .send(addr)
            .status,
        0
    );
    let r = Request::new("GET", "/api/v1/openapi.json")
        .send_tls(addr, "localhost", &[ca])
        .unwrap();
    assert_eq!(r.status, 200);
}

/// An operator's certificate chain and key, as its own PKI would issue them.
fn operator_pki(dir: &std::path::Path) -> (CertificateDer<'static>, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["suanli.example.cn".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let cert_path = dir.join("web.pem");
    let key_path = dir.join("web.key");
    std::fs::write(&cert_path, cert.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (
        ca_cert.der().clone(),
        cert_path.display().to_string(),
        key_path.display().to_string(),
    )
}

#[test]
fn the_operators_certificate_is_served_when_given() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cert, key) = operator_pki(dir.path());
    let node = Aggregator::start(
        &dir.path().join("node"),
        Backend::Sqlite,
        &["--http-tls-cert", &cert, "--http-tls-key", &key],
    );
    assert!(
        node.https,
        "even on loopback, a given certificate means HTTPS"
    );
    let r = Request::new("GET", "/api/v1/openapi.json")
        .send_tls(node.http, "suanli.example.cn", &[root])
        .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn bad_certificate_settings_stop_the_node_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, _) = operator_pki(dir.path());
    let other_key = dir.path().join("other.key");
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let other_key = other_key.display().to_string();
    let not_pem = not_pem.display().to_string();
    for (args, reason) in [
        (vec!["--http-tls-cert", &cert], "give both or neither"),
        (
            vec![
                "--http-tls-cert",
                &cert,
                "--http-tls-key",
                "/nonexistent.key",
            ],
            "is not a readable file",
        ),
        (
            vec!["--http-tls-cert", &cert, "--http-tls-key", &other_key],
            "do not go together",
        ),
        (
            vec!["--http-tls-cert", &not_pem, "--http-tls-key", &other_key],
            "no PEM certificate",
        ),
        (
            vec![
                "--http-tls-cert",
                &cert,
                "--http-tls-key",
                &other_key,
                "--http-plaintext",
            ],
            "contradicts",
        ),
    ] {
        let out = Command::new(binary("suanli-aggregator"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("node"))
            .args([
                "--quic-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}
