//! Queries on the `registries` and `upstream_proxies` read models.

use super::resources::{Document, Stored};
use super::sql::{self, Value};
use crate::domain::registry::{Registry, UpstreamCatalog};
use crate::domain::upstream_proxy::UpstreamProxy;
use crate::domain::{PackageType, ResourceKind, ResourceName};
use crate::event_store::{Backend, StoreError};

/// How a list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// By name, A to Z.
    #[default]
    Name,
    /// Oldest first (then by name).
    CreatedAt,
}

/// Which resources a list returns, and which page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this package type.
    pub package_type: Option<PackageType>,
    /// Only resources carrying this label.
    pub label: Option<String>,
    /// Only names containing this text.
    pub search: Option<String>,
    /// The order.
    pub sort: SortKey,
    /// Newest or last first.
    pub descending: bool,
    /// How many matching resources to skip.
    pub offset: u64,
    /// How many to return at most.
    pub limit: u64,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The offset of the next page, if there is one.
    pub next_offset: Option<u64>,
}

/// The columns [`select`] reads; the state is cast to text so both backends return it alike.
const COLUMNS: &str = "CAST(state AS TEXT), version, created_at, updated_at";

fn list_sql(table: &str, query: &ListQuery, postgres: bool) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let mut sql = format!("SELECT {COLUMNS} FROM {table} WHERE 1 = 1");
    if let Some(package_type) = query.package_type {
        params.push(Value::Text(package_type.as_str().to_owned()));
        sql.push_str(&format!(" AND package_type = ${}", params.len()));
    }
    if let Some(label) = &query.label {
        params.push(Value::Text(label.clone()));
        let n = format!("${}", params.len());
        sql.push_str(&if postgres {
            format!(" AND labels ? {n}")
        } else {
            format!(" AND EXISTS (SELECT 1 FROM json_each(labels) WHERE value = {n})")
        });
    }
    if let Some(search) = &query.search {
        params.push(Value::Text(search.clone()));
        let n = format!("${}", params.len());
        sql.push_str(&if postgres {
            format!(" AND strpos(name, {n}) > 0")
        } else {
            format!(" AND instr(name, {n}) > 0")
        });
    }
    let direction = if query.descending { "DESC" } else { "ASC" };
    sql.push_str(&match query.sort {
        SortKey::Name => format!(" ORDER BY name {direction}"),
        SortKey::CreatedAt => format!(" ORDER BY created_at {direction}, name {direction}"),
    });
    // One more than asked, to know whether another page follows.
    params.push(Value::Int(query.limit as i64 + 1));
    sql.push_str(&format!(" LIMIT ${}", params.len()));
    params.push(Value::Int(query.offset as i64));
    sql.push_str(&format!(" OFFSET ${}", params.len()));
    (sql, params)
}

async fn select<D: Document>(
    backend: &Backend,
    sql: String,
    params: Vec<Value>,
) -> Result<Vec<Stored<D>>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("{}: bad {what}", D::TABLE));
    sql::query(backend, &sql, params)
        .await?
        .iter()
        .map(|row| {
            let state = row[0].text().ok_or_else(|| corrupt("state"))?;
            Ok(Stored {
                doc: serde_json::from_str(state)
                    .map_err(|e| StoreError::Corrupt(format!("{} state: {e}", D::TABLE)))?,
                version: row[1].int().ok_or_else(|| corrupt("version"))? as u64,
                created_at: row[2].time().ok_or_else(|| corrupt("created_at"))?,
                updated_at: row[3].time().ok_or_else(|| corrupt("updated_at"))?,
            })
        })
        .collect()
}

/// One page of resources of kind `D`.
pub async fn list<D: Document>(
    backend: &Backend,
    query: &ListQuery,
) -> Result<Page<Stored<D>>, StoreError> {
    let postgres = matches!(backend, Backend::Postgres(_));
    let (sql, params) = list_sql(D::TABLE, query, postgres);
    let mut items = select::<D>(backend, sql, params).await?;
    let next_offset = if items.len() as u64 > query.limit {
        items.truncate(query.limit as usize);
        Some(query.offset + query.limit)
    } else {
        None
    };
    Ok(Page { items, next_offset })
}

/// The live resource of kind `D` with this name, if there is one.
pub async fn get<D: Document>(
    backend: &Backend,
    name: &ResourceName,
) -> Result<Option<Stored<D>>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM {} WHERE name = $1", D::TABLE);
    let rows = select::<D>(backend, sql, vec![Value::Text(name.to_string())]).await?;
    Ok(rows.into_iter().next())
}

/// Which kind of resource holds `name`, if any.
pub async fn holder_of(
    backend: &Backend,
    name: &ResourceName,
) -> Result<Option<ResourceKind>, StoreError> {
    if get::<Registry>(backend, name).await?.is_some() {
        return Ok(Some(ResourceKind::Registry));
    }
    if get::<UpstreamProxy>(backend, name).await?.is_some() {
        return Ok(Some(ResourceKind::UpstreamProxy));
    }
    Ok(None)
}

/// Every upstream proxy's key and package type.
pub async fn proxy_catalog(backend: &Backend) -> Result<UpstreamCatalog, StoreError> {
    let query = ListQuery {
        limit: u32::MAX as u64,
        ..Default::default()
    };
    Ok(list::<UpstreamProxy>(backend, &query)
        .await?
        .items
        .into_iter()
        .map(|p| (p.doc.key, p.doc.package_type))
        .collect())
}

/// The registries that list `key` among their upstreams, by name.
pub async fn registries_using(
    backend: &Backend,
    key: &ResourceName,
) -> Result<Vec<ResourceName>, StoreError> {
    let query = ListQuery {
        limit: u32::MAX as u64,
        ..Default::default()
    };
    Ok(list::<Registry>(backend, &query)
        .await?
        .items
        .into_iter()
        .filter(|r| r.doc.upstreams.contains(key))
        .map(|r| r.doc.name)
        .collect())
}
