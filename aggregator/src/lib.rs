//! The Suanli aggregator: a node's identifiers, selection and monitoring.
//!
//! Modules sit in layers, and a module uses only its own layer or lower
//! ones (ARCHITECTURE.md has the table; `tests/tests/tidy.rs` checks it):
//!
//! 1. core, pure: [`i18n`], [`check`], [`accel`], [`fleet`], [`price`], [`identify`],
//!    [`history`], [`selection`], [`health`], [`alerting`], [`hierarchy`];
//! 2. state and storage: [`store`], [`catalog`], [`registry`], [`links`],
//!    [`live`], [`routing`], [`telemetry`], [`identity`], [`auth`];
//! 3. the node context and its tasks: [`node`];
//! 4. operations, each written once: [`service`];
//! 5. edges, which never use each other: [`ingest`] (agents), [`api`]
//!    (HTTP, dashboard, metrics), [`replica`] (the other replicas),
//!    [`notify`] (alert receivers), [`parent`] and [`children`] (the node
//!    links up and down the hierarchy);
//! 6. the process: [`run`], [`local_agent`], [`cli`], [`config`];
//!    `main.rs` only calls [`cli::main`].

pub mod accel;
pub mod alerting;
pub mod api;
pub mod auth;
pub mod capacity;
pub mod catalog;
pub mod check;
pub mod children;
pub mod cli;
pub mod config;
pub mod fleet;
pub mod health;
pub mod hierarchy;
pub mod history;
pub mod i18n;
pub mod identify;
pub mod identity;
pub mod ingest;
pub mod links;
pub mod live;
pub mod local_agent;
pub mod market;
pub mod node;
pub mod notify;
pub mod parent;
pub mod price;
pub mod registry;
pub mod replica;
pub mod routing;
pub mod run;
pub mod selection;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod trends;
