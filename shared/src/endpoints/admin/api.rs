//! The admin API, `{issuer}/api/v1/…` (JSON). Contract: `docs/admin-api.md`.
//!
//! Pipeline per request: [`authenticate`](super::authenticate) → CSRF for cookie writes →
//! route → body checks → [`manage`](super::manage) validation → one conditional store write.

use super::filter::ClientFilter;
use super::manage::{self, ClientEdit, UserEdit};
use super::{Admin, AuthError, Via, authenticate, new_api_token};
use crate::app::App;
use crate::client_metadata;
use crate::context::Ctx;
use crate::crypto;
use crate::defaults::{ADMIN_TOKEN_DEFAULT_TTL_SECS, ADMIN_TOKEN_MAX_TTL_SECS};
use crate::domain::{
    Client, ClientId, ClientStatus, ConsentMethod, CreatedByType, Email, Tenant, UnixTime,
};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{self, Cache, Request, Response};
use crate::params::Params;
use crate::store::{StoreError, client_cursor};
use ::http::header::WWW_AUTHENTICATE;
use ::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

const REALM: &str = "gatehouse-admin";
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;
/// Clients read from the store per round while filling a filtered page.
const SCAN_BATCH: usize = 100;

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

fn ok(status: StatusCode, body: &Value) -> Result<Response, OAuthError> {
    Ok(http::json_response(status, body, Cache::NoStore))
}

fn no_content() -> Result<Response, OAuthError> {
    Ok(http::no_content())
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

fn not_found_client() -> OAuthError {
    OAuthError::not_found("no such client in this tenant")
}

fn store_write(e: StoreError) -> OAuthError {
    match e {
        StoreError::NotFound => not_found_client(),
        StoreError::Conflict => OAuthError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidRequest,
            "the client changed while you edited it (for example it was approved); read it again and retry",
        ),
        other => other.into(),
    }
}

