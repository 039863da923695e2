//! Audit use cases: the log in global order, one resource's history with what each change
//! changed, and a resource as it stood at a time. Every answer passes through
//! [`redact_secrets`]: secret references never leave the server.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{App, AppError, fold_stored, stream_of};
use crate::domain::ResourceName;
use crate::domain::stored::from_stored;
use crate::event_store::{EventFilter, Position, RecordedEvent, StoreError};
use crate::projections::resources::{Document, Stored};

/// One field a change changed.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The field, e.g. `description` or `remote`.
    pub field: String,
    /// Its value before (null when absent).
    pub before: Value,
    /// Its value after (null when absent).
    pub after: Value,
}

/// One change in a resource's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The event, with secrets redacted from its payload.
    pub event: RecordedEvent,
    /// The fields it changed.
    pub changes: Vec<FieldChange>,
}

/// Replaces every `secret_id` with `password_set: true`, recursively.
pub fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("secret_id").is_some() {
                map.insert("password_set".into(), Value::Bool(true));
            }
            map.values_mut().for_each(redact_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

fn redacted(mut event: RecordedEvent) -> RecordedEvent {
    redact_secrets(&mut event.payload);
    event
}

fn state_fields<D: Document>(state: Option<&D>) -> Map<String, Value> {
    let Some(state) = state else {
        return Map::new();
    };
    let mut value = serde_json::to_value(state).expect("documents serialise");
    redact_secrets(&mut value);
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn diff(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<FieldChange> {
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter_map(|field| {
            let old = before.get(field).cloned().unwrap_or(Value::Null);
            let new = after.get(field).cloned().unwrap_or(Value::Null);
            (old != new).then(|| FieldChange {
                field: field.clone(),
                before: old,
                after: new,
            })
        })
        .collect()
}

impl App {
    /// At most `limit` events after `after` that pass `filter`, secrets redacted.
    pub async fn events(
        &self,
        after: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        let events = self.backend.store().read_all(after, filter, limit).await?;
        Ok(events.into_iter().map(redacted).collect())
    }

    /// The changes to the resource named `name` with a version above `after_version`, at most
    /// `limit`, through every life of the name; `None` when the name never existed.
    pub async fn history<D: Document>(
        &self,
        name: &ResourceName,
        after_version: u64,
        limit: usize,
    ) -> Result<Option<Vec<HistoryEntry>>, AppError> {
        let events = self
            .backend
            .store()
            .read_stream(&stream_of::<D>(name), None)
            .await?;
        if events.is_empty() {
            return Ok(None);
        }
        let mut state: Option<D> = None;
        let mut entries = Vec::new();
        for event in events {
            let domain: D::Event =
                from_stored(&event.event_type, event.schema_version, &event.payload)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let before = state_fields(state.as_ref());
            state = D::evolve(state, &domain);
            if event.stream_version <= after_version {
                continue;
            }
            if entries.len() == limit {
                break;
            }
            let changes = diff(&before, &state_fields(state.as_ref()));
            entries.push(HistoryEntry {
                event: redacted(event),
                changes,
            });
        }
        Ok(Some(entries))
    }

    /// The resource named `name` as it stood at `time`, if it existed then.
    pub async fn as_of<D: Document>(
        &self,
        name: &ResourceName,
        time: OffsetDateTime,
    ) -> Result<Option<Stored<D>>, AppError> {
        let events = self
            .backend
            .store()
            .read_stream(&stream_of::<D>(name), Some(time))
            .await?;
        fold_stored::<D>(&events)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_references_are_replaced_wherever_they_are() {
        let mut value = json!({"auth": {"type": "USERNAME_PASSWORD", "username": "u",
            "secret_id": "0190"}, "list": [{"secret_id": 1}]});
        redact_secrets(&mut value);
        assert_eq!(
            value,
            json!({"auth": {"type": "USERNAME_PASSWORD", "username": "u", "password_set": true},
                "list": [{"password_set": true}]})
        );
    }

    #[test]
    fn a_diff_names_each_changed_field_with_both_values() {
        let before = json!({"a": 1, "b": [1], "gone": true});
        let after = json!({"a": 1, "b": [2], "new": "x"});
        let changes = diff(before.as_object().unwrap(), after.as_object().unwrap());
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["b", "gone", "new"]);
        assert_eq!(changes[1].after, Value::Null);
    }
}
