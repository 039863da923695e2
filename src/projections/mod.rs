//! Read models derived from the event log, one file per model.
//!
//! Each projection implements [`crate::event_store::Projection`] for both backends and offers
//! the queries that read it. Projections may depend on `event_store` and the domain's value
//! types; nothing here decides business rules.

pub mod charts;
pub mod inventory;
pub mod repositories;
pub mod resource_queries;
pub mod resources;
pub mod sql;
pub mod streams;

use std::sync::Arc;

use crate::event_store::Projections;

/// Every projection the service keeps, in the order they are applied.
pub fn all() -> Projections {
    use crate::domain::{registry::Registry, upstream_proxy::UpstreamProxy};
    Arc::new([
        Arc::new(streams::StreamSummaries),
        Arc::new(resources::ResourceProjection::<Registry>::new()),
        Arc::new(resources::ResourceProjection::<UpstreamProxy>::new()),
        Arc::new(repositories::Repositories),
    ])
}