/// `{issuer}/api/v1/{rest}`.
pub async fn handle(ctx: &Ctx<'_>, rest: &str, req: &Request) -> Result<Response, OAuthError> {
    let (app, tenant, now, issuer) = (ctx.app, ctx.tenant, ctx.now, &ctx.issuer);
    let segments: Vec<&str> = rest.split('/').collect();
    let allowed = allowed_methods(&segments).ok_or_else(|| {
        OAuthError::not_found("no such admin API endpoint; see docs/admin-api.md")
    })?;
    let method = req.method().clone();
    if !allowed.split(", ").any(|m| m == method.as_str()) {
        return Err(OAuthError::method_not_allowed(allowed));
    }
    let admin = authenticate(app, tenant, req, now)
        .await
        .map_err(auth_error)?;
    let writes = !matches!(method, Method::GET | Method::HEAD);
    if writes && !admin.csrf_ok(header(req, "x-csrf-token")) {
        return Err(csrf_refused());
    }
    match (method, segments.as_slice()) {
        (Method::GET, ["oauth-clients"]) => list_clients(app, tenant, req, now).await,
        (Method::POST, ["oauth-clients"]) => create_client(app, tenant, &admin, req, now).await,
        (Method::GET, ["oauth-clients", id]) => {
            let client = load_client(app, tenant, id, now).await?;
            ok(StatusCode::OK, &manage::client_view(&client))
        }
        (Method::PATCH, ["oauth-clients", id]) => {
            let edit = ClientEdit::from_json(&json_body(req)?)?;
            let client = edit_client(app, tenant, id, &edit, now).await?;
            ok(StatusCode::OK, &manage::client_view(&client))
        }
        (Method::DELETE, ["oauth-clients", id]) => {
            delete_client(app, tenant, id, now).await?;
            no_content()
        }
        (Method::POST, ["oauth-clients", id, "approve"]) => {
            let client = approve_client(app, tenant, &admin, id, None, now).await?;
            ok(StatusCode::OK, &manage::client_view(&client))
        }
        (Method::POST, ["oauth-clients", id, "refresh-metadata"]) => {
            let client = refresh_metadata(app, tenant, id, now).await?;
            ok(StatusCode::OK, &manage::client_view(&client))
        }
        (Method::GET, ["settings"]) => ok(StatusCode::OK, &manage::settings_view(tenant)),
        (Method::PATCH, ["settings"]) => {
            let updated = manage::apply_settings(tenant, &json_body(req)?)?;
            save_settings(app, &updated).await?;
            ok(StatusCode::OK, &manage::settings_view(&updated))
        }
        (Method::GET, ["users"]) => {
            let users = app.store.list_users(&tenant.id).await?;
            let data: Vec<Value> = users.iter().map(manage::user_view).collect();
            ok(StatusCode::OK, &json!({ "data": data }))
        }
        (Method::POST, ["users"]) => {
            let body = json_body(req)?;
            let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
            if let Some(k) = body
                .keys()
                .find(|k| !["email", "password", "role"].contains(&k.as_str()))
            {
                return Err(OAuthError::invalid_request(format!(
                    "unknown field {k:?}; a new user has email, password and role"
                )));
            }
            let user =
                manage::new_user(tenant, text("email"), text("password"), text("role"), now)?;
            add_user(app, &user).await?;
            ok(StatusCode::CREATED, &manage::user_view(&user))
        }
        (Method::GET, ["users", email]) => {
            let user = load_user(app, tenant, email).await?;
            ok(StatusCode::OK, &manage::user_view(&user))
        }
        (Method::PATCH, ["users", email]) => {
            let edit = UserEdit::from_json(&json_body(req)?)?;
            let user = edit_user(app, tenant, &admin, email, &edit).await?;
            ok(StatusCode::OK, &manage::user_view(&user))
        }
        (Method::GET, ["session"]) => match &admin.via {
            Via::Session { csrf } => ok(
                StatusCode::OK,
                &json!({
                    "email": admin.user.email.as_str(),
                    "role": admin.user.role.as_str(),
                    "csrf_token": csrf,
                    "issuer": issuer,
                }),
            ),
            Via::Token { .. } => Err(OAuthError::invalid_request(
                "this endpoint describes a browser session; it was called with an admin API token",
            )),
        },
        (Method::POST, ["tokens"]) => create_token(app, tenant, &admin, req, now).await,
        (Method::DELETE, ["tokens", "current"]) => match &admin.via {
            Via::Token { hash } => {
                app.store.delete_api_token(&tenant.id, hash).await?;
                tracing::info!(user_id = %admin.user.id, "admin API token revoked");
                no_content()
            }
            Via::Session { .. } => Err(OAuthError::invalid_request(
                "send the admin API token to revoke as Authorization: Bearer",
            )),
        },
        _ => Err(OAuthError::not_found("no such admin API endpoint")),
    }
}

fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    Some(match segments {
        ["oauth-clients"] | ["users"] => "GET, POST",
        ["oauth-clients", _] => "GET, PATCH, DELETE",
        ["oauth-clients", _, "approve" | "refresh-metadata"] => "POST",
        ["settings"] | ["users", _] => "GET, PATCH",
        ["session"] => "GET",
        ["tokens"] => "POST",
        ["tokens", "current"] => "DELETE",
        _ => return None,
    })
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

// ------------------------------------------------------------------ clients

async fn list_clients(
    app: &App,
    tenant: &Tenant,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
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
    let (clients, next) = filtered_page(app, tenant, &filter, cursor, limit, now).await?;
    let data: Vec<Value> = clients.iter().map(manage::client_view).collect();
    let mut body = json!({ "data": data });
    if let Some(next) = next {
        body["next_cursor"] = Value::String(URL_SAFE_NO_PAD.encode(next));
    }
    ok(StatusCode::OK, &body)
}

