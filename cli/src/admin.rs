//! Operator commands against a deployment's DynamoDB table: day-one bootstrap (tenant, first
//! administrator, signing keys) and the administration an operator does without a browser.
//! Validation is the admin API's (`gatehouse_core::endpoints::admin::manage`), so the CLI
//! cannot store what the API would refuse.

use crate::TableArgs;
use gatehouse_core::defaults;
use gatehouse_core::domain::{
    Actor, AuditEvent, Client, ClientId, ClientStatus, Email, EventType, Role, Tenant, TenantId,
    unix_now,
};
use gatehouse_core::endpoints::admin::{manage, new_api_token};
use gatehouse_core::events::{self, Notifier};
use gatehouse_core::store::StoreError;
use gatehouse_core::store::dynamo::{DynamoStore, sdk_client, sdk_config_in};
use gatehouse_core::store::{AuditStore, ClientStore, Directory};
use serde_json::{Map, Value};
use std::io::BufRead;

pub enum CliError {
    /// Exit 2: the command cannot run as given (missing configuration).
    Usage(String),
    /// Exit 1.
    Failed(Box<dyn std::error::Error>),
}

impl<E: Into<Box<dyn std::error::Error>>> From<E> for CliError {
    fn from(e: E) -> Self {
        Self::Failed(e.into())
    }
}

type CliResult = Result<(), CliError>;

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The DynamoDB endpoint override: `--endpoint`, `GATEHOUSE_DYNAMODB_ENDPOINT`,
/// `AWS_ENDPOINT_URL_DYNAMODB`.
pub(crate) fn endpoint(args: &TableArgs) -> Option<String> {
    args.endpoint
        .clone()
        .or_else(|| env("GATEHOUSE_DYNAMODB_ENDPOINT"))
        .or_else(|| env("AWS_ENDPOINT_URL_DYNAMODB"))
}

pub(crate) async fn store(args: &TableArgs) -> Result<DynamoStore, CliError> {
    let table = args.table.clone().or_else(|| env("GATEHOUSE_TABLE")).ok_or_else(|| {
        CliError::Usage(
            "no DynamoDB table: pass --table NAME or set GATEHOUSE_TABLE (the stack's TableName output)"
                .into(),
        )
    })?;
    let endpoint = endpoint(args);
    let sdk = sdk_config_in(endpoint.as_deref(), args.region.as_deref()).await;
    let region = sdk.region().map(ToString::to_string).unwrap_or_default();
    let store = DynamoStore::new(sdk_client(&sdk), table.clone());
    match store.table_exists().await {
        Ok(true) => Ok(store),
        Ok(false) => Err(format!(
            "table {table} not found in region {region}{} (check --table, --region and --endpoint)",
            endpoint.map(|e| format!(" at {e}")).unwrap_or_default()
        )
        .into()),
        Err(e) => Err(format!(
            "cannot reach DynamoDB to check table {table} ({e}); check AWS credentials, --region and --endpoint"
        )
        .into()),
    }
}

/// Records an operator's action in the tenant's audit trail (`docs/events.md`), and publishes
/// it on EventBridge when `GATEHOUSE_EVENT_BUS` names a bus.
pub(crate) async fn audit(args: &TableArgs, store: &DynamoStore, event: AuditEvent) {
    let notifier = match env("GATEHOUSE_EVENT_BUS") {
        Some(bus) => {
            let endpoint = env("GATEHOUSE_EVENTS_ENDPOINT");
            let sdk = sdk_config_in(endpoint.as_deref(), args.region.as_deref()).await;
            Notifier::event_bridge(&sdk, bus, endpoint.as_deref())
        }
        None => Notifier::log_only(),
    };
    events::record(store, &notifier, &event).await;
}

/// An operator's event about `client`; its console link only when `GATEHOUSE_PUBLIC_URL`
/// says where the deployment is.
fn client_event(tenant: &Tenant, kind: EventType, client: &Client) -> AuditEvent {
    let base = env("GATEHOUSE_PUBLIC_URL");
    let issuer = format!("{}/t/{}", base.as_deref().unwrap_or(""), tenant.id);
    let mut event = AuditEvent::new(tenant, kind, Actor::Operator, unix_now())
        .via("cli")
        .about(client, &issuer);
    if base.is_none() {
        event.console_url = None;
    }
    event
}

fn tenant_id(raw: &str) -> Result<TenantId, CliError> {
    TenantId::parse(raw).ok_or_else(|| {
        "tenant ids are 1-63 lowercase letters, digits and inner hyphens"
            .to_owned()
            .into()
    })
}

