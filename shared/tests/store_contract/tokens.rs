//! Code redemption, refresh rotation and signing keys.

use crate::support::{NOW, client_of, code_for, grant_for, refresh_for, tid};
use gatehouse_core::domain::{Grant, PublicSigningKey, RefreshToken, SigningAlg};
use gatehouse_core::keywrap::{self, KeyContext, LocalWrapper};
use gatehouse_core::store::{Store, StoreError};
use std::sync::Arc;

pub(crate) async fn codes_are_redeemed_exactly_once_with_their_grant(store: Arc<dyn Store>) {
    let code = code_for("acme", NOW);
    client_of(&store, &code).await;
    store.create_code(&code).await.expect("create");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            let grant = grant_for(&code, NOW);
            let refresh = refresh_for(&grant, NOW);
            let result = store
                .redeem_code(&code, &grant, Some(&refresh), NOW + 1)
                .await;
            (result, grant, refresh)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            (Ok(()), grant, refresh) => winners.push((grant, refresh)),
            (Err(StoreError::Conflict), _, _) => {}
            (Err(other), _, _) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    let (grant, refresh) = winners.remove(0);
    let stored = store
        .get_code(&code.tenant, &code.code_hash, NOW + 2)
        .await
        .expect("get")
        .expect("redeemed codes stay readable until they expire");
    assert_eq!(stored.redeemed_grant.as_deref(), Some(grant.id.as_str()));
    assert_eq!(
        store
            .get_grant(&grant.tenant, &grant.id)
            .await
            .expect("grant"),
        Some(grant.clone())
    );
    assert_eq!(
        store
            .get_refresh_token(&refresh.tenant, &refresh.token_hash, NOW + 2)
            .await
            .expect("refresh"),
        Some(refresh)
    );
    // An expired code cannot be redeemed.
    let late = code_for("acme", NOW);
    store.create_code(&late).await.expect("create");
    let g = grant_for(&late, NOW);
    assert!(matches!(
        store.redeem_code(&late, &g, None, NOW + 300).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get_grant(&g.tenant, &g.id).await.expect("get"), None);
}

pub(crate) async fn refresh_rotation_honours_the_grace_window_and_revocation(
    store: Arc<dyn Store>,
) {
    let code = code_for("acme", NOW);
    client_of(&store, &code).await;
    store.create_code(&code).await.expect("create");
    let grant = grant_for(&code, NOW);
    let first = refresh_for(&grant, NOW);
    store
        .redeem_code(&code, &grant, Some(&first), NOW)
        .await
        .expect("redeem");

    // Concurrent refreshes with the same token inside the grace window all succeed.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&store);
        let (old, next) = (first.clone(), refresh_for(&grant, NOW + 10));
        tasks.push(tokio::spawn(async move {
            store.rotate_refresh_token(&old, &next, 30, NOW + 10).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("within the grace window");
    }
    let rotated = store
        .get_refresh_token(&first.tenant, &first.token_hash, NOW + 11)
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(
        rotated.rotated_at,
        Some(NOW + 10),
        "the first rotation time stays"
    );

    // After the grace window, reuse is refused.
    let after = refresh_for(&grant, NOW + 40);
    assert!(matches!(
        store
            .rotate_refresh_token(&first, &after, 30, NOW + 40)
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .get_refresh_token(&after.tenant, &after.token_hash, NOW + 40)
            .await
            .expect("get"),
        None,
        "a refused rotation writes nothing"
    );
    no_token_of_a_revoked_grant_rotates(&store, &grant, &first).await;
}

/// Once the grant is revoked, no token of it rotates.
async fn no_token_of_a_revoked_grant_rotates(
    store: &Arc<dyn Store>,
    grant: &Grant,
    first: &RefreshToken,
) {
    let second = refresh_for(grant, NOW + 50);
    store
        .rotate_refresh_token(first, &second, 1000, NOW + 45)
        .await
        .expect("wide grace");
    store
        .revoke_grant(&grant.tenant, &grant.id, NOW + 60)
        .await
        .expect("revoke");
    store
        .revoke_grant(&grant.tenant, &grant.id, NOW + 70)
        .await
        .expect("idempotent");
    let revoked = store
        .get_grant(&grant.tenant, &grant.id)
        .await
        .expect("get")
        .expect("grant");
    assert_eq!(revoked.revoked_at, Some(NOW + 60));
    assert!(!revoked.is_active(NOW + 61));
    let third = refresh_for(grant, NOW + 80);
    assert!(matches!(
        store
            .rotate_refresh_token(&second, &third, 30, NOW + 80)
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .revoke_grant(&grant.tenant, "no-such-grant", NOW)
        .await
        .expect("revoking an unknown grant is a no-op");
}

/// The public half of an ES256 key `k1` created at `NOW`.
fn es256_k1() -> PublicSigningKey {
    PublicSigningKey {
        kid: "k1".into(),
        alg: SigningAlg::ES256,
        x: "x1".into(),
        y: "y1".into(),
        n: String::new(),
        e: String::new(),
        created_at: NOW,
    }
}

pub(crate) async fn signing_keys_keep_private_halves_apart(store: Arc<dyn Store>) {
    let acme = tid("acme");
    assert!(
        store
            .list_public_keys(&acme)
            .await
            .expect("list")
            .is_empty()
    );
    let older = es256_k1();
    // An RS256 key keeps its algorithm, modulus and exponent.
    let newer = PublicSigningKey {
        kid: "k2".into(),
        alg: SigningAlg::RS256,
        x: String::new(),
        y: String::new(),
        n: "n2".into(),
        e: "AQAB".into(),
        created_at: NOW + 100,
    };
    let wrapper = LocalWrapper::random();
    let sealed = |kid: &'static str, private: &'static str| {
        let (wrapper, acme) = (&wrapper, &acme);
        async move {
            keywrap::seal(wrapper, KeyContext { tenant: acme, kid }, private)
                .await
                .expect("seal")
        }
    };
    let (first, second) = (
        sealed("k1", "cHJpdjE=").await,
        sealed("k2", "cHJpdjI=").await,
    );
    store
        .add_signing_key(&acme, &older, &first)
        .await
        .expect("add");
    store
        .add_signing_key(&acme, &newer, &second)
        .await
        .expect("add");
    let listed = store.list_public_keys(&acme).await.expect("list");
    assert_eq!(listed, vec![newer, older], "newest first");
    let stored = store
        .get_private_key(&acme, "k1")
        .await
        .expect("get")
        .expect("the sealed key");
    assert_eq!(stored, first);
    let context = KeyContext {
        tenant: &acme,
        kid: "k1",
    };
    let opened = keywrap::open(&wrapper, context, &stored)
        .await
        .expect("open");
    assert_eq!(opened.as_str(), "cHJpdjE=");
    assert_eq!(
        store.get_private_key(&acme, "nope").await.expect("get"),
        None
    );
}

pub(crate) async fn each_tenant_has_its_own_signing_keys(store: Arc<dyn Store>) {
    let (acme, other) = (tid("acme"), tid("other"));
    let key = es256_k1();
    let wrapper = LocalWrapper::random();
    let context = KeyContext {
        tenant: &acme,
        kid: "k1",
    };
    let sealed = keywrap::seal(&wrapper, context, "cHJpdjE=")
        .await
        .expect("seal");
    store
        .add_signing_key(&acme, &key, &sealed)
        .await
        .expect("add");
    // Another tenant sees none of these, and may hold a key of the same kid.
    assert!(
        store
            .list_public_keys(&other)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store.get_private_key(&other, "k1").await.expect("get"),
        None
    );
    store
        .add_signing_key(&other, &key, &sealed)
        .await
        .expect("another tenant's set");
    assert_eq!(
        store.list_public_keys(&other).await.expect("list"),
        vec![key.clone()]
    );
    // The same kid twice in one tenant's set is refused.
    assert!(
        store.add_signing_key(&acme, &key, &sealed).await.is_err(),
        "a second key under one kid"
    );
    assert_eq!(
        store.list_public_keys(&acme).await.expect("list"),
        vec![key]
    );
}
