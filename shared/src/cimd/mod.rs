//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; the MCP
//! authorization spec's preferred client identification). A client with no prior relationship
//! uses an `https` URL as its `client_id`; the JSON document at that URL is its metadata.
//!
//! The DCR approval gate applies unchanged: the first authorization request for an unknown
//! URL fetches and validates the document and records a **pending** client (`createdByType`
//! `cimd`, the tenant's pending lifetime, TTL and cap), which an administrator approves on the
//! consent page like any registered client. The stored client is the cache of the document
//! ([`DocumentState`]): it is used until `fresh_until` (the document's `Cache-Control`, bounded
//! to 5 minutes … 24 hours), then fetched again. A changed document never takes effect on its
//! own once the client is approved: differing metadata waits in the client's `pending_changes`
//! until an administrator approves it (redirect URIs the document dropped stop working at once — a
//! narrowing needs no approval).
//!
//! [`resolve`] is the one entry point for the authorization and token endpoints.

pub mod address;
pub mod fetch;

use crate::client_metadata;
use crate::defaults::{CIMD_CACHE_DEFAULT_SECS, CIMD_CACHE_MAX_SECS, CIMD_CACHE_MIN_SECS};
use crate::domain::{
    AuthMethod, Client, ClientId, ClientMetadata, ClientStatus, ConsentMethod, CreatedByType,
    DocumentState, Tenant, UnixTime,
};
use crate::store::{Store, StoreError};
use fetch::{FetchError, Fetcher};
use serde_json::Value;
use url::Url;

/// Why a metadata-document client cannot be used right now.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The `client_id` is not an acceptable document URL.
    #[error("the client_id is not a usable metadata document URL: {0}")]
    Url(String),
    #[error("the client's metadata document could not be fetched: {0}")]
    Fetch(FetchError),
    #[error("the client's metadata document is not valid: {0}")]
    Invalid(String),
}

impl DocumentError {
    /// `true` when the document server, not the document or its URL, is at fault (a `502`
    /// upstream failure rather than a `400` bad request).
    pub fn is_upstream(&self) -> bool {
        matches!(self, Self::Fetch(e) if !matches!(e, FetchError::Forbidden { .. }))
    }
}

/// What [`resolve`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The tenant's pending-client quota is used up.
    #[error("the tenant's pending-client cap is reached")]
    CapReached { retry_after: u64 },
    /// Too many first-time documents from this source.
    #[error("too many new applications from this address")]
    RateLimited,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The draft's rules for the URL itself (§3): `https`, a host, a path other than `/`, no dot
