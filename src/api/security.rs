//! The bearer-token security scheme and the per-request context handlers share.

use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::error::ApiError;
use crate::app::Context;
use crate::auth::{Authenticator, Principal, Scope};

/// A JWT in `Authorization: Bearer …`; scopes in its `scope` claim (`registry:read`,
/// `registry:write`, `audit:read`, `admin`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_token")]
pub struct BearerAuth(pub Principal);

async fn check_token(request: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let authenticator = request
        .data::<Arc<Authenticator>>()
        .expect("the authenticator is mounted with the API");
    authenticator
        .verify(&bearer.token)
        .map_err(|e| ApiError::from(e).into())
}

pub use crate::request_id::RequestId;

impl BearerAuth {
    /// The use-case context, once the caller is known to hold `scope`.
    pub fn context(&self, scope: Scope, request_id: &RequestId) -> Result<Context, ApiError> {
        self.0.require(scope)?;
        Ok(Context {
            actor: self.0.subject.clone(),
            correlation_id: request_id.0.clone(),
            idempotency: None,
        })
    }
}
