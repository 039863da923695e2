//! The table of sealed secrets that events refer to by id. Secrets live beside the log, never
//! inside it, so that deleting one really forgets it.

use uuid::Uuid;

use super::{Backend, StoreError};
use crate::secrets::Sealed;

impl Backend {
    /// Stores a sealed secret under `id`.
    pub async fn put_secret(&self, id: Uuid, sealed: &Sealed) -> Result<(), StoreError> {
        match self {
            Backend::Postgres(store) => {
                store
                    .pool()
                    .get()
                    .await?
                    .execute(
                        "INSERT INTO secrets (id, nonce, ciphertext) VALUES ($1, $2, $3)",
                        &[&id, &sealed.nonce, &sealed.ciphertext],
                    )
                    .await?;
            }
            Backend::Sqlite(store) => {
                let sealed = sealed.clone();
                store
                    .pool()
                    .get()
                    .await?
                    .interact(move |conn| {
                        conn.execute(
                            "INSERT INTO secrets (id, nonce, ciphertext, created_at) \
                             VALUES (?1, ?2, ?3, CAST(unixepoch('subsec') * 1000000 AS INTEGER))",
                            rusqlite::params![id.to_string(), sealed.nonce, sealed.ciphertext],
                        )
                    })
                    .await??;
            }
        }
        Ok(())
    }

    /// The sealed secret stored under `id`, if any.
    pub async fn get_secret(&self, id: Uuid) -> Result<Option<Sealed>, StoreError> {
        match self {
            Backend::Postgres(store) => Ok(store
                .pool()
                .get()
                .await?
                .query_opt(
                    "SELECT nonce, ciphertext FROM secrets WHERE id = $1",
                    &[&id],
                )
                .await?
                .map(|row| Sealed {
                    nonce: row.get(0),
                    ciphertext: row.get(1),
                })),
            Backend::Sqlite(store) => {
                use rusqlite::OptionalExtension;
                Ok(store
                    .pool()
                    .get()
                    .await?
                    .interact(move |conn| {
                        conn.query_row(
                            "SELECT nonce, ciphertext FROM secrets WHERE id = ?1",
                            [id.to_string()],
                            |row| {
                                Ok(Sealed {
                                    nonce: row.get(0)?,
                                    ciphertext: row.get(1)?,
                                })
                            },
                        )
                        .optional()
                    })
                    .await??)
            }
        }
    }

    /// Forgets the secret stored under `id`.
    pub async fn delete_secret(&self, id: Uuid) -> Result<(), StoreError> {
        match self {
            Backend::Postgres(store) => {
                store
                    .pool()
                    .get()
                    .await?
                    .execute("DELETE FROM secrets WHERE id = $1", &[&id])
                    .await?;
            }
            Backend::Sqlite(store) => {
                store
                    .pool()
                    .get()
                    .await?
                    .interact(move |conn| {
                        conn.execute("DELETE FROM secrets WHERE id = ?1", [id.to_string()])
                    })
                    .await??;
            }
        }
        Ok(())
    }
}