pub(crate) async fn load_tenant(store: &DynamoStore, raw: &str) -> Result<Tenant, CliError> {
    let id = tenant_id(raw)?;
    store.get_tenant(&id).await?.ok_or_else(|| {
        format!("no tenant {id}; create it with `gatehouse tenant create {id}`").into()
    })
}

/// The password for a new user: `GATEHOUSE_NEW_PASSWORD`, else one line from stdin. Never an
/// argument (it would land in shell history and `ps`).
fn read_password() -> Result<String, CliError> {
    let password = match env("GATEHOUSE_NEW_PASSWORD") {
        Some(p) => p,
        None => {
            eprintln!("password (one line on stdin):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    manage::valid_password(&password).map_err(|e| e.description)?;
    Ok(password)
}

pub async fn tenant_create(args: &TableArgs, id: &str, name: Option<&str>) -> CliResult {
    let id = tenant_id(id)?;
    let store = store(args).await?;
    let tenant = Tenant::new(id.clone(), name.unwrap_or(id.as_str()));
    match store.create_tenant(&tenant).await {
        Ok(()) => {
            println!("created tenant {id} (DCR on; change settings with `gatehouse tenant set`)");
            Ok(())
        }
        Err(StoreError::AlreadyExists) => Err(format!("tenant {id} already exists").into()),
        Err(e) => Err(e.into()),
    }
}

pub async fn tenant_list(args: &TableArgs) -> CliResult {
    for t in store(args).await?.list_tenants().await? {
        println!(
            "{}\t{}\tdcr={}",
            t.id,
            t.display_name,
            if t.dcr.enabled { "on" } else { "off" }
        );
    }
    Ok(())
}

fn show(tenant: &Tenant) -> Result<(), CliError> {
    let mut view = manage::settings_view(tenant);
    view["id"] = Value::String(tenant.id.to_string());
    println!("{}", serde_json::to_string_pretty(&view)?);
    Ok(())
}

pub async fn tenant_show(args: &TableArgs, id: &str) -> CliResult {
    let store = store(args).await?;
    show(&load_tenant(&store, id).await?)
}

pub async fn tenant_set(args: &TableArgs, id: &str, pairs: &[String]) -> CliResult {
    let mut patch = Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("{pair:?} is not KEY=VALUE")))?;
        let value = manage::settings_value(key, value).map_err(|e| e.description)?;
        patch.insert(key.to_owned(), value);
    }
    let store = store(args).await?;
    let tenant = load_tenant(&store, id).await?;
    let updated = manage::apply_settings(&tenant, &patch).map_err(|e| e.description)?;
    store.put_tenant(&updated).await?;
    let changed = manage::changed_fields(&tenant, &updated);
    if !changed.is_empty() {
        let event = AuditEvent::new(
            &updated,
            EventType::SettingsChanged,
            Actor::Operator,
            unix_now(),
        )
        .via("cli")
        .detail("changed", changed);
        audit(args, &store, event).await;
    }
    show(&updated)?;
    eprintln!(
        "saved; running functions pick it up within GATEHOUSE_TENANT_CACHE_TTL ({} s by default)",
        defaults::TENANT_CACHE_TTL_SECS
    );
    Ok(())
}

