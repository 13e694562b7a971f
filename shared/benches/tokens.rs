//! Token endpoint hot paths on the embedded store, through the full `App::handle` pipeline:
//! client authentication (SHA-256 + constant-time compare), code lookup, PKCE, the redemption
//! write, ES256 signing; refresh-token rotation; JWT verification (what a resource server
//! does per call); RFC 7662 introspection; and authorization request validation (the `GET`
//! that validates client, redirect URI, PKCE, scope and resource, parks the request and renders
//! the sign-in page). OpenID Connect: the code exchange that also signs an RS256 ID token, and
//! the generation of an RSA key (a rotation, never a request).
//!
//!     cargo bench -p gatehouse-core --bench tokens

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_core::app::App;
use gatehouse_core::config::Config;
use gatehouse_core::crypto;
use gatehouse_core::domain::{AuthorizationCode, ClientId, Email, TenantId, User, unix_now};
use gatehouse_core::http::Request;
use gatehouse_core::seed;
use gatehouse_core::store::memory::MemoryStore;
use gatehouse_core::store::{ClientStore, Directory, FlowStore};
use std::hint::black_box;
use std::sync::Arc;

const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9qXeA7C8yI-9FDv5m6GF6bSFw1fS4v";

fn form(path: &str, body: String) -> Request {
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from(body))
        .unwrap_or_default()
}

/// The embedded store with the demo tenant and an approved confidential client that holds the
/// refresh grant, driven through `App::handle` on a current-thread runtime.
struct World {
    rt: tokio::runtime::Runtime,
    store: Arc<MemoryStore>,
    app: App,
    tenant: TenantId,
    user: User,
    client: ClientId,
    secret: String,
    challenge: String,
    /// The scope of the codes `new_code` stores.
    scope: &'static str,
}

impl World {
    fn new() -> Self {
        Self::with(false)
    }

    /// `openid`: the tenant has OpenID Connect on and codes are granted `openid email`, so each
    /// exchange also signs an ID token (RS256, the default).
    fn with(openid: bool) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut config = Config::for_tests("http://127.0.0.1:8787");
        config.pending_client_cap_override = Some(0);
        let store = Arc::new(MemoryStore::new());
        rt.block_on(seed::seed_demo(store.as_ref(), &config))
            .unwrap_or_else(|e| panic!("{e}"));
        let tenant = TenantId::parse("demo").unwrap_or_else(|| panic!("tenant"));
        if openid {
            let mut t = rt
                .block_on(store.get_tenant(&tenant))
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("seeded tenant"));
            t.openid_enabled = true;
            rt.block_on(store.put_tenant(&t))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let app = App::new(store.clone(), config);
        // The seeded demo user: the token endpoint checks the user behind every code and token.
        let email = Email::parse("user@demo.test").unwrap_or_else(|| panic!("email"));
        let user = rt
            .block_on(store.get_user(&tenant, &email))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("seeded user"));
        let (client, secret) = register_approved(&rt, &app, store.as_ref(), &tenant);
        let challenge = {
            use base64::Engine as _;
            use sha2::Digest as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(VERIFIER.as_bytes()))
        };
        Self {
            rt,
            store,
            app,
            tenant,
            user,
            client,
            secret,
            challenge,
            scope: if openid {
                "openid email mcp:execute offline_access"
            } else {
                "mcp:execute offline_access"
            },
        }
    }

    fn handle(&self, req: Request) -> gatehouse_core::http::Response {
        self.rt.block_on(self.app.handle(None, req))
    }

    /// A fresh authorization code for the client, stored directly (no browser flow).
    fn new_code(&self) -> String {
        let code = crypto::new_secret();
        let now = unix_now();
        self.rt
            .block_on(self.store.create_code(&AuthorizationCode {
                code_hash: crypto::hash_secret(&code),
                tenant: self.tenant.clone(),
                client_id: self.client.clone(),
                redirect_uri: "http://localhost/cb".into(),
                code_challenge: self.challenge.clone(),
                scope: gatehouse_core::domain::ScopeSet::parse(self.scope).unwrap_or_default(),
                resource: "http://127.0.0.1:8787/t/demo/mcp".into(),
                user_id: self.user.id.clone(),
                user_email: Some(self.user.email.clone()),
                user_epoch: self.user.grant_epoch,
                auth_time: now,
                expires_at: now + 300,
                redeemed_grant: None,
                nonce: None,
            }))
            .unwrap_or_else(|e| panic!("{e}"));
        code
    }

    fn token_request(&self, grant: String) -> Request {
        form(
            "/t/demo/oauth/token",
            format!(
                "{grant}&client_id={}&client_secret={}",
                self.client, self.secret
            ),
        )
    }

    fn exchange(&self, code: &str) -> Request {
        self.token_request(format!(
            "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb"
        ))
    }

    /// The answer of a first code exchange: an access token and a refresh token.
    fn first_tokens(&self) -> serde_json::Value {
        serde_json::from_slice(self.handle(self.exchange(&self.new_code())).body())
            .unwrap_or_default()
    }
}

