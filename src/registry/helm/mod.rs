//! The classic Helm chart repository under `/helm/<registry>`: `index.yaml`, chart archives
//! and provenance files, and the ChartMuseum-compatible API for uploading, listing and deleting
//! charts. Charts live where `helm push` puts them (one OCI manifest per version in
//! `<registry>/<chart>`), so a chart uploaded here is pullable with `helm pull oci://` and a
//! chart pushed by OCI appears in `index.yaml`.

mod charts;
mod error;
mod index;
mod upload;

use std::sync::Arc;

use poem::http::Method;
use poem::web::Data;
use poem::{Body, EndpointExt, IntoResponse, Request, Response, handler};

use crate::app::AppError;
use crate::auth::Principal;
use crate::domain::registry::{Registry, RegistryError as RegistryRefusal};
use crate::domain::upstream_proxy::{UpstreamProxy, UpstreamProxyError};
use crate::domain::{PackageType, ResourceName};
use crate::projections::resources::Stored;
use crate::proxy::Upstream;
use crate::registry::RegistryState;
use crate::registry::access::{self, Action};
use crate::registry::errcode::ErrorCode;
pub use error::HelmError;
use error::HelmResult;

/// The `/helm` routes, to mount at `/helm/*rest`.
pub fn endpoint(state: Arc<RegistryState>) -> poem::endpoint::BoxEndpoint<'static> {
    dispatch
        .data(state)
        .around(crate::request_id::middleware)
        .map_to_response()
        .boxed()
}

/// What a `/helm` path names.
#[derive(Debug, PartialEq, Eq)]
enum HelmRoute {
    /// `<registry>/index.yaml`
    Index,
    /// `<registry>/charts/<file>`
    File(String),
    /// `<registry>/api/charts`
    Charts,
    /// `<registry>/api/charts/<name>`
    Chart(String),
    /// `<registry>/api/charts/<name>/<version>`
    Version(String, String),
}

fn parse(rest: &str) -> HelmResult<(ResourceName, HelmRoute)> {
    let not_found = || HelmError::not_found(format!("there is nothing at /helm/{rest}"));
    let parts: Vec<&str> = rest.split('/').collect();
    let (registry, tail) = parts.split_first().ok_or_else(not_found)?;
    let registry = ResourceName::parse(registry).map_err(|_| not_found())?;
    let route = match tail {
        ["index.yaml"] => HelmRoute::Index,
        ["charts", file] if !file.is_empty() => HelmRoute::File((*file).to_owned()),
        ["api", "charts"] | ["api", "charts", ""] => HelmRoute::Charts,
        ["api", "charts", name] => HelmRoute::Chart((*name).to_owned()),
        ["api", "charts", name, version] => {
            HelmRoute::Version((*name).to_owned(), (*version).to_owned())
        }
        _ => return Err(not_found()),
    };
    Ok((registry, route))
}

