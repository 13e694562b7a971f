//! Key patterns, kept in step with `shared/storage-schema.md`. Every partition key starts with
//! its item type, so IAM can grant each function exactly the item types it uses
//! (`dynamodb:LeadingKeys`).

use crate::domain::{ClientId, Email, TenantId};

pub const GSI1: &str = "gsi1";

pub const TTL_ATTRIBUTE: &str = "ttl";

/// A client's `config_version`, lifted out of `doc` so that an approval can be conditional on the
/// configuration the administrator saw.
pub(super) const CONFIG_VERSION_ATTRIBUTE: &str = "cv";

/// The condition "this item exists and has not expired" (`#ttl` → [`TTL_ATTRIBUTE`], `:now`):
/// DynamoDB deletes expired items lazily, so every condition re-checks expiry itself.
pub(super) const LIVE: &str =
    "attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)";

/// The random id of the create that wrote an item (see `put` and `own_write`).
pub(super) const WRITE_ID_ATTRIBUTE: &str = "wid";

/// Every tenant item is also in one GSI partition, for the operator's `tenant list`.
pub(super) const TENANTS_GSI_PK: &str = "TENANTS";

/// Public signing keys share one partition (a handful of items), newest last by sort key.
pub(super) const JWKS_PK: &str = "JWKS";

pub(super) fn tenant_key(id: &TenantId) -> (String, String) {
    (format!("TENANT#{id}"), "TENANT".into())
}

pub(super) fn client_key(tenant: &TenantId, id: &ClientId) -> (String, String) {
    (format!("CLIENT#{tenant}#{id}"), "CLIENT".into())
}

/// A client's approval record: its own partition (IAM's `dynamodb:LeadingKeys` sees partition
/// keys only), so that only the admin function's role can write it.
pub(super) fn approval_key(tenant: &TenantId, id: &ClientId) -> (String, String) {
    (format!("APPROVAL#{tenant}#{id}"), "APPROVAL".into())
}

pub(super) fn clients_gsi_pk(tenant: &TenantId) -> String {
    format!("CLIENTS#{tenant}")
}

pub(super) fn user_key(tenant: &TenantId, email: &Email) -> (String, String) {
    (format!("USER#{tenant}#{email}"), "USER".into())
}

pub(super) fn users_gsi_pk(tenant: &TenantId) -> String {
    format!("USERS#{tenant}")
}

pub(super) fn grants_gsi_pk(tenant: &TenantId, client: &ClientId) -> String {
    format!("GRANTS#{tenant}#{client}")
}

pub(super) fn api_token_key(tenant: &TenantId, token_hash: &str) -> (String, String) {
    (format!("APITOKEN#{tenant}#{token_hash}"), "APITOKEN".into())
}

pub(super) fn signin_failures_key(
    tenant: &TenantId,
    account: &str,
    window: i64,
) -> (String, String) {
    (format!("SIGNIN#{tenant}#{account}"), format!("W#{window}"))
}

pub(super) fn pending_counter_key(tenant: &TenantId, bucket: i64) -> (String, String) {
    (format!("PENDING#{tenant}"), format!("W#{bucket}"))
}

/// One source's registrations with a tenant in one window (`policy::source_block`).
pub(super) fn source_counter_key(
    tenant: &TenantId,
    source: std::net::IpAddr,
    bucket: i64,
) -> (String, String) {
    (format!("REGSRC#{tenant}#{source}"), format!("W#{bucket}"))
}

pub(super) fn authorization_request_key(tenant: &TenantId, id: &str) -> (String, String) {
    (format!("AUTHREQ#{tenant}#{id}"), "AUTHREQ".into())
}

pub(super) fn session_key(tenant: &TenantId, id_hash: &str) -> (String, String) {
    (format!("SESSION#{tenant}#{id_hash}"), "SESSION".into())
}

pub(super) fn consent_key(tenant: &TenantId, client: &ClientId, user_id: &str) -> (String, String) {
    (
        format!("CONSENT#{tenant}#{client}#{user_id}"),
        "CONSENT".into(),
    )
}

pub(super) fn code_key(tenant: &TenantId, code_hash: &str) -> (String, String) {
    (format!("CODE#{tenant}#{code_hash}"), "CODE".into())
}

pub(super) fn grant_key(tenant: &TenantId, id: &str) -> (String, String) {
    (format!("GRANT#{tenant}#{id}"), "GRANT".into())
}

