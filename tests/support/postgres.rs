//! A fresh PostgreSQL database per test.
//!
//! The server is found at `BERTH_TEST_DATABASE_URL` (an admin URL; `make test` sets it, starting a
//! throwaway cluster when no server answers), else `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`. When none answers the test fails and says so:
//! tests that need PostgreSQL never skip.

use tokio_postgres::NoTls;

/// The admin URL of the PostgreSQL server tests use.
pub fn admin_url() -> String {
    std::env::var("BERTH_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

async fn admin() -> tokio_postgres::Client {
    let url = admin_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "these tests need PostgreSQL and none answers at {url} ({e}). \
             Run `make test`, which starts a throwaway cluster, or set BERTH_TEST_DATABASE_URL."
            )
        });
    tokio::spawn(connection);
    client
}

/// A database that exists for one test and is dropped after it.
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// A URL that connects to it.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    pub async fn create() -> Self {
        Self::create_with("").await
    }

    /// Creates an empty database whose default collation is the ICU locale `locale`.
    pub async fn create_with_icu(locale: &str) -> Self {
        let options = format!(" LOCALE_PROVIDER icu ICU_LOCALE '{locale}' TEMPLATE template0");
        Self::create_with(&options).await
    }

    async fn create_with(options: &str) -> Self {
        let name = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}{options}"))
            .await
            .expect("create test database");
        let url = with_database(&admin_url(), &name);
        Self { name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside or outside a runtime; a thread of its own works in both.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let _ = admin()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}
