//! Berth: an artifact registry for Docker (OCI) and Helm, with upstream pull-through proxies and
//! an event-sourced control plane.
//!
//! Crate map (dependencies point inward):
//! - [`cli`] and [`config`]: flags and environment into typed configuration.
//! - [`startup`]: binds the listener, opens the store, mounts the routes; [`health`] probes.
//!   [`idle`] closes connections that stay silent; [`body`] reads request bodies to a limit.
//! - [`api`]: the REST control plane (poem-openapi); [`auth`]: bearer JWTs and scopes;
//!   [`console`]: the web console, a browser app on that API.
//! - [`registry`]: the data plane: the OCI Distribution API under `/v2` and the classic Helm
//!   chart repository under `/helm`; [`storage`]: blobs and uploads.
//! - [`proxy`]: pull-through from upstream proxies (Docker and Helm remotes).
//! - [`app`]: use cases (load, decide, append); [`domain`]: value types and aggregates, pure.
//! - [`secrets`]: sealing upstream passwords at rest.
//! - [`event_store`]: the append-only log on PostgreSQL or SQLite, with inline projections.
//! - [`projections`]: read models derived from the log.
//! - [`fsck`]: consistency checks of storage, read models and the log (`berth fsck`).
//! - [`telemetry`]: structured logs.

pub mod api;
pub mod app;
pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod event_store;
pub mod fsck;
pub mod health;
pub mod idle;
pub mod projections;
pub mod proxy;
pub mod registry;
pub mod request_id;
pub mod secrets;
pub mod startup;
pub mod storage;
pub mod telemetry;
