//! Seeding for the local runner: the `demo` tenant with DCR on for all three auth methods, an
//! administrator and a user (the local contract).

use crate::config::Config;
use crate::crypto;
use crate::domain::{Email, Role, Tenant, TenantId, User, unix_now};
use crate::store::{Store, StoreError};

pub const DEMO_TENANT: &str = "demo";
pub const DEMO_ADMIN: &str = "admin@demo.test";
pub const DEMO_USER: &str = "user@demo.test";

/// What seeding did, for the start-up banner. Generated passwords are returned so that the
/// runner can print them once to the terminal; they are never logged.
pub struct SeedReport {
    pub tenant: TenantId,
    pub admin_password: Option<String>,
    pub user_password: Option<String>,
}

pub async fn seed_demo(store: &dyn Store, config: &Config) -> Result<SeedReport, StoreError> {
    let id = TenantId::parse(DEMO_TENANT).ok_or(StoreError::Corrupt("demo tenant id".into()))?;
    let mut tenant = match store.get_tenant(&id).await? {
        Some(t) => t,
        None => Tenant::new(id.clone(), "Demo"),
    };
    if let Some(ttl) = config.pending_client_ttl_override {
        tenant.dcr.pending_client_ttl_secs = ttl;
    }
    if let Some(cap) = config.pending_client_cap_override {
        tenant.dcr.pending_client_cap = cap;
    }
    if let Some(share) = config.pending_client_source_share_override {
        tenant.dcr.pending_client_source_share_percent = share;
    }
    store.put_tenant(&tenant).await?;
    let admin_password = seed_user(
        store,
        &id,
        DEMO_ADMIN,
        Role::Admin,
        config.demo_admin_password.as_deref(),
    )
    .await?;
    let user_password = seed_user(
        store,
        &id,
        DEMO_USER,
        Role::User,
        config.demo_user_password.as_deref(),
    )
    .await?;
    Ok(SeedReport {
        tenant: id,
        admin_password,
        user_password,
    })
}

/// With the password variable set, the user is (re)written with that password. Without it,
/// a missing user is created with a generated password (returned), and an existing one keeps
/// its password.
async fn seed_user(
    store: &dyn Store,
    tenant: &TenantId,
    email: &str,
    role: Role,
    configured: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let email = Email::parse(email).ok_or(StoreError::Corrupt("demo email".into()))?;
    let configured = configured.map(str::to_owned);
    let existing = store.get_user(tenant, &email).await?;
    let (password, generated) = match configured {
        Some(p) => (p, false),
        None if existing.is_some() => return Ok(None),
        None => (crypto::new_secret()[..20].to_owned(), true),
    };
    // Keep the id of an existing user: it is the `sub` of tokens already issued. A new
    // password ends the sessions opened with the old one.
    let (id, session_epoch, existing_grant_epoch) = existing.map_or_else(
        || (crypto::new_id(), 0, 0),
        |u| (u.id, u.session_epoch.wrapping_add(1), u.grant_epoch),
    );
    let user = User {
        id,
        tenant: tenant.clone(),
        email,
        password_hash: crypto::hash_password(&password),
        role,
        disabled: false,
        created_at: unix_now(),
        session_epoch,
        grant_epoch: existing_grant_epoch,
        name: None,
    };
    store.put_user(&user).await?;
    Ok(generated.then_some(password))
}
