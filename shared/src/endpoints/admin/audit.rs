//! The audit trail as administrators read it: `GET {issuer}/api/v1/audit-events` and the
//! console's audit page share one query ([`AuditQuery`]) and one reader ([`page`]).
//! Events are recorded by [`crate::events`]; their shape is documented in `docs/events.md`.

use crate::context::Ctx;
use crate::domain::{AuditEvent, EventType};
use crate::error::OAuthError;
use crate::params::Params;

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 100;
/// Events read from the store per round while filling a filtered page.
const SCAN_BATCH: usize = 200;
/// Most events one request examines: a filter that matches little returns a short (or empty)
/// page with a cursor to go on from, rather than reading a whole year of events at once.
const SCAN_LIMIT: usize = 5_000;

/// Parameters of the audit API and the console's audit page.
pub const PARAMETERS: &[&str] = &["type", "actor", "client_id", "limit", "cursor"];

/// What to list: filters (all must hold), page size and where to go on from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub kind: Option<EventType>,
    pub actor: Option<String>,
    pub client_id: Option<String>,
    pub limit: usize,
    /// The store's cursor (decoded).
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// From a query string. Unknown, repeated or malformed parameters are refused, naming them;
    /// empty values (a console form's unused fields) mean "no filter".
    pub fn parse(query: &str) -> Result<Self, OAuthError> {
        let q = Params::parse(query.as_bytes())
            .map_err(|e| OAuthError::invalid_request(e.describe()))?;
        if let Some(name) = q.names().find(|n| !PARAMETERS.contains(n)) {
            return Err(OAuthError::invalid_request(format!(
                "unknown parameter {name:?}; parameters are {}",
                PARAMETERS.join(", ")
            )));
        }
        let single = |name: &'static str| {
            q.single(name)
                .map(|v| v.map(str::trim).filter(|v| !v.is_empty()))
                .map_err(|e| OAuthError::invalid_request(e.describe()))
        };
        let kind = single("type")?
            .map(|raw| {
                EventType::parse(raw).ok_or_else(|| {
                    OAuthError::invalid_request(format!(
                        "type {raw:?} is not an event type; types are {}",
                        EventType::ALL.map(EventType::as_str).join(", ")
                    ))
                })
            })
            .transpose()?;
        let text = |name: &'static str| -> Result<Option<String>, OAuthError> {
            match single(name)? {
                Some(v) if v.len() > 1100 || v.chars().any(char::is_control) => Err(
                    OAuthError::invalid_request(format!("{name} is not a valid value")),
                ),
                v => Ok(v.map(str::to_owned)),
            }
        };
        let limit = match single("limit")? {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    OAuthError::invalid_request(format!(
                        "limit must be a number from 1 to {MAX_PAGE}"
                    ))
                })?,
        };
        Ok(Self {
            kind,
            actor: text("actor")?,
            client_id: text("client_id")?,
            limit,
            cursor: single("cursor")?.map(decode_cursor).transpose()?,
        })
    }

    fn lists(&self, e: &AuditEvent) -> bool {
        self.kind.is_none_or(|k| k == e.kind)
            && self.actor.as_deref().is_none_or(|a| e.actor.matches(a))
            && self
                .client_id
                .as_deref()
                .is_none_or(|c| e.client_id.as_deref() == Some(c))
    }
}

/// A `cursor` parameter of the audit trail: the store's cursor `{occurred_at, 12
/// digits}#{event id, 32 hex digits}`, as [`super::decode_cursor`] reads it.
fn decode_cursor(raw: &str) -> Result<String, OAuthError> {
    super::decode_cursor(raw, |id| {
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// One page of the tenant's events the query lists, newest first, and the store cursor of the
/// next page when there may be one.
pub async fn page(
    ctx: &Ctx<'_>,
    query: &AuditQuery,
) -> Result<(Vec<AuditEvent>, Option<String>), OAuthError> {
    let mut out = Vec::new();
    let mut before = query.cursor.clone();
    let mut examined = 0;
    loop {
        let (batch, next) = ctx
            .app
            .store
            .list_audit_events(&ctx.tenant.id, before.as_deref(), SCAN_BATCH, ctx.now)
            .await?;
        for event in batch {
            examined += 1;
            if query.lists(&event) {
                out.push(event);
                if out.len() == query.limit {
                    let cursor = out.last().map(AuditEvent::sort_key);
                    return Ok((out, cursor));
                }
            }
        }
        match next {
            Some(n) if examined < SCAN_LIMIT => before = Some(n),
            Some(n) => return Ok((out, Some(n))),
            None => return Ok((out, None)),
        }
    }
}
