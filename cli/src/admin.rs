//! Operator commands against the configured store (`GATEHOUSE_TABLE`, with the usual `AWS_*`
//! variables; `GATEHOUSE_DYNAMODB_ENDPOINT` for a local DynamoDB API). Day-one bootstrap of a
//! deployment: create a tenant, add its first administrator, rotate signing keys.

use gatehouse_core::config::Config;
use gatehouse_core::crypto;
use gatehouse_core::domain::{Email, Role, Tenant, TenantId, User, unix_now};
use gatehouse_core::store::dynamo::{DynamoStore, SdkClient, sdk_config};
use gatehouse_core::store::{Store, StoreError};
use gatehouse_core::tokens;
use std::io::BufRead;

type CliResult = Result<(), Box<dyn std::error::Error>>;

async fn store() -> Result<DynamoStore, Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let table = config
        .table
        .clone()
        .ok_or("GATEHOUSE_TABLE must name the DynamoDB table (see the stack's TableName output)")?;
    let sdk = sdk_config(config.dynamodb_endpoint.as_deref()).await;
    Ok(DynamoStore::new(SdkClient::new(&sdk), table))
}

/// The password for a new user: `GATEHOUSE_NEW_PASSWORD`, else one line from stdin. Never an
/// argument (it would land in shell history and `ps`).
fn read_password() -> Result<String, Box<dyn std::error::Error>> {
    let password = match std::env::var("GATEHOUSE_NEW_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprintln!("password (one line on stdin):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.chars().count() < 12 {
        return Err("passwords must be at least 12 characters".into());
    }
    Ok(password)
}

pub async fn tenant_create(id: &str, name: Option<&str>) -> CliResult {
    let id = TenantId::parse(id)
        .ok_or("tenant ids are 1-63 lowercase letters, digits and inner hyphens")?;
    let tenant = Tenant::new(id.clone(), name.unwrap_or(id.as_str()));
    match store().await?.create_tenant(&tenant).await {
        Ok(()) => {
            println!("created tenant {id} (DCR on; edit settings through the admin API)");
            Ok(())
        }
        Err(StoreError::AlreadyExists) => Err(format!("tenant {id} already exists").into()),
        Err(e) => Err(e.into()),
    }
}

pub async fn user_add(tenant: &str, email: &str, role: &str) -> CliResult {
    let tenant = TenantId::parse(tenant).ok_or("invalid tenant id")?;
    let email = Email::parse(email).ok_or("invalid email")?;
    let role = match role {
        "admin" => Role::Admin,
        "user" => Role::User,
        _ => return Err("role must be admin or user".into()),
    };
    let store = store().await?;
    if store.get_tenant(&tenant).await?.is_none() {
        return Err(format!("no tenant {tenant}; create it first").into());
    }
    let user = User {
        id: crypto::new_id(),
        tenant: tenant.clone(),
        email: email.clone(),
        password_hash: crypto::hash_password(&read_password()?),
        role,
        disabled: false,
        created_at: unix_now(),
    };
    match store.create_user(&user).await {
        Ok(()) => {
            println!("added {email} to {tenant}");
            Ok(())
        }
        Err(StoreError::AlreadyExists) => Err(format!("{email} already exists in {tenant}").into()),
        Err(e) => Err(e.into()),
    }
}

pub async fn keys_rotate() -> CliResult {
    let key = tokens::rotate(&store().await?, unix_now()).await?;
    println!(
        "added signing key {} (published now; it starts signing after {} s, once every JWKS cache has it)",
        key.kid,
        gatehouse_core::defaults::KEY_ACTIVATION_DELAY_SECS
    );
    Ok(())
}

pub async fn keys_list() -> CliResult {
    for k in store().await?.list_public_keys().await? {
        println!("{}  created {}", k.kid, k.created_at);
    }
    Ok(())
}