/// Fills one page of clients the filter lists, reading the store in batches.
pub async fn filtered_page(
    app: &App,
    tenant: &Tenant,
    filter: &ClientFilter,
    cursor: Option<String>,
    limit: usize,
    now: UnixTime,
) -> Result<(Vec<Client>, Option<String>), OAuthError> {
    let mut out: Vec<Client> = Vec::new();
    let mut after = cursor;
    loop {
        let (batch, next) = app
            .store
            .list_clients_page(&tenant.id, after.as_deref(), SCAN_BATCH, now)
            .await?;
        for client in batch.into_iter().filter(|c| filter.lists(c)) {
            if out.len() == limit {
                let cursor = out.last().map(client_cursor);
                return Ok((out, cursor));
            }
            out.push(client);
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok((out, None)),
        }
    }
}

fn decode_cursor(raw: &str) -> Result<String, OAuthError> {
    let bad =
        || OAuthError::invalid_request("cursor is malformed; use next_cursor from a previous page");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (time, id) = text.split_once('#').ok_or_else(bad)?;
    let shaped = time.len() == 12
        && time.bytes().all(|b| b.is_ascii_digit())
        && ClientId::parse(id).is_some();
    if shaped { Ok(text) } else { Err(bad()) }
}

pub async fn load_client(
    app: &App,
    tenant: &Tenant,
    raw_id: &str,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let id = client_id(raw_id)?;
    app.store
        .get_client(&tenant.id, &id, now)
        .await?
        .ok_or_else(not_found_client)
}

/// A client id from a path segment: percent-decoded, since a metadata-document client's id is
/// a URL (`/oauth-clients/https%3A%2F%2Fapp.example%2Fclient.json`).
fn client_id(raw_id: &str) -> Result<ClientId, OAuthError> {
    let decoded = percent_encoding::percent_decode_str(raw_id)
        .decode_utf8()
        .map_err(|_| not_found_client())?;
    ClientId::parse(&decoded).ok_or_else(not_found_client)
}

/// Approves a pending client (any kind: the API counterpart of the consent page's approval
/// and of `gatehouse clients approve`), or the pending changes of an approved client (RFC 7592
/// update, changed metadata document). `409` when there is nothing to approve. The approval
/// is of the configuration read here: a client that changes itself meanwhile is not approved.
pub async fn approve_client(
    app: &App,
    tenant: &Tenant,
    admin: &Admin,
    raw_id: &str,
    shown: Option<&str>,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let client = load_client(app, tenant, raw_id, now).await?;
    if shown
        .is_some_and(|digest| !crate::crypto::constant_time_eq(digest, &client.approval_digest()))
    {
        return Err(OAuthError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidRequest,
            "the client changed since this page was shown; nothing was approved: review it again",
        ));
    }
    let nothing = || {
        OAuthError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidRequest,
            "the client is approved and has no changes awaiting approval",
        )
    };
    if client.status == ClientStatus::Pending {
        let approved = app
            .store
            .approve_client(
                &tenant.id,
                &client.client_id,
                client.config_version,
                &admin.user.id,
                now,
            )
            .await
            .map_err(store_write)?;
        tracing::info!(client_id = %approved.client_id, approved_by = %admin.user.id, "approved client");
        return Ok(approved);
    }
    let updated = client.approve_changes().ok_or_else(nothing)?;
    app.store
        .update_approved_client(&updated, now)
        .await
        .map_err(store_write)?;
    tracing::info!(
        client_id = %updated.client_id,
        approved_by = %admin.user.id,
        config_version = updated.config_version,
        "approved client changes"
    );
    Ok(updated)
}

