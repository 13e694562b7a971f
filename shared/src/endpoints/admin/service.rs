//! The administrator's operations, shared by the admin API (`api.rs`, JSON) and the console
//! (`console.rs`, forms and pages): each takes the request context and typed inputs, checks them
//! with [`manage`](super::manage), makes at most one conditional store write, and returns the
//! domain value or the error both front ends render their own way.

use super::filter::ClientFilter;
use super::manage::{self, ClientEdit, UserEdit};
use super::{Admin, Via, new_api_token};
use crate::client_metadata::RequestedMetadata;
use crate::context::Ctx;
use crate::crypto;
use crate::domain::{
    ApiToken, AuthMethod, Client, ClientId, ClientStatus, ConsentMethod, CreatedByType, Email,
    EventType, Tenant, User,
};
use crate::error::{ErrorCode, OAuthError};
use crate::store::{StoreError, client_cursor};
use ::http::StatusCode;

/// Clients read from the store per round while filling a filtered page.
const SCAN_BATCH: usize = 100;

fn not_found_client() -> OAuthError {
    OAuthError::not_found("no such client in this tenant")
}

fn conflict(description: &'static str) -> OAuthError {
    OAuthError::new(StatusCode::CONFLICT, ErrorCode::InvalidRequest, description)
}

/// A failed conditional write: gone (`404`) or changed meanwhile (`409`).
fn store_write(e: StoreError) -> OAuthError {
    match e {
        StoreError::NotFound => not_found_client(),
        StoreError::Conflict => conflict(
            "the client changed while you edited it (for example it was approved); read it again and retry",
        ),
        other => other.into(),
    }
}

// ------------------------------------------------------------------ clients