pub async fn user_add(args: &TableArgs, tenant: &str, email: &str, role: &str) -> CliResult {
    if Role::parse(role).is_none() {
        return Err("role must be admin or user".to_owned().into());
    }
    if Email::parse(email).is_none() {
        return Err(format!("{email:?} is not a valid email address").into());
    }
    let store = store(args).await?;
    let tenant = load_tenant(&store, tenant).await?;
    let password = read_password()?;
    let user =
        manage::new_user(&tenant, email, &password, role, unix_now()).map_err(|e| e.description)?;
    match store.create_user(&user).await {
        Ok(()) => {
            println!("added {} ({role}) to {}", user.email, tenant.id);
            let event = AuditEvent::new(&tenant, EventType::UserAdded, Actor::Operator, unix_now())
                .via("cli")
                .detail("user_id", user.id.clone())
                .detail("email", user.email.as_str())
                .detail("role", user.role.as_str());
            audit(args, &store, event).await;
            Ok(())
        }
        Err(StoreError::AlreadyExists) => {
            Err(format!("{} already exists in {}", user.email, tenant.id).into())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn clients_list(args: &TableArgs, tenant: &str, pending: bool) -> CliResult {
    let store = store(args).await?;
    let tenant = load_tenant(&store, tenant).await?;
    let wanted = if pending {
        ClientStatus::Pending
    } else {
        ClientStatus::Approved
    };
    for c in store.list_clients(&tenant.id, unix_now()).await? {
        if c.status == wanted {
            println!(
                "{}\t{}\t{}\t{}",
                c.client_id,
                c.status.as_str(),
                c.created_by.as_str(),
                c.metadata.client_name
            );
        }
    }
    Ok(())
}

fn client_id(raw: &str) -> Result<ClientId, CliError> {
    ClientId::parse(raw).ok_or_else(|| format!("no client {raw:?} (not found)").into())
}

pub async fn clients_approve(args: &TableArgs, tenant: &str, id: &str) -> CliResult {
    let store = store(args).await?;
    let tenant = load_tenant(&store, tenant).await?;
    let id = client_id(id)?;
    // Approve the configuration read here (and printed below), not one the client might
    // switch to between this read and the write.
    let version = match store.get_client(&tenant.id, &id, unix_now()).await? {
        Some(c) => c.config_version,
        None => return Err(format!("no client {id} (not found, or expired)").into()),
    };
    let requests = store
        .list_access_requests(&tenant.id, Some(&id), unix_now())
        .await?;
    match store
        .approve_client(&tenant.id, &id, version, "operator-cli", unix_now())
        .await
    {
        Ok(c) => {
            println!("approved {} ({})", c.client_id, c.metadata.client_name);
            let asked: Vec<_> = requests
                .into_iter()
                .filter(|r| r.requester.requested_at >= c.created_at)
                .collect();
            let event = client_event(&tenant, EventType::ClientApproved, &c)
                .asked_by(&asked)
                .detail("config_version", c.config_version);
            audit(args, &store, event).await;
            Ok(())
        }
        Err(StoreError::NotFound) => {
            Err(format!("no client {id} in {} (not found, or expired)", tenant.id).into())
        }
        Err(StoreError::Conflict) => Err(format!(
            "client {id} is already approved, or changed itself while being approved (check it and run again)"
        )
        .into()),
        Err(e) => Err(e.into()),
    }
}

pub async fn clients_record_approvals(args: &TableArgs, tenant: &str) -> CliResult {
    let store = store(args).await?;
    let tenant = load_tenant(&store, tenant).await?;
    let recorded = store
        .record_missing_approvals(&tenant.id, unix_now())
        .await?;
    println!(
        "recorded the approval of {recorded} approved client(s) of {} that had none",
        tenant.id
    );
    Ok(())
}

pub async fn clients_delete(args: &TableArgs, tenant: &str, id: &str) -> CliResult {
    let store = store(args).await?;
    let tenant = load_tenant(&store, tenant).await?;
    let id = client_id(id)?;
    let client = store.get_client(&tenant.id, &id, unix_now()).await?;
    match store.delete_client(&tenant.id, &id, unix_now()).await {
        Ok(()) => {
            println!("deleted {id}; its grants are revoked");
            if let Some(client) = client {
                let event = client_event(&tenant, EventType::ClientDeleted, &client);
                audit(args, &store, event).await;
            }
            Ok(())
        }
        Err(StoreError::NotFound) => {
            Err(format!("no client {id} in {} (not found)", tenant.id).into())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn token_create(
    args: &TableArgs,
    tenant: &str,
    email: &str,
    expires_in: Option<i64>,
) -> CliResult {
    let lifetime = expires_in.unwrap_or(defaults::ADMIN_TOKEN_DEFAULT_TTL_SECS);
    if !(60..=defaults::ADMIN_TOKEN_MAX_TTL_SECS).contains(&lifetime) {
        return Err(format!(
            "--expires-in must be from 60 to {} seconds",
            defaults::ADMIN_TOKEN_MAX_TTL_SECS
        )
        .into());
    }
    let email = Email::parse(email).ok_or_else(|| format!("{email:?} is not a valid email"))?;
    let store = store(args).await?;
    let tenant = load_tenant(&store, tenant).await?;
    let user = store
        .get_user(&tenant.id, &email)
        .await?
        .ok_or_else(|| format!("no user {email} in {} (not found)", tenant.id))?;
    if user.role != Role::Admin || user.disabled {
        return Err(format!("{email} is not an enabled administrator of {}", tenant.id).into());
    }
    let now = unix_now();
    let (record, token) = new_api_token(&tenant.id, &user, "operator-cli", lifetime, now);
    store.create_api_token(&record).await?;
    let event = AuditEvent::new(&tenant, EventType::ApiTokenCreated, Actor::Operator, now)
        .via("cli")
        .detail("name", record.name.clone())
        .detail("email", user.email.as_str())
        .detail("expires_at", record.expires_at);
    audit(args, &store, event).await;
    eprintln!(
        "admin API token for {email}, valid until {} (unix time); shown once:",
        record.expires_at
    );
    println!("{token}");
    Ok(())
}
