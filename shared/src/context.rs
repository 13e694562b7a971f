//! The request context: what every endpoint needs about the request it serves, built once per
//! request by the dispatcher ([`crate::server`]) and handed down — the tenant the path names,
//! the public base URL and the tenant's issuer (RFC 8414 §2), the time the request is judged
//! at, and the source address.

use crate::app::App;
use crate::domain::{Tenant, UnixTime};
use crate::endpoints::metadata;
use crate::http::{ClientIp, Request};
use crate::router::Methods;
use std::net::IpAddr;

pub struct Ctx<'a> {
    pub app: &'a App,
    pub tenant: &'a Tenant,
    /// The external base URL (`https://auth.example.com`), see [`App::public_base`].
    pub base: String,
    /// `{base}/t/{tenant}`.
    pub issuer: String,
    /// One reading of the application's clock for the whole request.
    pub now: UnixTime,
    /// The caller's address as API Gateway (or the local server's socket) saw it.
    pub ip: Option<IpAddr>,
    /// The route's row of the method table, for endpoints that turn methods away themselves.
    pub methods: Methods,
}

impl<'a> Ctx<'a> {
    pub fn new(
        app: &'a App,
        tenant: &'a Tenant,
        base: String,
        methods: Methods,
        req: &Request,
    ) -> Self {
        Self {
            app,
            tenant,
            issuer: metadata::issuer(&base, tenant),
            base,
            now: app.now(),
            ip: req.extensions().get::<ClientIp>().map(|c| c.0),
            methods,
        }
    }
}
