//! The admin API, `{issuer}/api/v1/…` (JSON). Contract: `docs/admin-api.md`.
//!
//! Pipeline per request: route ([`allowed_methods`], [`route`]) → [`authenticate`] → CSRF for
//! cookie writes → body (serde structs of [`api_body`] and [`manage`](super::manage)) →
//! [`service`] operation → JSON view.

use super::api_body::{
    self, NEW_CLIENT_FIELDS, NewClientConsent, NewClientMetadata, NewToken, NewUser,
};
use super::body;
use super::filter::ClientFilter;
use super::manage::{ClientEdit, SettingsPatch, UserEdit, settings_view};
use super::{Admin, AuthError, Via, audit, authenticate, service, trusts};
use crate::client_metadata;
use crate::context::Ctx;
use crate::domain::{AccessRequest, Client, ClientId, ClientStatus, Requester, User, VendorTrust};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{self, Cache, Request, Response};
use crate::params::Params;
use ::http::header::WWW_AUTHENTICATE;
use ::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

const REALM: &str = "gatehouse-admin";
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;

pub fn auth_error(e: AuthError) -> OAuthError {
    match e {
        AuthError::Unauthenticated { presented } => {
            let challenge = if presented {
                format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"the credential is invalid or expired\""
                )
            } else {
                format!("Bearer realm=\"{REALM}\"")
            };
            OAuthError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidToken,
                "an administrator's session or admin API token is required",
            )
            .with_header(WWW_AUTHENTICATE, challenge)
        }
        AuthError::ForeignTenant => OAuthError::not_found("no such resource"),
        AuthError::NotAdmin => OAuthError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::AccessDenied,
            "the administrator role is required",
        ),
        AuthError::Store(e) => e.into(),
    }
}

fn csrf_refused() -> OAuthError {
    OAuthError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::AccessDenied,
        "missing or invalid X-CSRF-Token header (GET {issuer}/api/v1/session returns it)",
    )
}

type Answer = Result<Response, OAuthError>;

fn ok(status: StatusCode, body: &Value) -> Answer {
    Ok(http::json_response(status, body, Cache::NoStore))
}

