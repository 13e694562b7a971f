//! Administration: users and tenants, client listing pages, deletion, API tokens, sessions and
//! sign-in counters.

use crate::support::{NOW, client_of, code_for, grant_for, pending_client, quota, tenant, tid};
use gatehouse_core::crypto;
use gatehouse_core::domain::{
    ApiToken, ClientStatus, CreatedByType, Email, Role, Session, TenantId, UnixTime, User,
};
use gatehouse_core::store::{Store, StoreError};
use std::sync::Arc;

pub(crate) async fn users_are_created_once_and_replaced_by_put(store: Arc<dyn Store>) {
    let mut user = User {
        id: crypto::new_id(),
        tenant: tid("acme"),
        email: Email::parse("Admin@Acme.Test").expect("email"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: Role::Admin,
        disabled: false,
        created_at: NOW,
        session_epoch: 0,
        grant_epoch: 0,
        name: Some("Ada Lovelace".into()),
    };
    let email = Email::parse("admin@acme.test").expect("email");
    assert_eq!(
        store.get_user(&user.tenant, &email).await.expect("get"),
        None
    );
    store.create_user(&user).await.expect("create");
    assert!(matches!(
        store.create_user(&user).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.get_user(&user.tenant, &email).await.expect("get"),
        Some(user.clone())
    );
    assert_eq!(
        store.get_user(&tid("other"), &email).await.expect("get"),
        None
    );
    user.disabled = true;
    user.role = Role::User;
    store.put_user(&user).await.expect("put");
    assert_eq!(
        store.get_user(&user.tenant, &email).await.expect("get"),
        Some(user)
    );
}

pub(crate) async fn tenants_and_users_are_listed_per_tenant(store: Arc<dyn Store>) {
    for id in ["beta", "alpha"] {
        store.create_tenant(&tenant(id)).await.expect("create");
    }
    let ids: Vec<String> = store
        .list_tenants()
        .await
        .expect("list")
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);
    for (t, email) in [
        ("alpha", "zed@a.test"),
        ("alpha", "amy@a.test"),
        ("beta", "bob@b.test"),
    ] {
        let user = User {
            id: crypto::new_id(),
            tenant: tid(t),
            email: Email::parse(email).expect("email"),
            password_hash: "x".into(),
            role: Role::User,
            disabled: false,
            created_at: NOW,
            session_epoch: 0,
            grant_epoch: 0,
            name: None,
        };
        store.create_user(&user).await.expect("create");
    }
    let emails: Vec<String> = store
        .list_users(&tid("alpha"))
        .await
        .expect("list")
        .iter()
        .map(|u| u.email.to_string())
        .collect();
    assert_eq!(emails, ["amy@a.test", "zed@a.test"]);
}

pub(crate) async fn client_pages_walk_every_live_client_once(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut c = pending_client("acme", NOW + i);
        if i == 2 {
            c.expires_at = Some(NOW + 3); // expired by the time we list
        }
        store
            .create_pending_client(&c, quota(0), NOW + i)
            .await
            .expect("create");
        if i != 2 {
            ids.push(c.client_id.to_string());
        }
    }
    store
        .create_pending_client(&pending_client("other", NOW), quota(0), NOW)
        .await
        .expect("create");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let (page, next) = store
            .list_clients_page(&tid("acme"), after.as_deref(), 2, NOW + 10)
            .await
            .expect("page");
        pages += 1;
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|c| c.client_id.to_string()));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "oldest first, each live client once, expired skipped"
    );
    assert_eq!(pages, 2);
}

