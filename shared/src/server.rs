//! The dispatcher: one request in, one response out, for one Lambda function's routes or for all
//! of them (`gatehouse serve`). It reads the route table ([`crate::router`]), answers preflights
//! and unsupported methods from it, loads the tenant, builds the request context
//! ([`crate::context::Ctx`]) once and hands it to the endpoint.

use crate::app::App;
use crate::context::Ctx;
use crate::documents::Kind;
use crate::endpoints::{admin, approval, authorize, client_config, mcp, metadata, register, token};
use crate::error::OAuthError;
use crate::http::{self, Request, RequestId, Response};
use crate::router::{self, Function, MethodCheck, Route};
use ::http::Method;
use std::time::Instant;
use tracing::Instrument;

impl App {
    /// Serves one request. `only` restricts it to one Lambda function's routes (a route of
    /// another function is a 404, as API Gateway would never send it there).
    pub async fn handle(&self, only: Option<Function>, req: Request) -> Response {
        let started = Instant::now();
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let path = req.uri().path().to_owned();
        // RFC 6797: browsers that reached us over https keep to https for a year, so a later
        // `http://` link (or an attacker on the network) cannot take a sign-in page or a code
        // over plain http. Only when the public URL itself is https: local http development
        // must not pin `localhost` to https in the developer's browser.
        let base = self.public_base(&req);
        let hsts = base.as_ref().is_ok_and(|b| b.starts_with("https://"));
        let route = router::route(&path).filter(|r| only.is_none_or(|f| r.function() == f));
        let function = route.as_ref().map_or("none", |r| r.function().name());
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %req.method(),
            route = route.as_ref().map_or("none", Route::name),
            tenant = route.as_ref().map_or("", Route::tenant),
        );
        let work = async {
            match route {
                Some(route) => {
                    let resp = self
                        .dispatch(&route, &req, base)
                        .await
                        .unwrap_or_else(|e| http::error_response(&e));
                    if route.cors() {
                        http::with_cors(resp)
                    } else {
                        resp
                    }
                }
                None => http::error_response(&OAuthError::not_found(
                    "no such endpoint; tenant endpoints live under /t/{tenant}/",
                )),
            }
        };
        async {
            let (mut resp, dynamodb_calls) =
                crate::telemetry::counting_db_calls(function, work).await;
            if hsts {
                resp.headers_mut().insert(
                    ::http::header::STRICT_TRANSPORT_SECURITY,
                    ::http::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
                );
            }
            tracing::info!(
                status = resp.status().as_u16(),
                micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                dynamodb_calls,
                "handled"
            );
            resp
        }
        .instrument(span)
        .await
    }

    /// `base`: the public base URL, read once by [`App::handle`]; a malformed `Host` is only an
    /// error once the route and its method were accepted and the tenant exists.
    async fn dispatch(
        &self,
        route: &Route<'_>,
        req: &Request,
        base: Result<String, OAuthError>,
    ) -> Result<Response, OAuthError> {
        if req.extensions().get::<http::BodyTooLarge>().is_some() {
            return Err(OAuthError::payload_too_large());
        }
        let methods = route.methods();
        if let Some(preflight) = methods.preflight
            && req.method() == Method::OPTIONS
        {
            return Ok(http::preflight(preflight));
        }
        if methods.check == MethodCheck::Router && !methods.allows(req.method().as_str()) {
            return Err(OAuthError::method_not_allowed(methods.allow));
        }
        let tenant = self.tenant(route.tenant()).await?;
        let ctx = Ctx::new(self, &tenant, base?, methods, req);
        // Each endpoint's future is boxed: held inline, the largest of them would size this
        // one, and in unoptimised builds the poll frames of the nested futures add up to more
        // than a 2 MiB thread stack.
        match route {
            Route::Register { .. } => Box::pin(register::handle(&ctx, req)).await,
            Route::ClientConfiguration { client_id, .. } => {
                Box::pin(client_config::handle(&ctx, client_id, req)).await
            }
            Route::AdminApi { rest, .. } => Box::pin(admin::api::handle(&ctx, rest, req)).await,
            Route::Console { rest, .. } => {
                Ok(Box::pin(admin::console::handle(&ctx, rest, req)).await)
            }
            Route::AuthorizationServerMetadata { .. } => Ok(metadata::response(
                &self.published,
                Kind::AuthorizationServer,
                &ctx.base,
                ctx.tenant,
                req,
            )),
            Route::OpenIdConfiguration { .. } => Ok(metadata::response(
                &self.published,
                Kind::OpenIdConfiguration,
                &ctx.base,
                ctx.tenant,
                req,
            )),
            Route::UserInfo { .. } => Box::pin(token::openid::userinfo(&ctx, req)).await,
            Route::Authorize { .. } if req.method() == Method::GET => {
                Ok(Box::pin(authorize::get(&ctx, req)).await)
            }
            Route::Authorize { .. } => Ok(Box::pin(authorize::post(&ctx, req)).await),
            Route::Token { .. } => Box::pin(token::token(&ctx, req)).await,
            Route::Revoke { .. } => Box::pin(token::revoke(&ctx, req)).await,
            Route::Introspect { .. } => Box::pin(token::introspect(&ctx, req)).await,
            Route::Jwks { .. } => Box::pin(token::jwks(&ctx, req)).await,
            Route::ProtectedResourceMetadata { .. } => Ok(metadata::response(
                &self.published,
                Kind::ProtectedResource,
                &ctx.base,
                ctx.tenant,
                req,
            )),
            Route::Mcp { .. } => Box::pin(mcp::handle(&ctx, req)).await,
            Route::Approve { .. } => Ok(Box::pin(approval::post(&ctx, req)).await),
        }
    }
}
