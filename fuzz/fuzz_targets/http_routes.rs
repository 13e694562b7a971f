//! The whole request pipeline on the embedded store: the first byte picks an endpoint, a method
//! and the credential to present, the rest is the query string or body. Every protected route
//! gets a real credential, so the fuzzer reaches the parsers behind authentication: the admin
//! API (a live admin API token), RFC 7592 (a client's registration access token) and the demo
//! MCP server's JSON-RPC (a live access token), besides the authorization request, the token,
//! revocation and introspection forms, registration and the console. Never a panic, never a 5xx.
#![no_main]

use bytes::Bytes;
use gatehouse_core::app::App;
use gatehouse_core::config::Config;
use gatehouse_core::domain::{AuthorizationCode, ClientId, Email, ScopeSet, TenantId, unix_now};
use gatehouse_core::store::{Directory, FlowStore};
use gatehouse_core::store::memory::MemoryStore;
use gatehouse_core::{crypto, seed};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

/// The credential a target presents.
#[derive(Clone, Copy)]
enum Credential {
    None,
    /// A live admin API token of the demo administrator.
    Admin,
    /// The registration access token of the client in the path (RFC 7592).
    Registration,
    /// A live access token for the demo MCP resource.
    Access,
}

/// `{client}` in a path stands for the world's registered client.
const TARGETS: &[(&str, &str, &str, Credential)] = &[
    ("GET", "/t/demo/oauth/authorize", "query", Credential::None),
    ("POST", "/t/demo/oauth/authorize", FORM, Credential::None),
    ("POST", "/t/demo/oauth/token", FORM, Credential::None),
    ("POST", "/t/demo/oauth/revoke", FORM, Credential::None),
    ("POST", "/t/demo/oauth/introspect", FORM, Credential::None),
    ("POST", "/t/demo/oauth/register", JSON, Credential::None),
    ("PUT", "/t/demo/oauth/register/{client}", JSON, Credential::Registration),
    ("POST", "/t/demo/admin/approve", FORM, Credential::None),
    ("POST", "/t/demo/admin/signin", FORM, Credential::None),
    ("GET", "/t/demo/api/v1/oauth-clients", "query", Credential::Admin),
    ("POST", "/t/demo/api/v1/oauth-clients", JSON, Credential::Admin),
    ("PATCH", "/t/demo/api/v1/oauth-clients/{client}", JSON, Credential::Admin),
    ("PATCH", "/t/demo/api/v1/settings", JSON, Credential::Admin),
    ("POST", "/t/demo/api/v1/users", JSON, Credential::Admin),
    ("POST", "/t/demo/api/v1/tokens", JSON, Credential::Admin),
    ("POST", "/t/demo/mcp", JSON, Credential::Access),
];
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

struct World {
    rt: tokio::runtime::Runtime,
    app: App,
    client: String,
    admin_token: String,
    registration_token: String,
    access_token: String,
}

/// A resolver that answers nothing: whatever the fuzzer turns on (a settings PATCH may enable
/// metadata documents), no request leaves the process.
struct NoNetwork;

impl gatehouse_core::cimd::fetch::Resolve for NoNetwork {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async { Err(std::io::Error::other("no network while fuzzing")) })
    }
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = Config::for_tests("http://127.0.0.1:8787");
        config.pending_client_cap_override = Some(0);
        let store = Arc::new(MemoryStore::new());
        rt.block_on(seed::seed_demo(store.as_ref(), &config))
            .expect("seed");
        let mut app = App::new(store.clone(), config);
        app.cimd = gatehouse_core::cimd::fetch::Fetcher::new(Default::default(), false, Vec::new())
            .with_resolver(Arc::new(NoNetwork));
        let (client, registration_token) = rt.block_on(register(&app));
        let admin_token = rt.block_on(admin_token(store.as_ref()));
        let access_token = rt.block_on(access_token(&app, store.as_ref(), &client));
        let world = World {
            rt,
            app,
            client,
            admin_token,
            registration_token,
            access_token,
        };
        world.check_credentials();
        world
    })
}