pub(crate) async fn deleting_a_client_revokes_its_grants(store: Arc<dyn Store>) {
    let mut client = pending_client("acme", NOW);
    client.status = ClientStatus::Approved;
    client.expires_at = None;
    client.created_by = CreatedByType::User;
    store.create_client(&client).await.expect("create");
    assert!(matches!(
        store.create_client(&client).await,
        Err(StoreError::AlreadyExists)
    ));
    let mut code = code_for("acme", NOW);
    code.client_id = client.client_id.clone();
    store.create_code(&code).await.expect("code");
    let grant = grant_for(&code, NOW);
    store
        .redeem_code(&code, &grant, None, NOW)
        .await
        .expect("redeem");
    let bystander_code = code_for("acme", NOW);
    client_of(&store, &bystander_code).await;
    store.create_code(&bystander_code).await.expect("code");
    let bystander = grant_for(&bystander_code, NOW);
    store
        .redeem_code(&bystander_code, &bystander, None, NOW)
        .await
        .expect("redeem");

    store
        .delete_client(&client.tenant, &client.client_id, NOW + 1)
        .await
        .expect("delete");
    assert_eq!(
        store
            .get_client(&client.tenant, &client.client_id, NOW + 1)
            .await
            .expect("get"),
        None
    );
    let revoked = store
        .get_grant(&tid("acme"), &grant.id)
        .await
        .expect("get")
        .expect("grant");
    assert_eq!(revoked.revoked_at, Some(NOW + 1));
    let untouched = store
        .get_grant(&tid("acme"), &bystander.id)
        .await
        .expect("get")
        .expect("grant");
    assert_eq!(untouched.revoked_at, None, "other clients' grants stay");
    assert!(matches!(
        store
            .delete_client(&client.tenant, &client.client_id, NOW + 2)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn a_code_of_a_deleted_client_cannot_be_redeemed(store: Arc<dyn Store>) {
    let code = code_for("acme", NOW);
    client_of(&store, &code).await;
    store.create_code(&code).await.expect("code");
    store
        .delete_client(&code.tenant, &code.client_id, NOW + 1)
        .await
        .expect("delete");
    let grant = grant_for(&code, NOW + 2);
    assert!(matches!(
        store.redeem_code(&code, &grant, None, NOW + 2).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .get_grant(&grant.tenant, &grant.id)
            .await
            .expect("get"),
        None,
        "no grant escapes the deletion"
    );
}

pub(crate) async fn api_tokens_and_sessions_end(store: Arc<dyn Store>) {
    let token = ApiToken {
        token_hash: crypto::hash_secret("gha_acme_x"),
        tenant: tid("acme"),
        email: Email::parse("admin@acme.test").expect("email"),
        name: "ci".into(),
        created_at: NOW,
        expires_at: NOW + 100,
    };
    store.create_api_token(&token).await.expect("create");
    assert!(matches!(
        store.create_api_token(&token).await,
        Err(StoreError::AlreadyExists)
    ));
    let get = |tenant: &'static str, at: UnixTime| {
        let store = store.clone();
        let hash = token.token_hash.clone();
        async move {
            store
                .get_api_token(&tid(tenant), &hash, at)
                .await
                .expect("get")
        }
    };
    assert_eq!(get("acme", NOW + 1).await, Some(token.clone()));
    assert_eq!(get("other", NOW + 1).await, None);
    assert_eq!(get("acme", NOW + 100).await, None, "expired on read");
    store
        .delete_api_token(&tid("acme"), &token.token_hash)
        .await
        .expect("delete");
    assert_eq!(get("acme", NOW + 1).await, None);

    let session = Session {
        id_hash: crypto::hash_secret("sid"),
        tenant: tid("acme"),
        user_id: "u1".into(),
        email: Email::parse("admin@acme.test").expect("email"),
        role: Role::Admin,
        epoch: 0,
        grant_epoch: 0,
        created_at: NOW,
        expires_at: NOW + 100,
    };
    store.create_session(&session).await.expect("create");
    store
        .delete_session(&tid("acme"), &session.id_hash)
        .await
        .expect("delete");
    assert_eq!(
        store
            .get_session(&tid("acme"), &session.id_hash, NOW + 1)
            .await
            .expect("get"),
        None
    );
}

/// Sign-in attempts are counted per account and window, atomically, until the window's end;
/// a successful one is taken back.
pub(crate) async fn signin_attempts_are_counted_per_account_and_window(store: Arc<dyn Store>) {
    let t = tid("acme");
    let (a, b) = (
        crypto::hash_secret("a@acme.test"),
        crypto::hash_secret("b@acme.test"),
    );
    let window = NOW / 60;
    let end = (window + 1) * 60;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, t, a) = (Arc::clone(&store), t.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            store.count_signin_attempt(&t, &a, window, end, NOW).await
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.expect("join").expect("count"));
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=10).collect::<Vec<u32>>(),
        "every attempt counted once"
    );
    let count = |store: &Arc<dyn Store>, t: &TenantId, acct: &str, w: i64, now: UnixTime| {
        let (store, t, acct) = (Arc::clone(store), t.clone(), acct.to_owned());
        async move {
            store
                .count_signin_attempt(&t, &acct, w, (w + 1) * 60, now)
                .await
                .expect("count")
        }
    };
    // Another account, tenant or window starts at one.
    assert_eq!(count(&store, &t, &b, window, NOW + 1).await, 1);
    assert_eq!(count(&store, &tid("other"), &a, window, NOW + 1).await, 1);
    assert_eq!(count(&store, &t, &a, window + 1, NOW + 61).await, 1);
    // A success is taken back; taking back never goes below zero nor creates a counter.
    store
        .uncount_signin_attempt(&t, &a, window)
        .await
        .expect("uncount");
    assert_eq!(count(&store, &t, &a, window, NOW + 2).await, 10);
    store
        .uncount_signin_attempt(&t, &crypto::hash_secret("nobody"), window)
        .await
        .expect("uncount absent");
    assert_eq!(
        count(&store, &t, &crypto::hash_secret("nobody"), window, NOW + 2).await,
        1
    );
}
