//! The Suanli wire format and the pure logic both ends of it share.
//!
//! - [`proto`]: generated protobuf types (`suanli.v1`) with canonical proto3 JSON.
//!   They live at the edges only: business logic works on [`model`].
//! - [`model`]: the domain types collectors fill and the aggregator reasons about,
//!   with conversions to and from the wire types.
//! - [`join`]: the join string that enrolls a host.
//! - [`identifier`]: the Suanli resource identifier (算力标识) codec.
//! - [`stream`]: the agent ↔ aggregator messages and their framing.
//! - [`node`]: the child node ↔ parent node messages, on the same framing.
//! - [`session`]: the IO-free state machines of the stream.
//! - [`uscc`]: validation of the unified social credit code (统一社会信用代码).
//!
//! This crate does no IO and reads no clock; the transport, the spool and
//! the pump that moves bytes between them are in `suanli-link`.

pub mod identifier;
pub mod join;
pub mod model;
pub mod node;
pub mod session;
pub mod stream;
pub mod uscc;

/// Generated wire types. Field presence follows the `.proto`: an `optional`
/// scalar is `Option<T>`, and absent means "could not be read".
#[allow(clippy::all, missing_debug_implementations, rust_2018_idioms)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/suanli.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/suanli.v1.serde.rs"));
}
