//! Access token verification on arbitrary strings (what every resource server call runs):
//! never a panic, never an accepted token that this server did not sign.
#![no_main]

use gatehouse_core::domain::{TenantId, unix_now};
use gatehouse_core::keywrap::LocalWrapper;
use gatehouse_core::store::memory::MemoryStore;
use gatehouse_core::keycache::KeyCache;
use gatehouse_core::tokens::{self, KeySet};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn keys() -> &'static Arc<KeySet> {
    static KEYS: OnceLock<Arc<KeySet>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let store = MemoryStore::new();
            let wrapper = LocalWrapper::random();
            let demo = TenantId::parse("demo").expect("tenant id");
            let keys = tokens::Keys {
                store: &store,
                wrapper: &wrapper,
            };
            tokens::ensure_keys(keys, &demo, unix_now())
                .await
                .expect("key");
            KeyCache::default()
                .key_set(&store, &demo, true, unix_now())
                .await
                .expect("key set")
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let verified = tokens::verify_access_token(
        token,
        keys(),
        "https://as.example/t/demo",
        Some("https://as.example/t/demo/mcp"),
    );
    assert!(verified.is_err(), "a fuzzer-made token verified: {token:?}");
});
