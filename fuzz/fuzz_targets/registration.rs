//! The registration parser and validator (RFC 7591 general rules, then the tenant's DCR policy)
//! on arbitrary bytes: never a panic; anything accepted is well-formed.
#![no_main]

use gatehouse_core::client_metadata;
use gatehouse_core::domain::DcrSettings;
use gatehouse_core::endpoints::register::apply_dcr_policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
