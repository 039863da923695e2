//! The control-plane REST API under `/api/v1`, built with poem-openapi: one file per resource,
//! `error.rs` for statuses. Its OpenAPI document is served at `/api/openapi.json` and
//! `/api/openapi.yaml`, with an interactive page at `/api/docs`.

mod artifacts;
mod audit;
mod common;
pub mod error;
mod registries;
mod schema;
pub mod security;
mod timestamp;
mod upstream_proxies;

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, IntoResponse, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::app::App;
use crate::auth::Authenticator;
use artifacts::ArtifactsApi;
use audit::AuditApi;
use registries::RegistriesApi;
use upstream_proxies::UpstreamProxiesApi;

/// Operation groups.
#[derive(Tags)]
pub enum ApiTags {
    /// Artifact registries (Docker and Helm).
    #[oai(rename = "registries")]
    Registries,
    /// Upstream proxies that registries pull through.
    #[oai(rename = "upstream-proxies")]
    UpstreamProxies,
    /// The event log: who changed what and when, history, and live changes.
    #[oai(rename = "audit")]
    Audit,
}

type Apis = (RegistriesApi, ArtifactsApi, UpstreamProxiesApi, AuditApi);

fn service() -> OpenApiService<Apis, ()> {
    let apis = (RegistriesApi, ArtifactsApi, UpstreamProxiesApi, AuditApi);
    OpenApiService::new(apis, "Berth", env!("CARGO_PKG_VERSION")).description(
        "Control plane of Berth, an artifact registry for Docker (OCI) and Helm with upstream \
         pull-through proxies. Every change is recorded as events. Authenticate with \
         `Authorization: Bearer <JWT>` (scopes: registry:read, registry:write, audit:read, admin).",
    )
}

/// The OpenAPI document as YAML, exactly as `openapi/openapi.yaml` holds it.
pub fn spec_yaml() -> String {
    service().spec_yaml()
}

/// The largest request body the control plane reads: its JSON bodies are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Refuses a body over [`MAX_BODY_BYTES`] with 413, whether it announces its length or not,
/// before any handler reads it. The rest of a refused body is drained by
/// [`crate::body::drain_unread`], so the client reads the refusal.
async fn limit_body<E: poem::Endpoint>(
    next: Arc<E>,
    mut request: poem::Request,
) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    let announced = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Ok(error::ApiError::too_large(MAX_BODY_BYTES).into_response());
    }
    let Some(bytes) = crate::body::read_limited(request.take_body(), MAX_BODY_BYTES).await else {
        return Ok(error::ApiError::too_large(MAX_BODY_BYTES).into_response());
    };
    request.set_body(bytes);
    next.call(request).await.map(IntoResponse::into_response)
}

/// The methods each operation path of the spec allows, for the `Allow` header of a 405.
struct AllowedMethods(Vec<(Vec<String>, String)>);

impl AllowedMethods {
    fn from_spec(spec: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let paths = spec["paths"].as_object().cloned().unwrap_or_default();
        Self(
            paths
                .into_iter()
                .map(|(template, item)| {
                    let mut methods: Vec<String> = item
                        .as_object()
                        .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                        .unwrap_or_default();
                    if methods.iter().any(|m| m == "GET") {
                        methods.push("HEAD".into());
                    }
                    let segments = template.split('/').map(str::to_owned).collect();
                    (segments, methods.join(", "))
                })
                .collect(),
        )
    }

    /// The methods `path` allows, when it is an operation path.
    fn of(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| {
                    t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty())
                });
            matches.then_some(methods.as_str())
        })
    }
}

/// The `/api` routes: the operations, the spec and the docs page.
pub fn routes(
    app: App,
    authenticator: Arc<Authenticator>,
    registry: Arc<crate::registry::RegistryState>,
) -> BoxEndpoint<'static> {
    let service = service();
    let json = service.spec();
    let allowed = Arc::new(AllowedMethods::from_spec(&json));
    let yaml = service.spec_yaml();
    let docs = service.swagger_ui();
    Route::new()
        .nest_no_strip("/api/v1", service)
        .at(
            "/api/openapi.json",
            poem::endpoint::make_sync(move |_| json.clone().with_content_type("application/json")),
        )
        .at(
            "/api/openapi.yaml",
            poem::endpoint::make_sync(move |_| yaml.clone().with_content_type("application/yaml")),
        )
        .nest("/api/docs", docs)
        .data(authenticator)
        .data(app)
        .data(registry.proxy.clone())
        .data(registry)
        .around(limit_body)
        .catch_all_error(error::normalize)
        .around(move |next, request| {
            let allowed = allowed.clone();
            async move {
                use poem::{Endpoint, IntoResponse};
                let path = request.uri().path().to_owned();
                let mut response = match next.call(request).await {
                    Ok(response) => response.into_response(),
                    Err(e) => e.into_response(),
                };
                if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
                    && let Some(methods) = allowed.of(&path)
                    && let Ok(value) = methods.parse()
                {
                    response.headers_mut().insert("allow", value);
                }
                Ok::<_, poem::Error>(response)
            }
        })
        .around(crate::request_id::middleware)
        .boxed()
}
