//! The console's audit page (`GET {issuer}/admin/audit`): the audit API's query and reader
//! ([`super::audit`]) rendered as a filterable table.

use super::audit::{self, AuditQuery};
use super::console_pages::{Frame, href_id};
use crate::context::Ctx;
use crate::domain::{Actor, AuditEvent, EventType};
use crate::error::OAuthError;
use crate::html;
use crate::http::{Request, Response};
use ::http::StatusCode;
use askama::Template;

pub(super) struct EventRow {
    id: String,
    at: i64,
    ago: String,
    kind: &'static str,
    actor: String,
    client: String,
    client_href: Option<String>,
    via: String,
    source_ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    retention_days: u32,
    /// Every event type, and whether the filter names it.
    types: Vec<(&'static str, bool)>,
    actor: &'a str,
    client_id: &'a str,
    events: Vec<EventRow>,
    next_href: Option<String>,
}

fn actor_label(actor: &Actor) -> String {
    match actor {
        Actor::User { email, .. } => email.clone(),
        Actor::Anonymous { email: Some(email) } => format!("anonymous ({email})"),
        Actor::Anonymous { email: None } => "anonymous".to_owned(),
        Actor::Client { id } => format!("client {id}"),
        Actor::Operator => "operator (CLI)".to_owned(),
        Actor::System => "Gatehouse".to_owned(),
    }
}

fn row(ctx: &Ctx<'_>, e: &AuditEvent) -> EventRow {
    let client_name = e.client.as_ref().map(|c| c.client_name.as_str());
    EventRow {
        id: e.id.clone(),
        at: e.occurred_at,
        ago: html::ago(ctx.now, e.occurred_at),
        kind: e.kind.as_str(),
        actor: actor_label(&e.actor),
        client: match (client_name, e.client_id.as_deref()) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            (None, Some(id)) => id.to_owned(),
            _ => String::new(),
        },
        client_href: e
            .client_id
            .as_deref()
            .map(|id| format!("{}/admin/clients/{}", ctx.issuer, href_id(id))),
        via: e.via.clone().unwrap_or_default(),
        source_ip: e.source_ip.clone().unwrap_or_default(),
        detail: if e.detail.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(e.detail.clone()).to_string()
        },
    }
}

pub(super) async fn audit_page(
    ctx: &Ctx<'_>,
    f: &Frame<'_>,
    req: &Request,
) -> Result<Response, OAuthError> {
    let query = AuditQuery::parse(req.uri().query().unwrap_or(""))?;
    let (events, next) = audit::page(ctx, &query).await?;
    let next_href = next.map(|n| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(k) = query.kind {
            q.append_pair("type", k.as_str());
        }
        if let Some(a) = &query.actor {
            q.append_pair("actor", a);
        }
        if let Some(c) = &query.client_id {
            q.append_pair("client_id", c);
        }
        q.append_pair("cursor", &super::encode_cursor(&n));
        format!("{}/admin/audit?{}", ctx.issuer, q.finish())
    });
    Ok(html::page(
        StatusCode::OK,
        &f.nonce,
        &AuditPage {
            nonce: &f.nonce,
            tenant_name: f.tenant_name,
            issuer: f.issuer,
            csrf: f.csrf,
            error: f.error,
            retention_days: ctx.tenant.audit_retention_days,
            types: EventType::ALL
                .iter()
                .map(|t| (t.as_str(), query.kind == Some(*t)))
                .collect(),
            actor: query.actor.as_deref().unwrap_or(""),
            client_id: query.client_id.as_deref().unwrap_or(""),
            events: events.iter().map(|e| row(ctx, e)).collect(),
            next_href,
        },
    ))
}