#[handler]
async fn dispatch(request: &Request, body: Body, state: Data<&Arc<RegistryState>>) -> Response {
    match route(&state, request, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route(state: &RegistryState, request: &Request, body: Body) -> HelmResult<Response> {
    let rest = request
        .uri()
        .path()
        .strip_prefix("/helm/")
        .unwrap_or_default();
    let (registry, route) = parse(rest)?;
    let method = request.method().clone();
    match (method, route) {
        (Method::GET | Method::HEAD, HelmRoute::Index) => {
            index::serve(state, request, &registry).await
        }
        (Method::GET | Method::HEAD, HelmRoute::File(file)) => {
            charts::download(state, request, &registry, &file).await
        }
        (Method::GET | Method::HEAD, HelmRoute::Charts) => {
            charts::list(state, request, &registry, None).await
        }
        (Method::GET | Method::HEAD, HelmRoute::Chart(name)) => {
            charts::list(state, request, &registry, Some(&name)).await
        }
        (Method::GET | Method::HEAD, HelmRoute::Version(name, version)) => {
            charts::version(state, request, &registry, &name, &version).await
        }
        (Method::POST, HelmRoute::Charts) => upload::upload(state, request, &registry, body).await,
        (Method::DELETE, HelmRoute::Version(name, version)) => {
            charts::delete(state, request, &registry, &name, &version).await
        }
        (method, _) => Err(HelmError::new(
            ErrorCode::Unsupported,
            format!("{method} is not supported on /helm/{rest}"),
        )),
    }
}

/// What `/helm/<name>` serves.
#[derive(Debug, Clone)]
pub enum HelmNamespace {
    /// A Helm registry, with its charts and maybe Helm upstream proxies.
    Registry(Stored<Registry>),
    /// A Helm upstream proxy: its remote's charts, pulls only.
    Proxy(Stored<UpstreamProxy>),
}

impl HelmNamespace {
    /// The Helm upstream proxies a miss goes through, in order.
    pub async fn upstreams(&self, state: &RegistryState) -> HelmResult<Vec<Upstream>> {
        match self {
            Self::Registry(registry) => Ok(state
                .upstreams_of(&registry.doc.upstreams, PackageType::Helm)
                .await?),
            // The namespace already holds the proxy: no need to load it again.
            Self::Proxy(proxy) => Ok(vec![
                state
                    .proxy
                    .upstream(proxy)
                    .await
                    .map_err(crate::registry::upstream_error)?,
            ]),
        }
    }
}

/// Admits a request that does `action` in the Helm registry or proxy `name`: anonymous reads of
/// a public registry or proxy, else what the caller's credentials allow (checked on `chart`'s repository
/// when the chart is known, else on the whole namespace). A proxy takes pulls only.
async fn admit(
    state: &RegistryState,
    request: &Request,
    name: &ResourceName,
    chart: Option<&str>,
    action: Action,
) -> HelmResult<(HelmNamespace, Option<Principal>)> {
    let registry = match state.app.registry(name).await {
        Ok(registry) => Some(registry),
        Err(AppError::Registry(RegistryRefusal::NotFound)) => None,
        Err(e) => return Err(e.into()),
    };
    let proxy = match (&registry, state.app.upstream_proxy(name).await) {
        (Some(_), _) => None,
        (None, Ok(proxy)) => Some(proxy),
        (None, Err(AppError::UpstreamProxy(UpstreamProxyError::NotFound))) => None,
        (None, Err(e)) => return Err(e.into()),
    };
    let public = registry.as_ref().is_some_and(|r| r.doc.public)
        || proxy.as_ref().is_some_and(|p| p.doc.public);
    let principal = match access::credentials(state, request) {
        None if action == Action::Pull && public => None,
        None => return Err(HelmError::unauthorized("authentication required")),
        Some(Err(e)) => return Err(HelmError::unauthorized(e.to_string())),
        Some(Ok(principal)) => Some(principal),
    };
    if let Some(principal) = &principal
        && !access::allows_in_registry(principal, name, chart, action)
    {
        return Err(HelmError::new(
            ErrorCode::Denied,
            format!(
                "the token does not allow {} in registry {name}",
                action.as_str()
            ),
        ));
    }
    let namespace = match (registry, proxy) {
        (Some(registry), _) if registry.doc.package_type != PackageType::Helm => {
            return Err(HelmError::not_found(format!(
                "registry {name} is a Docker registry; chart repositories are served for Helm registries"
            )));
        }
        (Some(registry), _) => HelmNamespace::Registry(registry),
        (None, Some(proxy)) if proxy.doc.package_type != PackageType::Helm => {
            return Err(HelmError::not_found(format!(
                "upstream proxy {name} is a Docker proxy; chart repositories are served for Helm proxies"
            )));
        }
        (None, Some(_)) if action != Action::Pull => {
            return Err(HelmError::new(
                ErrorCode::Denied,
                format!("{name} is an upstream proxy: it serves pulls only; upload to a registry"),
            ));
        }
        (None, Some(proxy)) => HelmNamespace::Proxy(proxy),
        (None, None) => {
            return Err(HelmError::not_found(format!("there is no registry {name}")));
        }
    };
    Ok((namespace, principal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_routes() {
        let route = |p: &str| parse(p).map(|(r, route)| (r.to_string(), route));
        assert_eq!(
            route("charts/index.yaml").unwrap(),
            ("charts".into(), HelmRoute::Index)
        );
        assert_eq!(
            route("charts/charts/web-1.0.0.tgz").unwrap().1,
            HelmRoute::File("web-1.0.0.tgz".into())
        );
        assert_eq!(route("charts/api/charts").unwrap().1, HelmRoute::Charts);
        assert_eq!(
            route("charts/api/charts/web/1.0.0").unwrap().1,
            HelmRoute::Version("web".into(), "1.0.0".into())
        );
        for bad in [
            "",
            "Charts/index.yaml",
            "charts/other",
            "charts/charts/",
            "../x",
        ] {
            assert!(route(bad).is_err(), "{bad}");
        }
    }
}
