//! The request context: what every endpoint needs about the request it serves, built once per
//! request by the dispatcher ([`crate::server`]) and handed down — the tenant the path names,
//! the public base URL and the tenant's issuer (RFC 8414 §2), the time the request is judged
//! at, and the source address.

use crate::app::App;
use crate::domain::{AccessRequest, Actor, AuditEvent, Client, EventType, Tenant, UnixTime};
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

/// Audit events of the request's tenant (`crate::events`).
impl Ctx<'_> {
    /// A new event in this request's tenant, at its time, from its source address.
    pub fn event(&self, kind: EventType, actor: Actor) -> AuditEvent {
        let mut event = AuditEvent::new(self.tenant, kind, actor, self.now);
        event.source_ip = self.ip.map(|ip| ip.to_string());
        event
    }

    /// Records `event` ([`crate::events::record`]).
    pub async fn record(&self, event: AuditEvent) {
        Box::pin(crate::events::record(
            self.app.store.as_ref(),
            &self.app.notifier,
            &event,
        ))
        .await;
    }

    /// The live access requests for `client` made since it was registered (a metadata-document
    /// client deleted and registered again under the same id starts with none). A read that
    /// fails only leaves them out of the event.
    pub async fn access_requests(&self, client: &Client) -> Vec<AccessRequest> {
        match self
            .app
            .store
            .list_access_requests(&self.tenant.id, Some(&client.client_id), self.now)
            .await
        {
            Ok(requests) => requests
                .into_iter()
                .filter(|r| r.requester.requested_at >= client.created_at)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "access requests not read for the event");
                Vec::new()
            }
        }
    }
}
