//! The console's pages (`templates/admin_*.html`): what each template shows, built from domain
//! values, and the two plain answers every console route uses (a message page, a redirect).

use crate::domain::{Client, UnixTime};
use crate::html;
use crate::http::Response;
use ::http::StatusCode;
use ::http::header::{self, HeaderValue};
use askama::Template;

/// What every console page shows in its frame.
pub(super) struct Frame<'a> {
    pub(super) nonce: String,
    pub(super) tenant_name: &'a str,
    pub(super) issuer: &'a str,
    pub(super) csrf: &'a str,
    pub(super) error: Option<&'a str>,
}

pub(super) struct ClientRow {
    pub(super) id: String,
    /// `id` percent-encoded for a path segment (metadata-document ids are URLs).
    pub(super) href_id: String,
    pub(super) name: String,
    pub(super) created_by: &'static str,
    pub(super) consent: &'static str,
    pub(super) scope: String,
    pub(super) redirect_uris: Vec<String>,
    pub(super) created: String,
    pub(super) time_left: String,
    /// Pending clients: the users who asked an administrator for it (emails), and the
    /// [`Client::approval_digest`] the queue's Approve form carries.
    pub(super) requested_by: String,
    pub(super) shown: String,
    /// Whether Approve may also trust the application ([`crate::domain::VendorTrust`]).
    pub(super) trustable: bool,
}

#[derive(Template)]
#[template(path = "admin_clients.html")]
pub(super) struct ClientsPage<'a> {
    pub(super) nonce: &'a str,
    pub(super) tenant_name: &'a str,
    pub(super) issuer: &'a str,
    pub(super) csrf: &'a str,
    pub(super) error: Option<&'a str>,
    pub(super) pending_view: bool,
    pub(super) clients: Vec<ClientRow>,
    pub(super) next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_client.html")]
pub(super) struct ClientPage<'a> {
    pub(super) nonce: &'a str,
    pub(super) tenant_name: &'a str,
    pub(super) issuer: &'a str,
    pub(super) csrf: &'a str,
    pub(super) error: Option<&'a str>,
    pub(super) id: &'a str,
    pub(super) href_id: String,
    pub(super) name: &'a str,
    pub(super) status: &'a str,
    pub(super) pending: bool,
    /// Metadata-document clients: the document URL and cache times, and changes awaiting
    /// approval (name and redirect URIs).
    pub(super) document: Option<DocumentView>,
    pub(super) changes: Option<ChangesView>,
    /// [`Client::approval_digest`] of what this page shows, carried by its approval forms.
    pub(super) shown: String,
    pub(super) time_left: String,
    pub(super) created_by: &'a str,
    pub(super) consent: &'a str,
    pub(super) scope: String,
    pub(super) allowed_scopes: String,
    pub(super) config_version: u32,
    pub(super) auth_method: &'a str,
    pub(super) redirect_uris: Vec<String>,
    pub(super) client_uri: Option<&'a str>,
    pub(super) created: String,
    pub(super) requested_by: String,
    pub(super) trustable: bool,
    pub(super) vendor_trust: Option<&'a str>,
}

pub(super) struct DocumentView {
    pub(super) url: String,
    pub(super) fetched: String,
    pub(super) fresh_for: String,
}

/// What an approved client asked to change (RFC 7592 update, changed metadata document):
/// each field that differs from the approved configuration, as label and new value.
pub(super) struct ChangesView {
    pub(super) fields: Vec<(&'static str, &'static str, String)>,
}