/// segments, no fragment, no user information.
pub fn document_url(id: &ClientId) -> Result<Url, DocumentError> {
    let raw = id.as_str();
    let bad = |why: &str| DocumentError::Url(why.to_owned());
    let url = Url::parse(raw).map_err(|e| DocumentError::Url(format!("not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad("it must be an https URL"));
    }
    if url.host().is_none() {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not contain user information"));
    }
    if url.fragment().is_some() {
        return Err(bad("it must not contain a fragment"));
    }
    let path = url.path();
    if path.is_empty() || path == "/" {
        return Err(bad(
            "it must have a path (the document's location), not just a host",
        ));
    }
    // Dot segments are removed by parsing, so look at what was written.
    let written_path = raw
        .strip_prefix("https://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let written_path = written_path.split(['?']).next().unwrap_or("");
    if written_path.split('/').any(|seg| {
        matches!(
            seg.to_ascii_lowercase().as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    }) {
        return Err(bad("it must not contain . or .. path segments"));
    }
    // Another spelling of the same URL (`HTTPS://A.example:443/…`) is fetched at its normalised
    // form, but its document must name exactly the spelling used, so one document can never
    // stand behind two client ids.
    Ok(url)
}

/// How long a fetched document is used: its `Cache-Control` within the bounds.
pub fn freshness(max_age: Option<u64>) -> i64 {
    let secs = max_age
        .unwrap_or(CIMD_CACHE_DEFAULT_SECS)
        .clamp(CIMD_CACHE_MIN_SECS, CIMD_CACHE_MAX_SECS);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Validates a fetched document for `id` under the tenant's scopes and returns the client's
/// metadata. The registration rules apply (redirect URIs, grant and response types, informative
/// URLs); on top of them: `client_id` must equal the URL exactly, no client secret of any
/// kind, and the client is public (`none`; an absent method means `none`, since a document
/// cannot carry a secret). `private_key_jwt` is not supported. A missing `client_name` shows
/// the document's host. Scopes outside the tenant's are dropped rather than refused: the
/// document is written for every authorization server, not for this one.
pub fn validate_document(
    body: &[u8],
    id: &ClientId,
    url: &Url,
    tenant: &Tenant,
) -> Result<ClientMetadata, DocumentError> {
    let invalid = |why: String| DocumentError::Invalid(why);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the document is not valid JSON ({e})")))?;
    let Value::Object(mut doc) = value else {
        return Err(invalid("the document must be a JSON object".into()));
    };
    match doc.get("client_id") {
        Some(Value::String(s)) if s == id.as_str() => {}
        Some(Value::String(s)) => {
            return Err(invalid(format!(
                "its client_id {:?} is not the URL it was fetched from",
                s.chars().take(200).collect::<String>()
            )));
        }
        Some(_) => return Err(invalid("its client_id must be a string".into())),
        None => return Err(invalid("it has no client_id".into())),
    }
    for secret in ["client_secret", "client_secret_expires_at"] {
        if doc.contains_key(secret) {
            return Err(invalid(format!(
                "it contains {secret}; a metadata document must not carry a client secret"
            )));
        }
    }
    match doc.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {
            doc.insert("token_endpoint_auth_method".into(), "none".into());
        }
        Some(Value::String(m)) if m == "none" => {}
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method {other} is not supported for metadata documents; use \"none\" (PKCE)"
            )));
        }
    }
    if matches!(doc.get("client_name"), None | Some(Value::Null)) {
        doc.insert(
            "client_name".into(),
            url.host_str().unwrap_or("unnamed application").into(),
        );
    }
    let requested = client_metadata::validate(&doc).map_err(|e| {
        if e.code == crate::error::ErrorCode::InvalidRedirectUri
            && !e.description.contains("redirect_uris")
        {
            invalid(format!("redirect_uris: {}", e.description))
        } else {
            invalid(e.description)
        }
    })?;
    if requested.token_endpoint_auth_method != AuthMethod::None {
        return Err(invalid(
            "token_endpoint_auth_method must be \"none\"".to_owned(),
        ));
    }
    let scope = crate::policy::document_scope(requested.scope.as_ref(), &tenant.allowed_scopes())
        .map_err(|e| invalid(e.description))?;
    Ok(requested.into_metadata(AuthMethod::None, scope))
}

/// A fetched, validated document.
struct Document {
    metadata: ClientMetadata,
    state: DocumentState,
}

/// What resolving a metadata-document client needs: the store port and the guarded fetcher.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub store: &'a dyn Store,
    pub fetcher: &'a Fetcher,
}

async fn fetch_document(
    app: Sources<'_>,
    tenant: &Tenant,
    id: &ClientId,
    now: UnixTime,
) -> Result<Document, DocumentError> {
    let url = document_url(id)?;
    let fetched = app
        .fetcher
        .fetch(&url)
        .await
        .map_err(DocumentError::Fetch)?;
    let metadata = validate_document(&fetched.body, id, &url, tenant)?;
    Ok(Document {
        metadata,
        state: DocumentState {
            fetched_at: now,
            fresh_until: now.saturating_add(freshness(fetched.max_age)),
        },
    })
}

/// A new pending client for a document, seen for the first time.
pub fn new_pending_client(
    tenant: &Tenant,
    id: &ClientId,
    metadata: ClientMetadata,
    state: DocumentState,
    now: UnixTime,
) -> Client {
    new_pending(tenant, id, Document { metadata, state }, now)
}

fn new_pending(tenant: &Tenant, id: &ClientId, doc: Document, now: UnixTime) -> Client {
    let lifetime = i64::try_from(tenant.dcr.pending_client_ttl_secs).unwrap_or(i64::MAX);
    Client {
        tenant: tenant.id.clone(),
        client_id: id.clone(),
        secret_hash: None,
        status: ClientStatus::Pending,
        created_by: CreatedByType::Cimd,
        consent_method: ConsentMethod::Required,
        created_at: now,
        expires_at: Some(now.saturating_add(lifetime)),
        approved_by: None,
        approved_at: None,
        registration_token_hash: None,
        // The same URL can come back after its client was deleted or expired. Consent is
        // recorded per configuration version, so each incarnation starts from a version no
        // earlier one can have reached (seconds since the epoch) and old consents never count.
        config_version: u32::try_from(now).unwrap_or(u32::MAX),
        metadata: doc.metadata,
        pending_changes: None,
        vendor_trust: None,
        document: Some(doc.state),
    }
}

