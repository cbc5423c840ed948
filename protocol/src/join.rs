//! The join string a node hands to a host's operator:
//! `suanli://ADDRESS/?ca=SHA256HEX&token=SECRET`.
//!
//! It carries where the aggregator listens (QUIC, UDP), the SHA-256
//! fingerprint of the node CA (so the agent trusts the right aggregator before
//! it has a certificate of its own), and the one-time enrollment secret.

use std::{fmt, str::FromStr};

#[derive(Clone, PartialEq, Eq)]
pub struct JoinString {
    /// `host:port` of the aggregator's QUIC listener.
    pub address: String,
    pub ca_fingerprint: [u8; 32],
    pub token: String,
}

impl fmt::Debug for JoinString {
    // The token is a secret: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinString")
            .field("address", &self.address)
            .field("ca_fingerprint", &hex(&self.ca_fingerprint))
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinStringError {
    #[error("a join string starts with suanli://")]
    Scheme,
    #[error("the join string has no aggregator address")]
    Address,
    #[error("the join string's ca= is not a 64-digit hex SHA-256 fingerprint")]
    Fingerprint,
    #[error("the join string has no token=, or one with spaces or control characters")]
    Token,
    #[error("unknown join string parameter {0:?}")]
    Unknown(String),
}

impl fmt::Display for JoinString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "suanli://{}/?ca={}&token={}",
            self.address,
            hex(&self.ca_fingerprint),
            self.token
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FromStr for JoinString {
    type Err = JoinStringError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text
            .trim()
            .strip_prefix("suanli://")
            .ok_or(JoinStringError::Scheme)?;
        let (address, query) = rest.split_once('/').unwrap_or((rest, ""));
        // Printable ASCII only: a join string is pasted into shells and
        // configs, and what it holds must print back as it was read.
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_graphic()) {
            return Err(JoinStringError::Address);
        }
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut ca = None;
        let mut token = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("ca", v)) => ca = Some(v),
                Some(("token", v)) => token = Some(v),
                _ => return Err(JoinStringError::Unknown(pair.to_owned())),
            }
        }
        let ca = ca.ok_or(JoinStringError::Fingerprint)?;
        if ca.len() != 64 {
            return Err(JoinStringError::Fingerprint);
        }
        let mut ca_fingerprint = [0u8; 32];
        for (i, byte) in ca_fingerprint.iter_mut().enumerate() {
            *byte = ca
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(JoinStringError::Fingerprint)?;
        }
        let token = token
            .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic()))
            .ok_or(JoinStringError::Token)?;
        Ok(Self {
            address: address.to_owned(),
            ca_fingerprint,
            token: token.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_hides_the_token() {
        let join = JoinString {
            address: "127.0.0.1:7443".into(),
            ca_fingerprint: [0xab; 32],
            token: "s3cret".into(),
        };
        let text = join.to_string();
        assert_eq!(text.parse::<JoinString>().unwrap(), join);
        assert!(!format!("{join:?}").contains("s3cret"));
    }

    #[test]
    fn spaces_and_control_characters_are_refused() {
        // Found by the `identifiers` fuzz target: a token ending in a
        // newline parsed, then printed to something that parsed differently.
        let ca = "82ae510e8d730b73cf5d63865d61a10dcb19ba8cff940286afc29c86cbfd92e9";
        for text in [
            format!("suanli://127.0.0.1:7443/?ca={ca}&token=Zm\0\0\0\n&"),
            format!("suanli://127.0.0.1:7443/?ca={ca}&token=a b"),
            format!("suanli://host name:7443/?ca={ca}&token=t"),
        ] {
            assert!(text.parse::<JoinString>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            "http://x".parse::<JoinString>(),
            Err(JoinStringError::Scheme)
        );
        assert_eq!(
            "suanli://a:1/?ca=12&token=t".parse::<JoinString>(),
            Err(JoinStringError::Fingerprint)
        );
        let ca = "ab".repeat(32);
        assert_eq!(
            format!("suanli://a:1/?ca={ca}").parse::<JoinString>(),
            Err(JoinStringError::Token)
        );
        assert_eq!(
            format!("suanli://a:1/?ca={ca}&token=t&x=1").parse::<JoinString>(),
            Err(JoinStringError::Unknown("x=1".into()))
        );
    }
}
