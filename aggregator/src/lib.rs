//! The Suanli aggregator: a node's identifiers, selection and monitoring.
//!
//! - [`serve`]: the node process; wires the parts below to one shutdown signal.
//! - [`ingest`]: agents' QUIC connections: enrollment, samples in, acks out.
//! - [`registry`]: live connections and their link figures.
//! - [`identify`]: minting identifiers (算力标识) for hosts and GPUs.
//! - [`store`]: SQLite / PostgreSQL storage behind one interface.
//! - [`history`]: one-minute rollups of samples older than the raw window.
//! - [`node`]: the node's CA, server certificate and admin credential.
//! - [`catalog`]: every resource in memory with its host's latest sample.
//! - [`auth`]: roles, passwords, sessions, API keys.
//! - [`api`]: the HTTP API (routes, OpenAPI, service center, status).
//! - [`selection`]: a demand becomes ranked compute with network paths.
//! - [`metrics`]: Prometheus exposition.
//! - [`dashboard`]: the staff dashboard's embedded assets.
//! - [`config`], [`cli`]: configuration and command line; `main.rs` only calls [`cli::main`].

pub mod api;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod history;
pub mod https;
pub mod identify;
pub mod ingest;
pub mod metrics;
pub mod node;
pub mod registry;
pub mod replica;
pub mod selection;
pub mod serve;
pub mod store;