/// A client with a freshly fetched document applied, by the same rule as every other change a
/// client makes to itself ([`Client::propose`]): an approved client's changes wait for an
/// administrator.
pub fn apply_document(client: Client, metadata: ClientMetadata, state: DocumentState) -> Client {
    let mut client = client.propose(metadata);
    client.document = Some(state);
    client
}

/// Fetches the document again now (stale cache, or an administrator asked) and stores the
/// result. A client approved or deleted meanwhile is re-read rather than overwritten.
pub async fn refresh(
    app: Sources<'_>,
    tenant: &Tenant,
    client: Client,
    now: UnixTime,
) -> Result<Client, ResolveError> {
    let doc = fetch_document(app, tenant, &client.client_id, now).await?;
    let updated = apply_document(client, doc.metadata, doc.state);
    match app.store.update_client(&updated, now).await {
        Ok(()) => Ok(updated),
        Err(StoreError::Conflict) => app
            .store
            .get_client(&tenant.id, &updated.client_id, now)
            .await?
            .ok_or(ResolveError::Store(StoreError::NotFound)),
        Err(e) => Err(e.into()),
    }
}

/// The client behind a URL `client_id` for an authorization request: the stored client while
/// its document is fresh; otherwise the document is fetched and validated first. An unknown
/// URL is recorded as a pending client (counted against the tenant's cap; `rate` is consulted
/// first, since this is the one path where an anonymous request makes Gatehouse fetch).
pub async fn resolve(
    app: Sources<'_>,
    tenant: &Tenant,
    id: &ClientId,
    stored: Option<Client>,
    now: UnixTime,
    rate: impl FnOnce() -> bool,
) -> Result<Client, ResolveError> {
    if let Some(client) = stored {
        if client.document.as_ref().is_some_and(|d| d.is_fresh(now)) {
            return Ok(client);
        }
        return refresh(app, tenant, client, now).await;
    }
    if !rate() {
        return Err(ResolveError::RateLimited);
    }
    let doc = fetch_document(app, tenant, id, now).await?;
    let client = new_pending(tenant, id, doc, now);
    let quota = crate::policy::pending_quota(&tenant.dcr, None);
    match app.store.create_pending_client(&client, quota, now).await {
        Ok(()) => {
            tracing::info!(client_id = %client.client_id, "recorded pending metadata-document client");
            Ok(client)
        }
        // Another request recorded it a moment ago.
        Err(StoreError::AlreadyExists) => app
            .store
            .get_client(&tenant.id, id, now)
            .await?
            .ok_or(ResolveError::Store(StoreError::NotFound)),
        Err(StoreError::PendingCapReached) => Err(ResolveError::CapReached {
            retry_after: crate::policy::retry_after(quota, now),
        }),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RedirectUri, TenantId};
    use serde_json::json;

    const URL: &str = "https://agent.example/oauth/client.json";

    fn id() -> ClientId {
        ClientId::parse(URL).expect("id")
    }

    fn tenant() -> Tenant {
        Tenant::new(TenantId::parse("demo").expect("tenant"), "Demo")
    }

    fn doc() -> Value {
        json!({
            "client_id": URL,
            "client_name": "Agent",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp:execute offline_access unknown:scope",
        })
    }

    fn check(v: &Value) -> Result<ClientMetadata, DocumentError> {
        let url = document_url(&id()).expect("url");
        validate_document(v.to_string().as_bytes(), &id(), &url, &tenant())
    }

    #[test]
    fn url_rules() {
        assert!(document_url(&id()).is_ok());
        assert!(document_url(&ClientId::parse("https://a.example/c?v=1").expect("id")).is_ok());
        for bad in [
            "https://a.example",
            "https://a.example/",
            "https://a.example/a/../c.json",
            "https://a.example/./c.json",
            "https://a.example/a/%2e%2e/c.json",
            "https://u:p@a.example/c.json",
            "https://a.example/c d",
        ] {
            match ClientId::parse(bad) {
                None => {}
                Some(id) => assert!(document_url(&id).is_err(), "{bad}"),
            }
        }
    }

    #[test]
    fn a_valid_document_becomes_public_client_metadata() {
        let m = check(&doc()).expect("valid");
        assert_eq!(m.client_name, "Agent");
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::None);
        // Unknown scopes dropped; a public client never holds offline_access.
        assert_eq!(m.scope.to_string(), "mcp:execute");
        let mut d = doc();
        d.as_object_mut()
            .expect("obj")
            .remove("token_endpoint_auth_method");
        d.as_object_mut().expect("obj").remove("client_name");
        d.as_object_mut().expect("obj").remove("scope");
        let m = check(&d).expect("defaults");
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(m.client_name, "agent.example");
        assert_eq!(m.scope.to_string(), "user_default mcp:execute");
    }

    #[test]
    fn invalid_documents_say_why() {
        let with = |k: &str, v: Value| {
            let mut d = doc();
            d[k] = v;
            d
        };
        let cases = [
            (
                with("client_id", json!("https://agent.example/other.json")),
                "client_id",
            ),
            (with("client_id", json!(format!("{URL}?x=1"))), "client_id"),
            (with("client_id", json!(5)), "client_id"),
            (with("client_secret", json!("s")), "client_secret"),
            (with("client_secret_expires_at", json!(0)), "client_secret"),
            (
                with("token_endpoint_auth_method", json!("client_secret_basic")),
                "token_endpoint_auth_method",
            ),
            (
                with("token_endpoint_auth_method", json!("private_key_jwt")),
                "token_endpoint_auth_method",
            ),
            (with("redirect_uris", json!([])), "redirect_uri"),
            (
                with("redirect_uris", json!(["javascript:alert(1)"])),
                "redirect_uri",
            ),
            (
                with("grant_types", json!(["client_credentials"])),
                "grant type",
            ),
            (json!([1, 2]), "JSON object"),
        ];
        for (d, needle) in cases {
            let err = check(&d).expect_err(needle).to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let mut d = doc();
        d.as_object_mut().expect("obj").remove("client_id");
        assert!(
            check(&d)
                .expect_err("no id")
                .to_string()
                .contains("client_id")
        );
        let url = document_url(&id()).expect("url");
        let err = validate_document(b"{", &id(), &url, &tenant()).expect_err("json");
        assert!(err.to_string().contains("JSON"));
    }

    #[test]
    fn freshness_is_bounded() {
        assert_eq!(freshness(None), 3600);
        assert_eq!(freshness(Some(0)), 300);
        assert_eq!(freshness(Some(10)), 300);
        assert_eq!(freshness(Some(600)), 600);
        assert_eq!(freshness(Some(u64::MAX)), 86_400);
    }

    fn approved_client() -> Client {
        let m = check(&doc()).expect("valid");
        let state = DocumentState {
            fetched_at: 0,
            fresh_until: 300,
        };
        let mut c = new_pending(&tenant(), &id(), Document { metadata: m, state }, 1000);
        c.status = ClientStatus::Approved;
        c.expires_at = None;
        c
    }

    #[test]
    fn changes_to_an_approved_document_wait_for_approval() {
        let client = approved_client();
        let state = DocumentState {
            fetched_at: 2000,
            fresh_until: 2300,
        };
        // Unchanged: nothing proposed.
        let same = apply_document(client.clone(), client.metadata.clone(), state.clone());
        assert_eq!(same.metadata, client.metadata);
        assert_eq!(same.pending_changes, None);
        // New name and redirect URI: proposed, approved values stay.
        let mut changed = client.metadata.clone();
        changed.client_name = "Agent v2".into();
        changed
            .redirect_uris
            .push(RedirectUri::parse("https://agent.example/cb2").expect("uri"));
        let pending_change = apply_document(client.clone(), changed.clone(), state.clone());
        assert_eq!(pending_change.metadata.client_name, "Agent");
        assert_eq!(pending_change.metadata.redirect_uris.len(), 1);
        let approved = pending_change.approve_changes().expect("changes");
        assert_eq!(approved.metadata, changed);
        assert_eq!(approved.config_version, client.config_version + 1);
        assert!(approved.approve_changes().is_none());
        // A dropped redirect URI stops working at once, with nothing to approve.
        let mut narrowed = client.metadata.clone();
        narrowed.redirect_uris.clear();
        narrowed
            .redirect_uris
            .push(RedirectUri::parse("https://agent.example/other").expect("uri"));
        let c = apply_document(client.clone(), narrowed, state);
        assert!(c.metadata.redirect_uris.is_empty());
        assert!(c.pending_changes.is_some());
    }
}
