//! Operator commands for a tenant's signing keys: `keys generate|rotate|list TENANT`. Each
//! tenant has its own key set (`gatehouse_core::tokens`); private halves are sealed with the
//! deployment's wrapping key (`gatehouse_core::keywrap`): `GATEHOUSE_KMS_KEY_ID` (the stack's
//! `SigningKeysKmsKeyArn` output) or, on a development table, `GATEHOUSE_LOCAL_WRAPPING_KEY`.

use crate::TableArgs;
use crate::admin::{CliError, audit, endpoint, env, load_tenant, store};
use gatehouse_core::defaults;
use gatehouse_core::domain::{Actor, AuditEvent, EventType, SigningAlg, Tenant, unix_now};
use gatehouse_core::keywrap::{self, KeyWrapper};
use gatehouse_core::store::TokenStore;
use gatehouse_core::store::dynamo::{DynamoStore, sdk_config_in};
use gatehouse_core::tokens::{self, Keys};
use std::sync::Arc;

type CliResult = Result<(), CliError>;

/// The wrapping key the environment names (only the commands that create keys need one).
async fn wrapper(args: &TableArgs) -> Result<Arc<dyn KeyWrapper>, CliError> {
    let sdk = sdk_config_in(endpoint(args).as_deref(), args.region.as_deref()).await;
    let kms = env("GATEHOUSE_KMS_KEY_ID");
    let kms_endpoint = env("GATEHOUSE_KMS_ENDPOINT");
    let local = env("GATEHOUSE_LOCAL_WRAPPING_KEY");
    keywrap::wrapper(
        kms.as_deref(),
        kms_endpoint.as_deref(),
        local.as_deref(),
        &sdk,
    )
    .map_err(CliError::Usage)?
    .ok_or_else(|| CliError::Usage(keywrap::WRAPPING_KEY_REQUIRED.into()))
}

/// The table, the tenant (which must exist) and the wrapping key, as the commands that create
/// keys need them.
async fn for_new_keys(
    args: &TableArgs,
    tenant: &str,
) -> Result<(DynamoStore, Tenant, Arc<dyn KeyWrapper>), CliError> {
    let store = store(args).await?;
    let tenant = load_tenant(&store, tenant).await?;
    let wrapper = wrapper(args).await?;
    // A key sealed with another kind of wrapping key than the tenant's others would be one the
    // functions cannot open (a local key on a KMS table): refuse before creating it.
    if let Some(newest) = store.list_public_keys(&tenant.id).await?.first()
        && let Some(sealed) = store.get_private_key(&tenant.id, &newest.kid).await?
        && sealed.wrapping != wrapper.kind()
    {
        return Err(CliError::Usage(format!(
            "tenant {}'s signing keys are sealed with a {} key and this command has a {} key: \
             set GATEHOUSE_KMS_KEY_ID to the stack's SigningKeysKmsKeyArn output",
            tenant.id,
            sealed.wrapping,
            wrapper.kind()
        )));
    }
    Ok((store, tenant, wrapper))
}

pub async fn generate(args: &TableArgs, tenant: &str) -> CliResult {
    let (store, tenant, wrapper) = for_new_keys(args, tenant).await?;
    let keys = Keys {
        store: &store,
        wrapper: wrapper.as_ref(),
    };
    let created = tokens::ensure_keys(keys, &tenant.id, unix_now()).await?;
    if created.is_empty() {
        println!(
            "tenant {} already has signing keys for ES256 and RS256 (use `keys rotate` to add one)",
            tenant.id
        );
    }
    for key in created {
        println!(
            "generated {} signing key {} for tenant {}",
            key.alg.as_str(),
            key.kid,
            tenant.id
        );
    }
    Ok(())
}

pub async fn rotate(args: &TableArgs, tenant: &str, alg: Option<SigningAlg>) -> CliResult {
    let (store, tenant, wrapper) = for_new_keys(args, tenant).await?;
    let keys = Keys {
        store: &store,
        wrapper: wrapper.as_ref(),
    };
    let algs = alg.map_or(SigningAlg::ALL.to_vec(), |a| vec![a]);
    let mut kids = Vec::new();
    for alg in algs {
        let key = tokens::rotate(keys, &tenant.id, alg, unix_now()).await?;
        println!(
            "added {} signing key {} to tenant {} (published now; it starts signing after {} s, once every JWKS cache has it)",
            alg.as_str(),
            key.kid,
            tenant.id,
            defaults::KEY_ACTIVATION_DELAY_SECS
        );
        kids.push(key.kid);
    }
    let event = AuditEvent::new(&tenant, EventType::KeysRotated, Actor::Operator, unix_now())
        .via("cli")
        .detail("kids", kids);
    audit(args, &store, event).await;
    Ok(())
}

pub async fn list(args: &TableArgs, tenant: &str) -> CliResult {
    let store = store(args).await?;
    let tenant = load_tenant(&store, tenant).await?;
    for k in store.list_public_keys(&tenant.id).await? {
        println!("{}  {}  created {}", k.kid, k.alg.as_str(), k.created_at);
    }
    Ok(())
}
