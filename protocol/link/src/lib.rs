//! Suanli links: what carries the wire format between processes.
//!
//! - [`transport`]: QUIC and TLS 1.3 (configs, the pinned-CA verifier,
//!   endpoints, close codes, reading framed messages off a stream).
//! - [`spool`]: the bounded on-disk queue of frames not yet acknowledged.
//! - [`uplink`]: the pump between the IO-free `session::Uplink`, a spool and
//!   a connection.
//! - [`files`]: atomic, owner-only file writes for keys and secrets.
//!
//! `suanli-protocol` decides; this crate does the IO. The agent uses it to
//! reach its node, and a node will use it to reach its parent.

pub mod files;
pub mod spool;
pub mod transport;
pub mod uplink;
