//! The registration parser and validator (RFC 7591 general rules, then the tenant's DCR policy)
//! and the Client ID Metadata Document validator on arbitrary bytes: never a panic; anything
//! accepted is well-formed (a document is accepted only for its own URL, as a public client
//! within the tenant's scopes).
#![no_main]

use gatehouse_core::cimd;
use gatehouse_core::client_metadata;
use gatehouse_core::domain::{AuthMethod, ClientId, DcrSettings, Tenant, TenantId};
use gatehouse_core::policy::apply_dcr_policy;
use libfuzzer_sys::fuzz_target;

const DOCUMENT_URL: &str = "https://agent.example/client.json";

fuzz_target!(|data: &[u8]| {
    if let (Some(id), Some(tenant)) = (ClientId::parse(DOCUMENT_URL), TenantId::parse("demo")) {
        let tenant = Tenant::new(tenant, "Demo");
        if let Ok(url) = cimd::document_url(&id)
            && let Ok(metadata) = cimd::validate_document(data, &id, &url, &tenant)
        {
            assert_eq!(metadata.token_endpoint_auth_method, AuthMethod::None);
            assert!(!metadata.redirect_uris.is_empty());
            assert!(metadata.scope.not_in(&tenant.dcr.allowed_scopes).next().is_none());
            let text = String::from_utf8_lossy(data);
            assert!(text.contains(DOCUMENT_URL) || text.contains("\\u"));
        }
    }
    let Ok(doc) = client_metadata::parse_json_object(data) else {
        return;
    };
    let Ok(requested) = client_metadata::validate(&doc) else {
        return;
    };
    let settings = DcrSettings::default();
    if let Ok(metadata) = apply_dcr_policy(requested, &settings) {
        assert!(!metadata.redirect_uris.is_empty());
        assert!(metadata.scope.not_in(&settings.allowed_scopes).next().is_none());
    }
});