/// Fetches a metadata-document client's document now (the administrator's "check again"),
/// whatever its cache says. Changes to an approved client become `pending_changes`.
pub async fn refresh_metadata(
    app: &App,
    tenant: &Tenant,
    raw_id: &str,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let client = load_client(app, tenant, raw_id, now).await?;
    if client.document.is_none() {
        return Err(OAuthError::invalid_request(
            "only clients identified by a metadata document (createdByType cimd) have a document to fetch",
        ));
    }
    crate::cimd::refresh(app.documents(), tenant, client, now)
        .await
        .map_err(|e| match e {
            crate::cimd::ResolveError::Store(e) => store_write(e),
            crate::cimd::ResolveError::Document(doc) => OAuthError::new(
                if doc.is_upstream() {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::BAD_REQUEST
                },
                ErrorCode::InvalidClientMetadata,
                doc.to_string(),
            ),
            other => OAuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::InvalidRequest,
                other.to_string(),
            ),
        })
}

pub async fn edit_client(
    app: &App,
    tenant: &Tenant,
    raw_id: &str,
    edit: &ClientEdit,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let client = load_client(app, tenant, raw_id, now).await?;
    let updated = edit.apply(&client, tenant)?;
    if updated != client {
        // An approved client's configuration changes with its approval record (admin only).
        let written = if updated.status == ClientStatus::Approved {
            app.store.update_approved_client(&updated, now).await
        } else {
            app.store.update_client(&updated, now).await
        };
        written.map_err(store_write)?;
        tracing::info!(
            client_id = %client.client_id,
            consent_method = updated.consent_method.as_str(),
            config_version = updated.config_version,
            "client edited by an administrator"
        );
    }
    Ok(updated)
}

pub async fn delete_client(
    app: &App,
    tenant: &Tenant,
    raw_id: &str,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let id = client_id(raw_id)?;
    app.store
        .delete_client(&tenant.id, &id, now)
        .await
        .map_err(store_write)?;
    tracing::info!(client_id = %id, "client deleted; its grants are revoked");
    Ok(())
}

/// What an administrator may send to create a client (plus `consentMethod`).
const MANUAL_CLIENT_FIELDS: &[&str] = &[
    "client_name",
    "redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "application_type",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
    "contacts",
];

/// A client created by an administrator ("bring your own client"): approved at once,
/// `createdByType: user`. General RFC 7591 validation applies; the DCR switches (on/off,
/// allowed methods, `client_uri` rule) do not — they limit anonymous registrants.
async fn create_client(
    app: &App,
    tenant: &Tenant,
    admin: &Admin,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let mut doc = json_body(req)?;
    let consent = match doc.remove("consentMethod") {
        None | Some(Value::Null) => ConsentMethod::Required,
        Some(Value::String(raw)) => ConsentMethod::parse(&raw).ok_or_else(|| {
            OAuthError::invalid_request("consentMethod must be \"required\" or \"trusted\"")
        })?,
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "consentMethod must be a string",
            ));
        }
    };
    // Unlike anonymous registration (RFC 7591 ignores unknown metadata), an administrator's
    // typo should not pass silently.
    for key in doc.keys() {
        if !MANUAL_CLIENT_FIELDS.contains(&key.as_str()) {
            return Err(OAuthError::invalid_request(format!(
                "{key} cannot be set on a new client (server-assigned or unknown); fields are {}",
                MANUAL_CLIENT_FIELDS.join(", ")
            )));
        }
    }
    let requested = client_metadata::validate(&doc)?;
    let method = requested.token_endpoint_auth_method;
    let mut settings = tenant.dcr.clone();
    settings.allowed_auth_methods = crate::domain::AuthMethod::ALL.to_vec();
    settings.require_client_uri = false;
    let metadata = crate::policy::apply_dcr_policy(requested, &settings)?;
    let secret = method.is_confidential().then(crypto::new_secret);
    let client = Client {
        tenant: tenant.id.clone(),
        client_id: ClientId::generate(),
        secret_hash: secret.as_deref().map(crypto::hash_secret),
        status: ClientStatus::Approved,
        created_by: CreatedByType::User,
        consent_method: consent,
        created_at: now,
        expires_at: None,
        approved_by: Some(admin.user.id.clone()),
        approved_at: Some(now),
        registration_token_hash: None,
        config_version: 1,
        metadata,
        document: None,
        pending_changes: None,
    };
    app.store.create_client(&client).await?;
    tracing::info!(client_id = %client.client_id, "client created by an administrator");
    let mut body = manage::client_view(&client);
    if let Some(secret) = secret {
        body["client_secret"] = Value::String(secret);
        body["client_secret_expires_at"] = 0.into();
    }
    ok(StatusCode::CREATED, &body)
}