pub(super) fn refresh_key(tenant: &TenantId, token_hash: &str) -> (String, String) {
    (format!("REFRESH#{tenant}#{token_hash}"), "REFRESH".into())
}

/// A tenant's published signing keys: one partition, sorted `{created_at}#{kid}`.
pub(super) fn jwks_pk(tenant: &TenantId) -> String {
    format!("{JWKS_PK}#{tenant}")
}

pub(super) fn private_key_key(tenant: &TenantId, kid: &str) -> (String, String) {
    (format!("SIGNKEY#{tenant}#{kid}"), "SIGNKEY".into())
}

/// A tenant's audit trail: one partition, sorted by time (`{occurred_at}#{id}`), read newest
/// first.
pub(super) fn audit_pk(tenant: &TenantId) -> String {
    format!("AUDIT#{tenant}")
}

/// One user's request for an administrator's approval of a pending client.
pub(super) fn access_request_key(
    tenant: &TenantId,
    client: &ClientId,
    user_id: &str,
) -> (String, String) {
    (
        access_requests_pk(tenant, client),
        format!("USER#{user_id}"),
    )
}

/// The requests for one client.
pub(super) fn access_requests_pk(tenant: &TenantId, client: &ClientId) -> String {
    format!("ACCESSREQ#{tenant}#{client}")
}

/// The requests for every client of a tenant (the pending queue), in the GSI.
pub(super) fn access_requests_gsi_pk(tenant: &TenantId) -> String {
    format!("ACCESSREQS#{tenant}")
}

/// A vendor trust, by its id (the digest of what it matches).
pub(super) fn trust_key(tenant: &TenantId, id: &str) -> (String, String) {
    (format!("TRUST#{tenant}#{id}"), "TRUST".into())
}

/// Every vendor trust of a tenant, in the GSI.
pub(super) fn trusts_gsi_pk(tenant: &TenantId) -> String {
    format!("TRUSTS#{tenant}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key pattern here is the one `shared/storage-schema.md` documents: keys rendered with
    /// sample values, the values put back as the document's placeholders.
    #[test]
    fn key_patterns_are_the_documented_ones() {
        let schema = include_str!("../../../storage-schema.md");
        let tenant = TenantId::parse("acme").unwrap();
        let client = ClientId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let email = Email::parse("someone@example.test").unwrap();
        let placeholders = [
            ("acme", "{tenant}"),
            ("0123456789abcdef0123456789abcdef", "{client_id}"),
            ("someone@example.test", "{email}"),
            ("192.0.2.1", "{source}"),
        ];
        let documented = |rendered: &str| {
            placeholders
                .iter()
                .fold(rendered.to_owned(), |s, (value, name)| {
                    s.replace(value, name)
                })
        };
        let keys = [
            tenant_key(&tenant),
            client_key(&tenant, &client),
            approval_key(&tenant, &client),
            user_key(&tenant, &email),
            pending_counter_key(&tenant, -1),
            signin_failures_key(&tenant, "{sha256(lowercased email)}", -1),
            authorization_request_key(&tenant, "{id}"),
            session_key(&tenant, "{sha256(session id)}"),
            api_token_key(&tenant, "{sha256(token)}"),
            consent_key(&tenant, &client, "{user_id}"),
            code_key(&tenant, "{sha256(code)}"),
            grant_key(&tenant, "{grant_id}"),
            refresh_key(&tenant, "{sha256(token)}"),
            private_key_key(&tenant, "{kid}"),
            source_counter_key(&tenant, "192.0.2.1".parse().unwrap(), -1),
            (jwks_pk(&tenant), "{created_at, 12 digits}#{kid}".into()),
        ];
        for (pk, sk) in keys {
            let (pk, sk) = (
                documented(&pk),
                documented(&sk).replace("W#-1", "W#{window}"),
            );
            assert!(
                schema.contains(&format!("`pk = {pk}`")),
                "pk {pk} is not documented"
            );
            assert!(
                schema.contains(&format!("`sk = {sk}`")),
                "sk {sk} is not documented"
            );
        }
        for gsi in [
            clients_gsi_pk(&tenant),
            users_gsi_pk(&tenant),
            grants_gsi_pk(&tenant, &client),
            TENANTS_GSI_PK.to_owned(),
        ] {
            let gsi = documented(&gsi);
            assert!(
                schema.contains(&format!("gsi1pk = {gsi}")),
                "gsi1pk {gsi} is not documented"
            );
        }
    }
}
