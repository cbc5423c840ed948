//! The Suanli aggregator: a node's identifiers, selection and monitoring.
//!
//! So far it carries the node-side checks that need no server: validating a
//! resource identifier (算力标识) and a provider's unified social credit code
//! (统一社会信用代码). Ingest, registry, selection and the dashboard follow.

pub mod cli;