fn json_body(req: &Request) -> Result<Map<String, Value>, OAuthError> {
    http::check_json_body(req, "the body")?;
    match serde_json::from_slice::<Value>(req.body()) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(OAuthError::invalid_request(
            "the body must be a JSON object",
        )),
        Err(e) => Err(OAuthError::invalid_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

// ------------------------------------------------------------------ routing

/// What a method and path under `/api/v1/` ask for; path parameters are raw segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'p> {
    ListClients,
    CreateClient,
    GetClient(&'p str),
    PatchClient(&'p str),
    DeleteClient(&'p str),
    ApproveClient(&'p str),
    RejectClient(&'p str),
    ListTrusts,
    RevokeTrust(&'p str),
    RefreshMetadata(&'p str),
    AuditEvents,
    GetSettings,
    PatchSettings,
    ListUsers,
    AddUser,
    GetUser(&'p str),
    PatchUser(&'p str),
    Session,
    CreateToken,
    RevokeToken,
    /// A path and method [`allowed_methods`] let through that no operation serves.
    Unknown,
}

/// The methods a path accepts (`Allow` of a `405`); `None`: no such endpoint (`404`).
fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    Some(match segments {
        ["oauth-clients"] | ["users"] => "GET, POST",
        ["oauth-clients", _] => "GET, PATCH, DELETE",
        [
            "oauth-clients",
            _,
            "approve" | "reject" | "refresh-metadata",
        ] => "POST",
        ["audit-events"] | ["vendor-trusts"] => "GET",
        ["vendor-trusts", _] => "DELETE",
        ["settings"] | ["users", _] => "GET, PATCH",
        ["session"] => "GET",
        ["tokens"] => "POST",
        ["tokens", "current"] => "DELETE",
        _ => return None,
    })
}

fn route<'p>(method: &Method, segments: &[&'p str]) -> Op<'p> {
    match (method.clone(), segments) {
        (Method::GET, ["oauth-clients"]) => Op::ListClients,
        (Method::POST, ["oauth-clients"]) => Op::CreateClient,
        (Method::GET, ["oauth-clients", id]) => Op::GetClient(id),
        (Method::PATCH, ["oauth-clients", id]) => Op::PatchClient(id),
        (Method::DELETE, ["oauth-clients", id]) => Op::DeleteClient(id),
        (Method::POST, ["oauth-clients", id, "approve"]) => Op::ApproveClient(id),
        (Method::POST, ["oauth-clients", id, "reject"]) => Op::RejectClient(id),
        (Method::POST, ["oauth-clients", id, "refresh-metadata"]) => Op::RefreshMetadata(id),
        (Method::GET, ["audit-events"]) => Op::AuditEvents,
        (Method::GET, ["vendor-trusts"]) => Op::ListTrusts,
        (Method::DELETE, ["vendor-trusts", id]) => Op::RevokeTrust(id),
        (Method::GET, ["settings"]) => Op::GetSettings,
        (Method::PATCH, ["settings"]) => Op::PatchSettings,
        (Method::GET, ["users"]) => Op::ListUsers,
        (Method::POST, ["users"]) => Op::AddUser,
        (Method::GET, ["users", email]) => Op::GetUser(email),
        (Method::PATCH, ["users", email]) => Op::PatchUser(email),
        (Method::GET, ["session"]) => Op::Session,
        (Method::POST, ["tokens"]) => Op::CreateToken,
        (Method::DELETE, ["tokens", "current"]) => Op::RevokeToken,
        _ => Op::Unknown,
    }
}

/// `{issuer}/api/v1/{rest}`. An unknown path (`404`) or method (`405`) is answered before the
/// credential is checked.
pub async fn handle(ctx: &Ctx<'_>, rest: &str, req: &Request) -> Answer {
    let segments: Vec<&str> = rest.split('/').collect();
    let allowed = allowed_methods(&segments).ok_or_else(|| {
        OAuthError::not_found("no such admin API endpoint; see docs/admin-api.md")
    })?;
    let method = req.method();
    if !allowed.split(", ").any(|m| m == method.as_str()) {
        return Err(OAuthError::method_not_allowed(allowed));
    }
    let admin = authenticate(ctx.app, ctx.tenant, req, ctx.now)
        .await
        .map_err(auth_error)?;
    let writes = !matches!(*method, Method::GET | Method::HEAD);
    if writes && !admin.csrf_ok(header(req, "x-csrf-token")) {
        return Err(csrf_refused());
    }
    run(ctx, &admin, req, route(method, &segments)).await
}

async fn run(ctx: &Ctx<'_>, admin: &Admin, req: &Request, op: Op<'_>) -> Answer {
    match op {
        Op::ListClients => list_clients(ctx, req).await,
        Op::CreateClient => create_client(ctx, admin, req).await,
        Op::GetClient(id) => get_client(ctx, id).await,
        Op::PatchClient(id) => {
            let edit = ClientEdit::from_json(&json_body(req)?)?;
            client(
                StatusCode::OK,
                &service::edit_client(ctx, admin, id, &edit).await?,
            )
        }
        Op::DeleteClient(id) => {
            service::delete_client(ctx, admin, id).await?;
            Ok(http::no_content())
        }
        Op::ApproveClient(id) => approve_client(ctx, admin, req, id).await,
        Op::RejectClient(id) => {
            service::reject_client(ctx, admin, id).await?;
            Ok(http::no_content())
        }
        Op::AuditEvents => audit_events(ctx, req).await,
        Op::ListTrusts => {
            let trusts = trusts::list(ctx).await?;
            ok(StatusCode::OK, &json!({ "data": trusts }))
        }
        Op::RevokeTrust(id) => {
            trusts::revoke(ctx, admin, id).await?;
            Ok(http::no_content())
        }
        Op::RefreshMetadata(id) => {
            client(StatusCode::OK, &service::refresh_metadata(ctx, id).await?)
        }
        Op::GetSettings => ok(StatusCode::OK, &settings_view(ctx.tenant)),
        Op::PatchSettings => {
            let updated = SettingsPatch::from_object(&json_body(req)?)?.apply(ctx.tenant);
            service::save_settings(ctx, admin, &updated).await?;
            ok(StatusCode::OK, &settings_view(&updated))
        }
        Op::ListUsers => {
            let users = service::list_users(ctx).await?;
            let data: Vec<Value> = users.iter().map(user_view).collect();
            ok(StatusCode::OK, &json!({ "data": data }))
        }
        Op::AddUser => add_user(ctx, admin, req).await,
        Op::GetUser(email) => user(StatusCode::OK, &service::load_user(ctx, email).await?),
        Op::PatchUser(email) => {
            let edit = UserEdit::from_json(&json_body(req)?)?;
            user(
                StatusCode::OK,
                &service::edit_user(ctx, admin, email, &edit).await?,
            )
        }
        Op::Session => session(ctx, admin),
        Op::CreateToken => create_token(ctx, admin, req).await,
        Op::RevokeToken => {
            service::revoke_current_token(ctx, admin).await?;
            Ok(http::no_content())
        }
        Op::Unknown => Err(OAuthError::not_found("no such admin API endpoint")),
    }
}

// ------------------------------------------------------------------ clients

async fn list_clients(ctx: &Ctx<'_>, req: &Request) -> Answer {
    let q = Params::parse(req.uri().query().unwrap_or("").as_bytes())
        .map_err(|e| OAuthError::invalid_request(e.describe()))?;
    let single = |name: &'static str| {
        q.single(name)
            .map_err(|e| OAuthError::invalid_request(e.describe()))
    };
    let filter = match single("filter")? {
        Some(raw) => {
            ClientFilter::parse(raw).map_err(|e| OAuthError::invalid_request(e.to_string()))?
        }
        None => ClientFilter::default(),
    };
    let limit = match single("limit")? {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                OAuthError::invalid_request(format!("limit must be a number from 1 to {MAX_PAGE}"))
            })?,
    };
    let cursor = single("cursor")?.map(decode_cursor).transpose()?;
    let (clients, next) = service::filtered_page(ctx, &filter, cursor, limit).await?;
    let asked = service::requests_by_client(ctx, &clients).await?;
    let data: Vec<Value> = clients
        .iter()
        .map(|c| {
            let requests = asked.get(&c.client_id).map_or(&[][..], Vec::as_slice);
            with_requests(client_view(c), requests)
        })
        .collect();
    let mut body = json!({ "data": data });
    if let Some(next) = next {
        body["next_cursor"] = Value::String(super::encode_cursor(&next));
    }
    ok(StatusCode::OK, &body)
}

/// A `cursor` parameter of the client list: the store's [`crate::store::client_cursor`].
fn decode_cursor(raw: &str) -> Result<String, OAuthError> {
    super::decode_cursor(raw, |id| ClientId::parse(id).is_some())
}

/// `POST …/oauth-clients`: `consentMethod` is judged first, then the RFC 7591 fields an
/// administrator may set ([`NewClientMetadata`]), then the registration validator.
async fn create_client(ctx: &Ctx<'_>, admin: &Admin, req: &Request) -> Answer {
    let doc = json_body(req)?;
    let invalid = |e: body::BodyError| {
        e.into_oauth(|key| {
            format!(
                "{key} cannot be set on a new client (server-assigned or unknown); fields are {}",
                NEW_CLIENT_FIELDS.join(", ")
            )
        })
    };
    let NewClientConsent { consent } = body::from_object(&doc).map_err(invalid)?;
    let metadata: NewClientMetadata = body::from_object(&doc).map_err(invalid)?;
    let requested = client_metadata::validate(&body::to_object(&metadata))?;
    let (created, secret) = service::create_client(ctx, admin, requested, consent).await?;
    let mut view = client_view(&created);
    if let Some(secret) = secret {
        view["client_secret"] = Value::String(secret);
        view["client_secret_expires_at"] = 0.into();
    }
    ok(StatusCode::CREATED, &view)
}

async fn get_client(ctx: &Ctx<'_>, id: &str) -> Answer {
    let found = service::load_client(ctx, id).await?;
    // Requests outlive an approval until their expiry; they concern pending clients.
    let requests = if found.status == ClientStatus::Pending {
        ctx.access_requests(&found).await
    } else {
        Vec::new()
    };
    ok(
        StatusCode::OK,
        &with_requests(client_view(&found), &requests),
    )
}

/// `POST …/approve`: the client as approved, and the id of the vendor trust the approval
/// created when the body asked for one.
async fn approve_client(ctx: &Ctx<'_>, admin: &Admin, req: &Request, id: &str) -> Answer {
    let trust = approve_body(req)?;
    let approved = service::approve_client(ctx, admin, id, None, trust).await?;
    let mut view = client_view(&approved);
    if trust {
        view["vendor_trust_created"] = VendorTrust::id_of(&approved.metadata).into();
    }
    ok(StatusCode::OK, &view)
}

/// `POST …/approve`'s optional body: `{"trust_vendor": true}` also trusts the application's
/// future registrations. No body (or `{}`) approves only.
fn approve_body(req: &Request) -> Result<bool, OAuthError> {
    if req.body().is_empty() {
        return Ok(false);
    }
    let body = json_body(req)?;
    if let Some(name) = body.keys().find(|k| *k != "trust_vendor") {
        return Err(OAuthError::invalid_request(format!(
            "unknown field {name:?}; the only field is trust_vendor"
        )));
    }
    match body.get("trust_vendor") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(OAuthError::invalid_request(
            "trust_vendor must be true or false",
        )),
    }
}

/// A pending client's view with the users who asked an administrator for it (absent when
/// nobody did).
fn with_requests(mut view: Value, requests: &[AccessRequest]) -> Value {
    if !requests.is_empty() {
        let asked: Vec<&Requester> = requests.iter().map(|r| &r.requester).collect();
        view["access_requests"] = json!(asked);
    }
    view
}

/// `GET …/audit-events`: one page of the audit trail, newest first (`docs/admin-api.md`).
async fn audit_events(ctx: &Ctx<'_>, req: &Request) -> Answer {
    let query = audit::AuditQuery::parse(req.uri().query().unwrap_or(""))?;
    let (events, next) = audit::page(ctx, &query).await?;
    let mut body = json!({ "data": events });
    if let Some(next) = next {
        body["next_cursor"] = Value::String(super::encode_cursor(&next));
    }
    ok(StatusCode::OK, &body)
}

fn client(status: StatusCode, c: &Client) -> Answer {
    ok(status, &client_view(c))
}

/// The client as the admin API shows it: metadata and state, never a secret or a hash.
fn client_view(client: &Client) -> Value {
    let mut v = serde_json::to_value(&client.metadata).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut v {
        map.insert("client_id".into(), client.client_id.as_str().into());
        map.insert("createdByType".into(), client.created_by.as_str().into());
        map.insert("status".into(), client.status.as_str().into());
        map.insert(
            "consentMethod".into(),
            client.consent_method.as_str().into(),
        );
        map.insert("created_at".into(), client.created_at.into());
        map.insert("config_version".into(), client.config_version.into());
        if let Some(exp) = client.expires_at {
            map.insert("expires_at".into(), exp.into());
        }
        if let Some(at) = client.approved_at {
            map.insert("approved_at".into(), at.into());
        }
        if let Some(by) = &client.approved_by {
            map.insert("approved_by".into(), by.as_str().into());
        }
        if let Some(trust) = &client.vendor_trust {
            map.insert("vendor_trust".into(), trust.as_str().into());
        }
        if let Some(doc) = &client.document {
            map.insert(
                "metadata_document".into(),
                json!({
                    "url": client.client_id.as_str(),
                    "fetched_at": doc.fetched_at,
                    "fresh_until": doc.fresh_until,
                }),
            );
        }
        if let Some(proposed) = &client.pending_changes {
            map.insert(
                "pending_changes".into(),
                serde_json::to_value(proposed).unwrap_or_else(|_| json!({})),
            );
        }
    }
    v
}

// ------------------------------------------------------------------ users, session, tokens

async fn add_user(ctx: &Ctx<'_>, admin: &Admin, req: &Request) -> Answer {
    let body: NewUser = body::from_object(&json_body(req)?).map_err(|e| {
        e.into_oauth(|key| {
            format!("unknown field {key:?}; a new user has email, password, role and name")
        })
    })?;
    let name = body
        .name
        .map(crate::endpoints::admin::manage::user_name)
        .transpose()
        .map_err(OAuthError::invalid_request)?
        .flatten();
    let added =
        service::add_user(ctx, admin, &body.email, &body.password, &body.role, name).await?;
    user(StatusCode::CREATED, &added)
}

fn user(status: StatusCode, u: &User) -> Answer {
    ok(status, &user_view(u))
}

fn user_view(user: &User) -> Value {
    let mut view = json!({
        "id": user.id,
        "email": user.email.as_str(),
        "role": user.role.as_str(),
        "disabled": user.disabled,
        "created_at": user.created_at,
    });
    if let (Some(name), Value::Object(map)) = (&user.name, &mut view) {
        map.insert("name".into(), name.as_str().into());
    }
    view
}

/// `GET …/session`: who is signed in and the CSRF token the session's writes need.
fn session(ctx: &Ctx<'_>, admin: &Admin) -> Answer {
    match &admin.via {
        Via::Session { csrf } => ok(
            StatusCode::OK,
            &json!({
                "email": admin.user.email.as_str(),
                "role": admin.user.role.as_str(),
                "csrf_token": csrf,
                "issuer": ctx.issuer,
            }),
        ),
        Via::Token { .. } => Err(OAuthError::invalid_request(
            "this endpoint describes a browser session; it was called with an admin API token",
        )),
    }
}

/// `POST …/tokens`: the caller must be a session before the body is read; an empty body asks
/// for the defaults.
async fn create_token(ctx: &Ctx<'_>, admin: &Admin, req: &Request) -> Answer {
    service::may_create_token(admin)?;
    let doc = if req.body().is_empty() {
        Map::new()
    } else {
        json_body(req)?
    };
    let (body, unknown): (NewToken, _) = api_body::known_first(&doc)
        .map_err(|e| e.into_oauth(|key| format!("unknown field {key:?}")))?;
    let name = body.name.map_err(OAuthError::invalid_request)?;
    let lifetime = body.expires_in.map_err(OAuthError::invalid_request)?;
    if let Some(key) = unknown {
        return Err(OAuthError::invalid_request(format!(
            "unknown field {key:?}"
        )));
    }
    let (record, token) = service::create_token(ctx, admin, &name, lifetime).await?;
    ok(
        StatusCode::CREATED,
        &json!({ "token": token, "token_type": "Bearer", "expires_at": record.expires_at, "name": name }),
    )
}
