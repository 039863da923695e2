//! Liveness and readiness probes: `/healthz` says the process is alive, `/readyz` says the
//! database answers. They are plain routes, outside the versioned API.

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use crate::event_store::SharedEventStore;
use crate::event_store::error_chain;

/// `GET /healthz`: 200 while the process runs.
#[handler]
pub fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "alive" }))
}

/// `GET /readyz`: 200 when the database answers and its schema is in place, else 503 naming why.
#[handler]
pub async fn readyz(store: Data<&SharedEventStore>) -> Response {
    match store.ping().await {
        Ok(()) => Json(json!({ "status": "ready", "database": store.backend() })).into_response(),
        Err(e) => {
            let reason = error_chain(&e);
            tracing::warn!(database = store.backend(), error = %reason, "not ready");
            Json(json!({ "status": "unavailable", "database": store.backend(), "reason": reason }))
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .with_header("Retry-After", "5")
                .into_response()
        }
    }
}
