//! Request ids: the client's `X-Request-Id` (or a generated one) is offered to handlers, stored
//! as the correlation id of the events a request causes, and echoed in the response.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response};

/// The id of the request being handled.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id a handler finds on its request (generated if the middleware did not run).
    pub fn of(request: &Request) -> Self {
        request
            .extensions()
            .get::<Self>()
            .cloned()
            .unwrap_or_else(|| Self(uuid::Uuid::now_v7().to_string()))
    }
}

/// Middleware: takes or makes the request id, offers it to the handler, echoes it back.
pub async fn middleware<E: Endpoint>(next: Arc<E>, mut request: Request) -> poem::Result<Response> {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = match next.call(request).await {
        Ok(output) => output.into_response(),
        Err(e) => e.into_response(),
    };
    if let Ok(value) = id.parse() {
        response.headers_mut().insert("x-request-id", value);
    }
    Ok(response)
}