// ------------------------------------------------------------------ settings and users

pub async fn save_settings(app: &App, tenant: &Tenant) -> Result<(), OAuthError> {
    app.store.put_tenant(tenant).await?;
    app.invalidate_tenant(&tenant.id);
    tracing::info!(tenant = %tenant.id, "tenant settings changed");
    Ok(())
}

pub async fn add_user(app: &App, user: &crate::domain::User) -> Result<(), OAuthError> {
    match app.store.create_user(user).await {
        Ok(()) => {
            tracing::info!(user_id = %user.id, "user added");
            Ok(())
        }
        Err(StoreError::AlreadyExists) => Err(OAuthError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidRequest,
            "a user with this email already exists",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn load_user(
    app: &App,
    tenant: &Tenant,
    raw_email: &str,
) -> Result<crate::domain::User, OAuthError> {
    let decoded = percent_encoding::percent_decode_str(raw_email).decode_utf8_lossy();
    let email = Email::parse(&decoded).ok_or_else(|| OAuthError::not_found("no such user"))?;
    app.store
        .get_user(&tenant.id, &email)
        .await?
        .ok_or_else(|| OAuthError::not_found("no such user"))
}

pub async fn edit_user(
    app: &App,
    tenant: &Tenant,
    admin: &Admin,
    raw_email: &str,
    edit: &UserEdit,
) -> Result<crate::domain::User, OAuthError> {
    let user = load_user(app, tenant, raw_email).await?;
    let updated = edit.apply(&user, &admin.user)?;
    app.store.put_user(&updated).await?;
    tracing::info!(
        user_id = %updated.id,
        role = updated.role.as_str(),
        disabled = updated.disabled,
        password_changed = edit.password.is_some(),
        "user edited by an administrator"
    );
    Ok(updated)
}

async fn create_token(
    app: &App,
    tenant: &Tenant,
    admin: &Admin,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    if !matches!(admin.via, Via::Session { .. }) {
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::AccessDenied,
            "admin API tokens are created from a signed-in administrator's session (or with the operator CLI)",
        ));
    }
    let body = if req.body().is_empty() {
        Map::new()
    } else {
        json_body(req)?
    };
    let name = match body.get("name") {
        None | Some(Value::Null) => "api".to_owned(),
        Some(Value::String(s)) => manage::display_text(s, 100)
            .map_err(|e| OAuthError::invalid_request(format!("name {e}")))?,
        Some(_) => return Err(OAuthError::invalid_request("name must be a string")),
    };
    let lifetime = match body.get("expires_in") {
        None | Some(Value::Null) => ADMIN_TOKEN_DEFAULT_TTL_SECS,
        Some(v) => v
            .as_i64()
            .filter(|s| (60..=ADMIN_TOKEN_MAX_TTL_SECS).contains(s))
            .ok_or_else(|| {
                OAuthError::invalid_request(format!(
                    "expires_in must be from 60 to {ADMIN_TOKEN_MAX_TTL_SECS} seconds"
                ))
            })?,
    };
    if let Some(k) = body
        .keys()
        .find(|k| !["name", "expires_in"].contains(&k.as_str()))
    {
        return Err(OAuthError::invalid_request(format!("unknown field {k:?}")));
    }
    let (record, token) = new_api_token(&tenant.id, &admin.user, &name, lifetime, now);
    app.store.create_api_token(&record).await?;
    tracing::info!(user_id = %admin.user.id, "admin API token created");
    ok(
        StatusCode::CREATED,
        &json!({ "token": token, "token_type": "Bearer", "expires_at": record.expires_at, "name": name }),
    )
}