pub(super) fn changes_view(c: &Client) -> Option<ChangesView> {
    let p = c.pending_changes.as_ref()?;
    let m = &c.metadata;
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map_or_else(|| "(none)".to_owned(), crate::html::ascii_url)
    };
    let uris = |m: &crate::domain::ClientMetadata| {
        m.redirect_uris
            .iter()
            .map(|u| crate::html::ascii_url(u.as_str()))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut fields = Vec::new();
    let mut differs = |field: &'static str, label: &'static str, old: String, new: String| {
        if old != new {
            fields.push((field, label, new));
        }
    };
    differs(
        "client_name",
        "Name",
        m.client_name.clone(),
        p.client_name.clone(),
    );
    differs("redirect_uris", "Redirect URIs", uris(m), uris(p));
    differs("scope", "Scope", m.scope.to_string(), p.scope.to_string());
    differs(
        "grant_types",
        "Grant types",
        format!("{:?}", m.grant_types),
        format!("{:?}", p.grant_types),
    );
    differs(
        "client_uri",
        "Client URI",
        opt(&m.client_uri),
        opt(&p.client_uri),
    );
    differs("logo_uri", "Logo URI", opt(&m.logo_uri), opt(&p.logo_uri));
    differs(
        "tos_uri",
        "Terms of service",
        opt(&m.tos_uri),
        opt(&p.tos_uri),
    );
    differs(
        "policy_uri",
        "Privacy policy",
        opt(&m.policy_uri),
        opt(&p.policy_uri),
    );
    differs(
        "software_id",
        "Software ID",
        m.software_id.clone().unwrap_or_default(),
        p.software_id.clone().unwrap_or_default(),
    );
    differs(
        "application_type",
        "Application type",
        format!("{:?}", m.application_type),
        format!("{:?}", p.application_type),
    );
    Some(ChangesView { fields })
}

/// A client id as one path segment.
pub(super) fn href_id(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub(super) fn document_view(now: UnixTime, c: &Client) -> Option<DocumentView> {
    let doc = c.document.as_ref()?;
    Some(DocumentView {
        url: c.client_id.to_string(),
        fetched: html::ago(now, doc.fetched_at),
        fresh_for: if doc.fresh_until > now {
            html::time_left(now, doc.fresh_until)
        } else {
            "stale: fetched again on next use".to_owned()
        },
    })
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
pub(super) struct SettingsPage<'a> {
    pub(super) nonce: &'a str,
    pub(super) tenant_name: &'a str,
    pub(super) issuer: &'a str,
    pub(super) csrf: &'a str,
    pub(super) error: Option<&'a str>,
    pub(super) display_name: &'a str,
    pub(super) dcr_enabled: bool,
    pub(super) cimd_enabled: bool,
    pub(super) openid_enabled: bool,
    pub(super) access_token_signing_alg: &'static str,
    pub(super) methods: Vec<(&'static str, bool)>,
    pub(super) require_client_uri: bool,
    pub(super) allowed_scopes: String,
    pub(super) pending_ttl: u64,
    pub(super) pending_cap: u32,
    pub(super) source_share: u32,
    pub(super) audit_retention_days: u32,
    pub(super) default_resource: &'a str,
}

pub(super) struct UserRow {
    pub(super) email: String,
    pub(super) role: &'static str,
    pub(super) status: &'static str,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
pub(super) struct UsersPage<'a> {
    pub(super) nonce: &'a str,
    pub(super) tenant_name: &'a str,
    pub(super) issuer: &'a str,
    pub(super) csrf: &'a str,
    pub(super) error: Option<&'a str>,
    pub(super) users: Vec<UserRow>,
}

#[derive(Template)]
#[template(path = "admin_message.html")]
pub(super) struct MessagePage<'a> {
    pub(super) nonce: &'a str,
    pub(super) tenant_name: &'a str,
    pub(super) issuer: &'a str,
    pub(super) csrf: &'a str,
    pub(super) error: Option<&'a str>,
    pub(super) title: &'a str,
    pub(super) message: &'a str,
}

pub(super) fn message(f: &Frame<'_>, status: StatusCode, title: &str, text: &str) -> Response {
    html::page(
        status,
        &f.nonce,
        &MessagePage {
            nonce: &f.nonce,
            tenant_name: f.tenant_name,
            issuer: f.issuer,
            csrf: f.csrf,
            error: None,
            title,
            message: text,
        },
    )
}

pub(super) fn see_other(to: &str) -> Response {
    let mut resp = Response::new(bytes::Bytes::new());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(super) fn time_left(now: UnixTime, client: &Client) -> String {
    client
        .expires_at
        .map(|exp| html::time_left(now, exp))
        .unwrap_or_default()
}

pub(super) fn consent_label(client: &Client) -> &'static str {
    match client.consent_method {
        crate::domain::ConsentMethod::Required => "Required",
        crate::domain::ConsentMethod::Trusted => "Trusted",
    }
}