/// Fills one page of clients the filter lists, reading the store in batches; the cursor of the
/// next page when there is one.
pub async fn filtered_page(
    ctx: &Ctx<'_>,
    filter: &ClientFilter,
    cursor: Option<String>,
    limit: usize,
) -> Result<(Vec<Client>, Option<String>), OAuthError> {
    let mut out: Vec<Client> = Vec::new();
    let mut after = cursor;
    loop {
        let (batch, next) = ctx
            .app
            .store
            .list_clients_page(&ctx.tenant.id, after.as_deref(), SCAN_BATCH, ctx.now)
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

/// The live access requests for each of `clients` that are pending, made since each was
/// registered, in one read of the tenant's requests (nothing is read when none is pending).
pub async fn requests_by_client(
    ctx: &Ctx<'_>,
    clients: &[Client],
) -> Result<std::collections::HashMap<ClientId, Vec<crate::domain::AccessRequest>>, OAuthError> {
    let mut out: std::collections::HashMap<ClientId, Vec<_>> = std::collections::HashMap::new();
    let pending: std::collections::HashMap<&ClientId, &Client> = clients
        .iter()
        .filter(|c| c.status == ClientStatus::Pending)
        .map(|c| (&c.client_id, c))
        .collect();
    if pending.is_empty() {
        return Ok(out);
    }
    let requests = ctx
        .app
        .store
        .list_access_requests(&ctx.tenant.id, None, ctx.now)
        .await?;
    for request in requests {
        if let Some(client) = pending.get(&request.client_id)
            && request.requester.requested_at >= client.created_at
        {
            out.entry(request.client_id.clone())
                .or_default()
                .push(request);
        }
    }
    Ok(out)
}

/// A client id from a path segment: percent-decoded, since a metadata-document client's id is
/// a URL (`/oauth-clients/https%3A%2F%2Fapp.example%2Fclient.json`).
fn client_id(raw_id: &str) -> Result<ClientId, OAuthError> {
    let decoded = percent_encoding::percent_decode_str(raw_id)
        .decode_utf8()
        .map_err(|_| not_found_client())?;
    ClientId::parse(&decoded).ok_or_else(not_found_client)
}

/// The client a path segment names (pending ones too); `404` when unknown, expired or not this
/// tenant's.
pub async fn load_client(ctx: &Ctx<'_>, raw_id: &str) -> Result<Client, OAuthError> {
    let id = client_id(raw_id)?;
    ctx.app
        .store
        .get_client(&ctx.tenant.id, &id, ctx.now)
        .await?
        .ok_or_else(not_found_client)
}

/// Approves a pending client (any kind: the API counterpart of the consent page's approval
/// and of `gatehouse clients approve`), or the pending changes of an approved client (RFC 7592
/// update, changed metadata document). `409` when there is nothing to approve. The approval
/// is of the configuration read here: a client that changes itself meanwhile is not approved.
/// `shown`: the [`Client::approval_digest`] of the configuration the administrator saw (the
/// console's page); `409` when the client no longer matches it.
/// `trust`: also trust the application's future registrations ([`crate::domain::VendorTrust`];
/// a pending client only, `400` before anything is approved when it cannot found one).
pub async fn approve_client(
    ctx: &Ctx<'_>,
    admin: &Admin,
    raw_id: &str,
    shown: Option<&str>,
    trust: bool,
) -> Result<Client, OAuthError> {
    let client = load_client(ctx, raw_id).await?;
    if trust {
        if client.status != ClientStatus::Pending {
            return Err(OAuthError::invalid_request(
                "only the approval of a pending client can trust its application",
            ));
        }
        crate::trust::check_eligible(&client)?;
    }
    if shown.is_some_and(|digest| !crypto::constant_time_eq(digest, &client.approval_digest())) {
        return Err(conflict(
            "the client changed since this page was shown; nothing was approved: review it again",
        ));
    }
    if client.status == ClientStatus::Pending {
        let approved = ctx
            .app
            .store
            .approve_client(
                &ctx.tenant.id,
                &client.client_id,
                client.config_version,
                &admin.user.id,
                ctx.now,
            )
            .await
            .map_err(store_write)?;
        tracing::info!(client_id = %approved.client_id, approved_by = %admin.user.id, "approved client");
        if trust {
            let creator = crate::domain::TrustCreator {
                id: admin.user.id.clone(),
                email: admin.user.email.as_str().to_owned(),
            };
            crate::trust::create(ctx, &approved, creator, admin.door).await?;
        }
        let requests = ctx.access_requests(&approved).await;
        let event = ctx
            .event(EventType::ClientApproved, admin.actor())
            .via(admin.door)
            .about(&approved, &ctx.issuer)
            .asked_by(&requests)
            .detail("config_version", approved.config_version);
        ctx.record(event).await;
        return Ok(approved);
    }
    let updated = client
        .approve_changes()
        .ok_or_else(|| conflict("the client is approved and has no changes awaiting approval"))?;
    ctx.app
        .store
        .update_approved_client(&updated, ctx.now)
        .await
        .map_err(store_write)?;
    tracing::info!(
        client_id = %updated.client_id,
        approved_by = %admin.user.id,
        config_version = updated.config_version,
        "approved client changes"
    );
    let event = ctx
        .event(EventType::ChangesApproved, admin.actor())
        .via(admin.door)
        .about(&updated, &ctx.issuer)
        .detail("config_version", updated.config_version);
    ctx.record(event).await;
    Ok(updated)
}

/// Fetches a metadata-document client's document now (the administrator's "check again"),
/// whatever its cache says. Changes to an approved client become `pending_changes`.
pub async fn refresh_metadata(ctx: &Ctx<'_>, raw_id: &str) -> Result<Client, OAuthError> {
    let client = load_client(ctx, raw_id).await?;
    if client.document.is_none() {
        return Err(OAuthError::invalid_request(
            "only clients identified by a metadata document (createdByType cimd) have a document to fetch",
        ));
    }
    crate::cimd::refresh(ctx.app.documents(), ctx.tenant, client, ctx.now)
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

/// Applies an administrator's edit; nothing is written when it changes nothing.
pub async fn edit_client(
    ctx: &Ctx<'_>,
    admin: &Admin,
    raw_id: &str,
    edit: &ClientEdit,
) -> Result<Client, OAuthError> {
    let client = load_client(ctx, raw_id).await?;
    let updated = edit.apply(&client, ctx.tenant)?;
    if updated != client {
        // An approved client's configuration changes with its approval record (admin only).
        let written = if updated.status == ClientStatus::Approved {
            ctx.app
                .store
                .update_approved_client(&updated, ctx.now)
                .await
        } else {
            ctx.app.store.update_client(&updated, ctx.now).await
        };
        written.map_err(store_write)?;
        tracing::info!(
            client_id = %client.client_id,
            consent_method = updated.consent_method.as_str(),
            config_version = updated.config_version,
            "client edited by an administrator"
        );
        ctx.record(edit_event(ctx, admin, &client, &updated)).await;
    }
    Ok(updated)
}

/// The audit event of an edit: which of the editable fields changed, and their new values.
fn edit_event(
    ctx: &Ctx<'_>,
    admin: &Admin,
    before: &Client,
    after: &Client,
) -> crate::domain::AuditEvent {
    let mut event = ctx
        .event(EventType::ClientEdited, admin.actor())
        .via(admin.door)
        .about(after, &ctx.issuer);
    let mut changed = Vec::new();
    if before.metadata.client_name != after.metadata.client_name {
        changed.push("client_name");
        event = event.detail("client_name", after.metadata.client_name.clone());
    }
    if before.metadata.scope != after.metadata.scope {
        changed.push("scope");
        event = event.detail("scope", after.metadata.scope.to_string());
    }
    if before.consent_method != after.consent_method {
        changed.push("consent_method");
        event = event.detail("consent_method", after.consent_method.as_str());
    }
    event.detail("changed", changed)
}

/// Deletes a client; the store revokes its grants with it.
pub async fn delete_client(ctx: &Ctx<'_>, admin: &Admin, raw_id: &str) -> Result<(), OAuthError> {
    let client = load_client(ctx, raw_id).await?;
    ctx.app
        .store
        .delete_client(&ctx.tenant.id, &client.client_id, ctx.now)
        .await
        .map_err(store_write)?;
    tracing::info!(client_id = %client.client_id, "client deleted; its grants are revoked");
    let event = ctx
        .event(EventType::ClientDeleted, admin.actor())
        .via(admin.door)
        .about(&client, &ctx.issuer);
    ctx.record(event).await;
    Ok(())
}

/// Rejects a pending client: deletes it, only while it is still pending (a queue shown before
/// a concurrent approval cannot delete the approved client). `409` for an approved client.
pub async fn reject_client(ctx: &Ctx<'_>, admin: &Admin, raw_id: &str) -> Result<(), OAuthError> {
    let client = load_client(ctx, raw_id).await?;
    let approved =
        || conflict("only a pending client can be rejected; delete an approved client instead");
    if client.status != ClientStatus::Pending {
        return Err(approved());
    }
    let requests = ctx.access_requests(&client).await;
    match ctx
        .app
        .store
        .reject_client(&ctx.tenant.id, &client.client_id, ctx.now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(approved()),
        Err(e) => return Err(store_write(e)),
    }
    tracing::info!(client_id = %client.client_id, "pending client rejected");
    let event = ctx
        .event(EventType::ClientRejected, admin.actor())
        .via(admin.door)
        .about(&client, &ctx.issuer)
        .asked_by(&requests);
    ctx.record(event).await;
    Ok(())
}

/// A client created by an administrator ("bring your own client"): approved at once,
/// `createdByType: user`. `requested` has passed the general RFC 7591 validation
/// ([`crate::client_metadata::validate`]); the DCR switches (allowed methods, `client_uri`
/// rule) do not apply — they limit anonymous registrants. Returns the client and, for a
/// confidential one, its secret (shown once, stored only hashed).
pub async fn create_client(
    ctx: &Ctx<'_>,
    admin: &Admin,
    requested: RequestedMetadata,
    consent: ConsentMethod,
) -> Result<(Client, Option<String>), OAuthError> {
    let method = requested.token_endpoint_auth_method;
    let mut settings = ctx.tenant.dcr_policy().into_owned();
    settings.allowed_auth_methods = AuthMethod::ALL.to_vec();
    settings.require_client_uri = false;
    let metadata = crate::policy::apply_dcr_policy(requested, &settings)?;
    let secret = method.is_confidential().then(crypto::new_secret);
    let client = Client {
        tenant: ctx.tenant.id.clone(),
        client_id: ClientId::generate(),
        secret_hash: secret.as_deref().map(crypto::hash_secret),
        status: ClientStatus::Approved,
        created_by: CreatedByType::User,
        consent_method: consent,
        created_at: ctx.now,
        expires_at: None,
        approved_by: Some(admin.user.id.clone()),
        approved_at: Some(ctx.now),
        registration_token_hash: None,
        config_version: 1,
        metadata,
        document: None,
        pending_changes: None,
        vendor_trust: None,
    };
    ctx.app.store.create_client(&client).await?;
    tracing::info!(client_id = %client.client_id, "client created by an administrator");
    let event = ctx
        .event(EventType::ClientCreated, admin.actor())
        .via(admin.door)
        .about(&client, &ctx.issuer);
    ctx.record(event).await;
    Ok((client, secret))
}

// ------------------------------------------------------------------ settings

/// Stores changed tenant settings (checked by [`manage::SettingsPatch`]) and drops this
/// function's cached copy so they apply at once.
pub async fn save_settings(
    ctx: &Ctx<'_>,
    admin: &Admin,
    updated: &Tenant,
) -> Result<(), OAuthError> {
    ctx.app.store.put_tenant(updated).await?;
    ctx.app.invalidate_tenant(&updated.id);
    tracing::info!(tenant = %updated.id, "tenant settings changed");
    let changed = super::settings::changed_fields(ctx.tenant, updated);
    if !changed.is_empty() {
        // Kept for the new retention: the change is recorded under the settings it made.
        let mut event = ctx
            .event(EventType::SettingsChanged, admin.actor())
            .via(admin.door)
            .detail("changed", changed);
        event.expires_at = updated.audit_expiry(ctx.now);
        ctx.record(event).await;
    }
    Ok(())
}

// ------------------------------------------------------------------ users

pub async fn list_users(ctx: &Ctx<'_>) -> Result<Vec<User>, OAuthError> {
    Ok(ctx.app.store.list_users(&ctx.tenant.id).await?)
}

/// Adds a user; `409` when the email is taken.
pub async fn add_user(
    ctx: &Ctx<'_>,
    admin: &Admin,
    email: &str,
    password: &str,
    role: &str,
    name: Option<String>,
) -> Result<User, OAuthError> {
    let user = User {
        name,
        ..manage::new_user(ctx.tenant, email, password, role, ctx.now)?
    };
    match ctx.app.store.create_user(&user).await {
        Ok(()) => {
            tracing::info!(user_id = %user.id, "user added");
            let event = ctx
                .event(EventType::UserAdded, admin.actor())
                .via(admin.door)
                .detail("user_id", user.id.clone())
                .detail("email", user.email.as_str())
                .detail("role", user.role.as_str());
            ctx.record(event).await;
            Ok(user)
        }
        Err(StoreError::AlreadyExists) => Err(OAuthError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidRequest,
            "a user with this email already exists",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The user a path segment or form field names (percent-decoded); `404` when unknown.
pub async fn load_user(ctx: &Ctx<'_>, raw_email: &str) -> Result<User, OAuthError> {
    let decoded = percent_encoding::percent_decode_str(raw_email).decode_utf8_lossy();
    let email = Email::parse(&decoded).ok_or_else(|| OAuthError::not_found("no such user"))?;
    ctx.app
        .store
        .get_user(&ctx.tenant.id, &email)
        .await?
        .ok_or_else(|| OAuthError::not_found("no such user"))
}

pub async fn edit_user(
    ctx: &Ctx<'_>,
    admin: &Admin,
    raw_email: &str,
    edit: &UserEdit,
) -> Result<User, OAuthError> {
    let user = load_user(ctx, raw_email).await?;
    let updated = edit.apply(&user, &admin.user)?;
    ctx.app.store.put_user(&updated).await?;
    tracing::info!(
        user_id = %updated.id,
        role = updated.role.as_str(),
        disabled = updated.disabled,
        password_changed = edit.password.is_some(),
        "user edited by an administrator"
    );
    ctx.record(user_event(ctx, admin, &user, &updated, edit))
        .await;
    Ok(updated)
}

/// The audit event of a user edit: what changed (never the password itself).
fn user_event(
    ctx: &Ctx<'_>,
    admin: &Admin,
    before: &User,
    after: &User,
    edit: &UserEdit,
) -> crate::domain::AuditEvent {
    let mut changed = Vec::new();
    if before.role != after.role {
        changed.push("role");
    }
    if before.disabled != after.disabled {
        changed.push("disabled");
    }
    if edit.password.is_some() {
        changed.push("password");
    }
    if before.name != after.name {
        changed.push("name");
    }
    ctx.event(EventType::UserChanged, admin.actor())
        .via(admin.door)
        .detail("user_id", after.id.clone())
        .detail("email", after.email.as_str())
        .detail("changed", changed)
        .detail("role", after.role.as_str())
        .detail("disabled", after.disabled)
}

// ------------------------------------------------------------------ admin API tokens

/// Admin API tokens are minted only from a signed-in administrator's session or with the
/// operator CLI (`docs/admin-api.md`, "Authentication"), never with another token.
pub fn may_create_token(admin: &Admin) -> Result<(), OAuthError> {
    match admin.via {
        Via::Session { .. } => Ok(()),
        Via::Token { .. } => Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::AccessDenied,
            "admin API tokens are created from a signed-in administrator's session (or with the operator CLI)",
        )),
    }
}

/// A new admin API token for the calling administrator: the record and the token itself
/// (shown once, stored only as its SHA-256).
pub async fn create_token(
    ctx: &Ctx<'_>,
    admin: &Admin,
    name: &str,
    lifetime_secs: i64,
) -> Result<(ApiToken, String), OAuthError> {
    may_create_token(admin)?;
    let (record, token) = new_api_token(&ctx.tenant.id, &admin.user, name, lifetime_secs, ctx.now);
    ctx.app.store.create_api_token(&record).await?;
    tracing::info!(user_id = %admin.user.id, "admin API token created");
    ctx.record(token_event(ctx, admin, EventType::ApiTokenCreated, &record))
        .await;
    Ok((record, token))
}

/// Revokes the admin API token the caller authenticated with.
pub async fn revoke_current_token(ctx: &Ctx<'_>, admin: &Admin) -> Result<(), OAuthError> {
    match &admin.via {
        Via::Token { hash } => {
            let record = ctx
                .app
                .store
                .get_api_token(&ctx.tenant.id, hash, ctx.now)
                .await?;
            ctx.app.store.delete_api_token(&ctx.tenant.id, hash).await?;
            tracing::info!(user_id = %admin.user.id, "admin API token revoked");
            if let Some(record) = record {
                ctx.record(token_event(ctx, admin, EventType::ApiTokenRevoked, &record))
                    .await;
            }
            Ok(())
        }
        Via::Session { .. } => Err(OAuthError::invalid_request(
            "send the admin API token to revoke as Authorization: Bearer",
        )),
    }
}

/// The audit event of an admin API token's creation or revocation: its name and expiry, never
/// the token or its hash.
fn token_event(
    ctx: &Ctx<'_>,
    admin: &Admin,
    kind: EventType,
    record: &ApiToken,
) -> crate::domain::AuditEvent {
    ctx.event(kind, admin.actor())
        .via(admin.door)
        .detail("name", record.name.clone())
        .detail("expires_at", record.expires_at)
}
