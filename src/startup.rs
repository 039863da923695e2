//! Builds the application: opens the event store, binds the listener and mounts the routes.
//! Tests build it with port 0 and read the bound address back.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use poem::listener::TcpAcceptor;
use poem::middleware::Tracing;
use poem::{EndpointExt, Route, Server, get};

use std::sync::Arc;

use crate::app::App;
use crate::auth::Authenticator;
use crate::config::ServeConfig;
use crate::event_store::{Backend, SharedEventStore};
use crate::idle::IdleAcceptor;
use crate::proxy::PullThrough;
use crate::registry::{self, ReadCache, RegistryState};
use crate::secrets::SecretBox;
use crate::storage::{ABANDONED_UPLOAD_AGE, DirLock, FsBlobStore};
use crate::{api, console, health, projections};

/// A built, bound, not yet running server.
pub struct Application {
    listener: tokio::net::TcpListener,
    address: SocketAddr,
    backend: Backend,
    app: App,
    authenticator: Arc<Authenticator>,
    registry: Arc<RegistryState>,
    idle_timeout: std::time::Duration,
    /// Held while serving, so `berth fsck --repair` cannot run beside this server.
    lock: DirLock,
}

impl Application {
    /// Opens the store and binds the listen address.
    pub async fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        let authenticator = Arc::new(
            Authenticator::load(&config.auth, &config.data_dir).context("loading token keys")?,
        );
        let secrets = SecretBox::load(
            config.secret_key.as_ref().map(|k| k.expose().as_str()),
            &config.data_dir,
        )
        .context("loading the secret key")?;
        let backend = Backend::start(&config.database, projections::all())
            .await
            .with_context(|| format!("opening {}", config.database.describe()))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
        let app = App::new(backend.clone(), secrets);
        let blobs = FsBlobStore::new(&config.data_dir).context("opening blob storage")?;
        let lock = blobs
            .lock_shared()
            .context("a repair (berth fsck --repair) is running on this data directory")?;
        let registry = Arc::new(RegistryState {
            app: app.clone(),
            blobs: blobs.clone(),
            authenticator: authenticator.clone(),
            base_url: config.base_url.clone(),
            service: "berth".to_owned(),
            cache: ReadCache::new(config.manifest_cache_bytes),
            proxy: PullThrough::new(
                app.clone(),
                blobs.clone(),
                &config.docker_hub_url,
                config.manifest_cache_bytes,
            ),
            mirror: config.mirror.clone(),
        });
        registry.cache.spawn_follower(app.clone());
        spawn_sweeper(blobs);
        Ok(Self {
            listener,
            address,
            app,
            backend,
            authenticator,
            registry,
            idle_timeout: config.idle_timeout,
            lock,
        })
    }

    /// The address the server is bound to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The backend the server runs on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let lock = self.lock;
        let store: SharedEventStore = self.backend.store();
        let app = Route::new()
            .at("/healthz", get(health::healthz))
            .at("/readyz", get(health::readyz))
            .at("/v2", registry::endpoint(self.registry.clone()))
            .at("/v2/", registry::endpoint(self.registry.clone()))
            .at("/v2/*rest", registry::endpoint(self.registry.clone()))
            .at(
                "/helm/*rest",
                registry::helm::endpoint(self.registry.clone()),
            )
            .nest_no_strip(
                "/api",
                api::routes(self.app, self.authenticator, self.registry),
            )
            .at("/", console::page())
            .at("/console/:file", console::files())
            .data(store)
            .around(crate::body::drain_unread)
            .with(Tracing);
        let acceptor =
            IdleAcceptor::new(TcpAcceptor::from_tokio(self.listener)?, self.idle_timeout);
        let served = Server::new_with_acceptor(acceptor)
            .name("berth")
            .run_with_graceful_shutdown(app, shutdown, Some(std::time::Duration::from_secs(10)))
            .await;
        // The directory is in use until the last request in flight has finished.
        drop(lock);
        served
    }
}

/// How often abandoned uploads and leftover temporary files are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Sweeps abandoned uploads and temporary files left by a crash: at start, then hourly.
fn spawn_sweeper(blobs: FsBlobStore) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            every.tick().await;
            match blobs.sweep(ABANDONED_UPLOAD_AGE).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "swept abandoned uploads"),
                Err(e) => tracing::warn!(error = %e, "sweeping abandoned uploads failed"),
            }
        }
    });
}

/// Takes over SIGINT and SIGTERM at once, and completes when either arrives. Installed before
/// the server says it listens, so that a signal sent as soon as it does stops it gracefully.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}