impl World {
    /// Each credential opens its door, so the fuzzer's inputs reach the parsers behind it.
    fn check_credentials(&self) {
        let get = |path: String, token: &str| {
            let req = http::Request::builder()
                .method(if path.ends_with("/mcp") { "POST" } else { "GET" })
                .uri(path.as_str())
                .header("host", "127.0.0.1:8787")
                .header("content-type", JSON)
                .header("authorization", format!("Bearer {token}"))
                .body(Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
                .expect("request");
            let status = self.rt.block_on(self.app.handle(None, req)).status();
            assert!(status.is_success(), "{path} refused the fuzz world's credential: {status}");
        };
        get("/t/demo/api/v1/oauth-clients".into(), &self.admin_token);
        get(format!("/t/demo/oauth/register/{}", self.client), &self.registration_token);
        get("/t/demo/mcp".into(), &self.access_token);
    }
}

fn demo() -> TenantId {
    TenantId::parse("demo").expect("tenant id")
}

/// A public client registered through the endpoint and approved in the store: its id and its
/// registration access token.
async fn register(app: &App) -> (String, String) {
    let req = http::Request::builder()
        .method("POST")
        .uri("/t/demo/oauth/register")
        .header("host", "127.0.0.1:8787")
        .header("content-type", JSON)
        .body(Bytes::from_static(
            br#"{"client_name":"fuzz","redirect_uris":["http://localhost/cb"],"token_endpoint_auth_method":"none"}"#,
        ))
        .expect("request");
    let resp = app.handle(None, req).await;
    let doc: serde_json::Value = serde_json::from_slice(resp.body()).expect("registration");
    let id = doc["client_id"].as_str().expect("client_id").to_owned();
    let client_id = ClientId::parse(&id).expect("id");
    let now = unix_now();
    let version = app
        .store
        .get_client(&demo(), &client_id, now)
        .await
        .expect("read")
        .expect("client")
        .config_version;
    app.store
        .approve_client(&demo(), &client_id, version, "fuzz", now)
        .await
        .expect("approve");
    let rat = doc["registration_access_token"].as_str().expect("rat");
    (id, rat.to_owned())
}

async fn admin_token(store: &MemoryStore) -> String {
    let email = Email::parse("admin@demo.test").expect("email");
    let admin = store.get_user(&demo(), &email).await.expect("read").expect("admin");
    let year = 365 * 24 * 3600;
    let (record, token) = gatehouse_core::endpoints::admin::new_api_token(
        &demo(),
        &admin,
        "fuzz",
        year,
        unix_now(),
    );
    store.create_api_token(&record).await.expect("token");
    token
}

/// A code stored for the client and the demo user, exchanged at the token endpoint.
async fn access_token(app: &App, store: &MemoryStore, client: &str) -> String {
    const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9qXeA7C8yI-9FDv5m6GF6bSFw1fS4v";
    // BASE64URL(SHA256(VERIFIER)), RFC 7636 §4.2.
    const CHALLENGE: &str = "USliqey8fzQoZDEZ94a7zpTWKx6Jh_Ytq3Rmciw1Gec";
    let email = Email::parse("user@demo.test").expect("email");
    let user = store.get_user(&demo(), &email).await.expect("read").expect("user");
    let code = crypto::new_secret();
    let now = unix_now();
    store
        .create_code(&AuthorizationCode {
            code_hash: crypto::hash_secret(&code),
            tenant: demo(),
            client_id: ClientId::parse(client).expect("id"),
            redirect_uri: "http://localhost/cb".into(),
            code_challenge: CHALLENGE.into(),
            scope: ScopeSet::parse("mcp:execute").expect("scope"),
            resource: "http://127.0.0.1:8787/t/demo/mcp".into(),
            user_id: user.id.clone(),
            user_email: Some(user.email.clone()),
            user_epoch: user.grant_epoch,
            auth_time: now,
            expires_at: now + 300,
            redeemed_grant: None,
            nonce: None,
        })
        .await
        .expect("code");
    let body = format!(
        "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&client_id={client}"
    );
    let req = http::Request::builder()
        .method("POST")
        .uri("/t/demo/oauth/token")
        .header("host", "127.0.0.1:8787")
        .header("content-type", FORM)
        .body(Bytes::from(body))
        .expect("request");
    let resp = app.handle(None, req).await;
    let doc: serde_json::Value = serde_json::from_slice(resp.body()).expect("token answer");
    doc["access_token"].as_str().expect("access_token").to_owned()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (method, path, kind, credential) = TARGETS[usize::from(pick) % TARGETS.len()];
    let w = world();
    let path = path.replace("{client}", &w.client);
    let mut builder = http::Request::builder()
        .method(method)
        .header("host", "127.0.0.1:8787");
    let bearer = match credential {
        Credential::None => None,
        Credential::Admin => Some(&w.admin_token),
        Credential::Registration => Some(&w.registration_token),
        Credential::Access => Some(&w.access_token),
    };
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let req = if kind == "query" {
        // Only bytes a URI may carry; the HTTP layer refuses the rest before routing.
        let query: String = rest
            .iter()
            .map(|b| char::from(*b))
            .filter(|c| c.is_ascii_graphic() && *c != '#')
            .collect();
        builder.uri(format!("{path}?{query}")).body(Bytes::new())
    } else {
        builder
            .uri(path.as_str())
            .header("content-type", kind)
            .body(Bytes::copy_from_slice(rest))
    };
    let Ok(req) = req else {
        return;
    };
    let resp = w.rt.block_on(w.app.handle(None, req));
    assert!(
        !resp.status().is_server_error(),
        "{method} {path} answered {}",
        resp.status()
    );
});