/// Registers a confidential client with the refresh grant and approves it in the store.
fn register_approved(
    rt: &tokio::runtime::Runtime,
    app: &App,
    store: &MemoryStore,
    tenant: &TenantId,
) -> (ClientId, String) {
    let register = http::Request::builder()
        .method("POST")
        .uri("/t/demo/oauth/register")
        .header("content-type", "application/json")
        .body(Bytes::from_static(br#"{"client_name":"bench","redirect_uris":["http://localhost/cb"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"client_secret_post"}"#))
        .unwrap_or_default();
    let registered: serde_json::Value =
        serde_json::from_slice(rt.block_on(app.handle(None, register)).body()).unwrap_or_default();
    let id = ClientId::parse(registered["client_id"].as_str().unwrap_or_default())
        .unwrap_or_else(|| panic!("client id"));
    let version = rt
        .block_on(store.get_client(tenant, &id, unix_now()))
        .ok()
        .flatten()
        .map_or(0, |c| c.config_version);
    rt.block_on(store.approve_client(tenant, &id, version, "bench", unix_now()))
        .unwrap_or_else(|e| panic!("{e}"));
    let secret = registered["client_secret"].as_str().unwrap_or_default();
    (id, secret.to_owned())
}

fn code_exchange(c: &mut Criterion) {
    let w = World::new();
    c.bench_function("token: authorization_code exchange (embedded store)", |b| {
        b.iter_batched(
            || w.new_code(),
            |code| {
                let resp = w.handle(w.exchange(&code));
                assert_eq!(resp.status(), 200);
                black_box(resp)
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

fn openid_code_exchange(c: &mut Criterion) {
    let w = World::with(true);
    c.bench_function(
        "token: authorization_code exchange with an RS256 ID token (embedded store)",
        |b| {
            b.iter_batched(
                || w.new_code(),
                |code| {
                    let resp = w.handle(w.exchange(&code));
                    assert_eq!(resp.status(), 200);
                    assert!(resp.body().windows(9).any(|x| x == b"\"id_token"));
                    black_box(resp)
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

fn rsa_key_generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("keygen");
    group.sample_size(10);
    group.bench_function("RSA-2048 signing key (rotation, not per request)", |b| {
        b.iter(|| {
            gatehouse_core::keygen::generate_key(
                gatehouse_core::domain::SigningAlg::RS256,
                unix_now(),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    group.finish();
}

/// Opening a sealed private key with a local wrapping key (two AES-256-GCM decryptions): what
/// a signing key costs once per cache period besides the store read (with KMS, a `Decrypt` call
/// replaces the first decryption).
fn sealed_key_open(c: &mut Criterion) {
    use gatehouse_core::keywrap::{self, KeyContext, LocalWrapper};
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let wrapper = LocalWrapper::random();
    let tenant = TenantId::parse("demo").unwrap_or_else(|| panic!("demo"));
    let ctx = KeyContext {
        tenant: &tenant,
        kid: "k1",
    };
    let (_, private) =
        gatehouse_core::keygen::generate_key(gatehouse_core::domain::SigningAlg::ES256, unix_now())
            .unwrap_or_else(|e| panic!("{e}"));
    let sealed = rt
        .block_on(keywrap::seal(&wrapper, ctx, &private))
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function(
        "keywrap: open a sealed ES256 key (local wrapping key)",
        |b| {
            b.iter(|| {
                rt.block_on(keywrap::open(&wrapper, ctx, black_box(&sealed)))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        },
    );
}

fn refresh_rotation(c: &mut Criterion) {
    let w = World::new();
    let mut refresh = w.first_tokens()["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.bench_function("token: refresh_token rotation (embedded store)", |b| {
        b.iter(|| {
            let resp = w.handle(
                w.token_request(format!("grant_type=refresh_token&refresh_token={refresh}")),
            );
            assert_eq!(resp.status(), 200);
            let doc: serde_json::Value = serde_json::from_slice(resp.body()).unwrap_or_default();
            refresh = doc["refresh_token"].as_str().unwrap_or_default().to_owned();
        })
    });
}

fn verify_and_introspect(c: &mut Criterion) {
    let w = World::new();
    let access = w.first_tokens()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let keys =
        w.rt.block_on(w.app.keys.key_set(
            w.store.as_ref(),
            &TenantId::parse("demo").unwrap_or_else(|| panic!("demo")),
            false,
            unix_now(),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("jwt: verify an ES256 access token", |b| {
        b.iter(|| {
            let claims = gatehouse_core::tokens::verify_access_token(
                black_box(&access),
                &keys,
                "http://127.0.0.1:8787/t/demo",
                Some("http://127.0.0.1:8787/t/demo/mcp"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            black_box(claims)
        })
    });
    c.bench_function("introspect: an access token (embedded store)", |b| {
        b.iter(|| {
            let resp = w.handle(form(
                "/t/demo/oauth/introspect",
                format!(
                    "token={access}&client_id={}&client_secret={}",
                    w.client, w.secret
                ),
            ));
            assert_eq!(resp.status(), 200);
            black_box(resp)
        })
    });
}

fn authorize_get(c: &mut Criterion) {
    let w = World::new();
    let authorize = format!(
        "/t/demo/oauth/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&code_challenge={}&code_challenge_method=S256&state=s&scope=mcp%3Aexecute",
        w.client, w.challenge
    );
    c.bench_function(
        "authorize: validate a request and render sign-in (embedded store)",
        |b| {
            b.iter(|| {
                let req = http::Request::builder()
                    .method("GET")
                    .uri(authorize.as_str())
                    .body(Bytes::new())
                    .unwrap_or_default();
                let resp = w.handle(req);
                assert_eq!(resp.status(), 200);
                black_box(resp)
            })
        },
    );
}

criterion_group!(
    benches,
    code_exchange,
    openid_code_exchange,
    rsa_key_generation,
    sealed_key_open,
    refresh_rotation,
    verify_and_introspect,
    authorize_get
);
criterion_main!(benches);
