//! A small bridge for read-model queries written once for both backends: statements use
//! PostgreSQL's `$n` placeholders (SQLite reads the same numbers as `?n`), parameters and
//! results are plain values.

use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};

use crate::event_store::sqlite::from_micros;
use crate::event_store::{Backend, StoreError};

/// A parameter or result value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// A time (stored as `timestamptz` on PostgreSQL, microseconds on SQLite).
    Time(OffsetDateTime),
}

impl Value {
    /// The text, if this is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A time, from either representation.
    pub fn time(&self) -> Option<OffsetDateTime> {
        match self {
            Self::Time(t) => Some(*t),
            Self::Int(micros) => from_micros(*micros).ok(),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<Option<String>> for Value {
    fn from(s: Option<String>) -> Self {
        s.map_or(Self::Null, Self::Text)
    }
}

/// The values as PostgreSQL parameters.
pub fn postgres_params(params: Vec<Value>) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .into_iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Value::Null => Box::new(Option::<String>::None),
                Value::Int(i) => Box::new(i),
                Value::Text(t) => Box::new(t),
                Value::Time(t) => Box::new(t),
            }
        })
        .collect()
}

/// The values as SQLite parameters.
pub fn sqlite_params(params: Vec<Value>) -> Vec<rusqlite::types::Value> {
    params
        .into_iter()
        .map(|p| match p {
            Value::Null => rusqlite::types::Value::Null,
            Value::Int(i) => rusqlite::types::Value::Integer(i),
            Value::Text(t) => rusqlite::types::Value::Text(t),
            Value::Time(t) => {
                rusqlite::types::Value::Integer(crate::event_store::sqlite::micros(t))
            }
        })
        .collect()
}

/// Runs a query and returns its rows as values.
pub async fn query(
    backend: &Backend,
    sql: &str,
    params: Vec<Value>,
) -> Result<Vec<Vec<Value>>, StoreError> {
    match backend {
        Backend::Postgres(store) => {
            let boxed = postgres_params(params);
            let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref() as _).collect();
            let client = store.pool().get().await?;
            let statement = client.prepare_cached(sql).await?;
            let rows = client.query(&statement, &refs).await?;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| {
                            let ty = row.columns()[i].type_();
                            let value = if *ty == Type::INT8 {
                                row.try_get::<_, Option<i64>>(i)?.map(Value::Int)
                            } else if *ty == Type::INT4 {
                                row.try_get::<_, Option<i32>>(i)?
                                    .map(|v| Value::Int(v.into()))
                            } else if *ty == Type::TIMESTAMPTZ {
                                row.try_get::<_, Option<OffsetDateTime>>(i)?
                                    .map(Value::Time)
                            } else {
                                row.try_get::<_, Option<String>>(i)?.map(Value::Text)
                            };
                            Ok(value.unwrap_or(Value::Null))
                        })
                        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                        .map_err(StoreError::from)
                })
                .collect()
        }
        Backend::Sqlite(store) => {
            let sql = sql.replace('$', "?");
            let values = sqlite_params(params);
            let conn = store.pool().get().await?;
            Ok(conn
                .interact(move |conn| -> rusqlite::Result<Vec<Vec<Value>>> {
                    let mut statement = conn.prepare_cached(&sql)?;
                    let width = statement.column_count();
                    let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
                        (0..width)
                            .map(|i| {
                                Ok(match row.get::<_, rusqlite::types::Value>(i)? {
                                    rusqlite::types::Value::Integer(v) => Value::Int(v),
                                    rusqlite::types::Value::Text(t) => Value::Text(t),
                                    rusqlite::types::Value::Real(r) => Value::Int(r as i64),
                                    _ => Value::Null,
                                })
                            })
                            .collect()
                    })?;
                    rows.collect()
                })
                .await??)
        }
    }
}
