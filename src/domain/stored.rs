//! The bridge between domain events and the log's stored form: a stable type name, a schema
//! version and a JSON payload. Domain event enums are serde-tagged with their stored type name;
//! the payload is the variant's content.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Why a stored event could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read stored event {event_type} v{schema_version}: {reason}")]
pub struct StoredEventError {
    /// The stored type name.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: u32,
    /// What is wrong.
    pub reason: String,
}

/// Every domain event is stored at this schema version until its shape changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Splits an event (an enum tagged `type`, content `data`) into its stored type name and payload.
pub fn to_stored<E: Serialize>(event: &E) -> (String, Value) {
    let value = serde_json::to_value(event).expect("domain events serialise");
    let event_type = value["type"].as_str().expect("tagged enum").to_owned();
    let payload = value.get("data").cloned().unwrap_or_else(|| json!({}));
    (event_type, payload)
}

/// Reads an event back from its stored type name, schema version and payload.
pub fn from_stored<E: DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    payload: &Value,
) -> Result<E, StoredEventError> {
    let error = |reason: String| StoredEventError {
        event_type: event_type.to_owned(),
        schema_version,
        reason,
    };
    if schema_version != SCHEMA_VERSION {
        return Err(error("unknown schema version".into()));
    }
    serde_json::from_value(json!({ "type": event_type, "data": payload }))
        .map_err(|e| error(e.to_string()))
}
