//! The node's own secrets in its data directory: the node CA, the server
//! certificate, and the admin credential. Created on first start, mode 0600.
//!
//! ```text
//! DATA_DIR/
//!   ca.pem  ca.key          node CA (signs agents' client certificates)
//!   server.pem server.key   the aggregator's QUIC certificate, signed by the CA
//!   admin.token             bearer token for the HTTP API (admin role)
//!   reset.key               QUIC stateless-reset key, stable across restarts
//!   suanli.db               SQLite, unless --database-url points elsewhere
//! ```

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{
    CertificateDer, CertificateSigningRequestDer, PrivateKeyDer, pem::PemObject,
};
use suanli_link::{
    files,
    transport::{SERVER_NAME, fingerprint, to_hex},
};

/// Client certificates are short-lived enough to limit a stolen key, long
/// enough that hosts need no renewal machinery yet.
const CLIENT_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("PEM: {0}")]
    Pem(String),
    /// Writing a key or certificate; the error names the file.
    #[error("{0}")]
    Write(#[from] std::io::Error),
}

/// The files a node's identity is made of. Every replica of a node has
/// the same (copied from the first), and nothing else of its data
/// directory: `replica.id` is the name one replica holds the parent
/// link's lease by.
pub const FILES: [&str; 6] = [
    "ca.pem",
    "ca.key",
    "server.pem",
    "server.key",
    "admin.token",
    "reset.key",
];

/// The node's CA and server identity.
#[derive(Debug)]
pub struct NodeIdentity {
    pub ca_der: CertificateDer<'static>,
    pub server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    ca_issuer: Issuer<'static, KeyPair>,
    pub admin_token: String,
    /// Stateless-reset key, kept so a restarted aggregator can reset its
    /// predecessor's connections (see `transport::endpoint`).
    pub reset_key: Vec<u8>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A fresh random secret, hex.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system random source is available");
    to_hex(&bytes)
}

impl NodeIdentity {
    /// Loads the node's identity from `dir`, creating it on first start.
    /// Returns whether it was created.
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), NodeError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        let created = !Self::exists(dir);
        if created {
            Self::create(dir)?;
        }
        Ok((Self::load(dir)?, created))
    }

    /// Whether `dir` holds an identity (its CA certificate is written last).
    pub fn exists(dir: &Path) -> bool {
        dir.join("ca.pem").exists()
    }

    /// Loads the identity in `dir`, which must be complete.
    pub fn load(dir: &Path) -> Result<Self, NodeError> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read_to_string(&path).map_err(io_error(&path))
        };
        let ca_pem = read("ca.pem")?;
        let ca_key = KeyPair::from_pem(&read("ca.key")?)?;
        let ca_issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
        let server_key = KeyPair::from_pem(&read("server.key")?)?;
        Ok(Self {
            ca_der: pem_to_der(&ca_pem)?,
            server_der: pem_to_der(&read("server.pem")?)?,
            server_key_der: server_key.serialize_der(),
            ca_issuer,
            admin_token: read("admin.token")?.trim().to_owned(),
            reset_key: read("reset.key")?.trim().as_bytes().to_vec(),
        })
    }

    fn create(dir: &Path) -> Result<(), NodeError> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "Suanli node CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, &ca_key);

        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec![SERVER_NAME.to_owned()])?;
        server
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        server.not_before = rcgen::date_time_ymd(2024, 1, 1);
        server.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let server_cert = server.signed_by(&server_key, &issuer)?;

        files::write_private(&dir.join("ca.key"), ca_key.serialize_pem().as_bytes())?;
        files::write_private(
            &dir.join("server.key"),
            server_key.serialize_pem().as_bytes(),
        )?;
        files::write_private(&dir.join("server.pem"), server_cert.pem().as_bytes())?;
        files::write_private(&dir.join("admin.token"), random_secret().as_bytes())?;
        files::write_private(&dir.join("reset.key"), random_secret().as_bytes())?;
        // Last: its presence marks a complete identity.
        files::write_private(&dir.join("ca.pem"), ca_cert.pem().as_bytes())?;
        Ok(())
    }

    pub fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.server_key_der.clone().into())
    }

    /// The CA fingerprint agents pin when they join.
    pub fn ca_fingerprint(&self) -> String {
        to_hex(&fingerprint(&self.ca_der))
    }

    /// Checks that a CSR parses and is self-signed correctly, before a token
    /// is spent on it.
    pub fn check_csr(csr_der: &[u8]) -> Result<(), NodeError> {
        CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))?;
        Ok(())
    }

    /// Signs a host's client certificate for the public key in its CSR;
    /// everything else in the request is ignored.
    pub fn sign_client(
        &self,
        csr_der: &[u8],
        host_id: i64,
    ) -> Result<CertificateDer<'static>, NodeError> {
        self.sign_for(csr_der, format!("suanli-host-{host_id}"))
    }

    /// Signs an approved child node's link certificate (its CSR's key).
    pub fn sign_node(
        &self,
        csr_der: &[u8],
        child_id: i64,
    ) -> Result<CertificateDer<'static>, NodeError> {
        self.sign_for(csr_der, format!("suanli-node-{child_id}"))
    }

    fn sign_for(
        &self,
        csr_der: &[u8],
        common_name: String,
    ) -> Result<CertificateDer<'static>, NodeError> {
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(
            csr_der,
        ))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time_now();
        params.not_before = now - Duration::from_secs(3600);
        params.not_after = now + CLIENT_CERT_VALIDITY;
        let cert = params.signed_by(&csr.public_key, &self.ca_issuer)?;
        Ok(cert.der().clone())
    }
}

impl NodeIdentity {
    /// A certificate for HTTPS on the API and dashboard, signed by the node
    /// CA for `names` (host names or IP addresses). Made at each start and
    /// never stored; browsers accept at most 398 days.
    pub fn sign_web(
        &self,
        names: &[String],
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), NodeError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Suanli node dashboard");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time_now();
        params.not_before = now - Duration::from_secs(3600);
        params.not_after = now + Duration::from_secs(397 * 24 * 3600);
        let cert = params.signed_by(&key, &self.ca_issuer)?;
        Ok((
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        ))
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>, NodeError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| NodeError::Pem(e.to_string()))
}
