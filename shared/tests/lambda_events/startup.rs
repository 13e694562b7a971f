//! The Lambda start-up path on DynamoDB: `gatehouse_core::lambda::init_app()` with the
//! environment the SAM template gives each function, then real events through `handle_event`.
//!
//! `init_app` reads its configuration from the process environment. Setting variables inside
//! this multi-threaded test binary would race with every other test reading the environment,
//! and needs `unsafe { std::env::set_var }`, which the workspace forbids (`unsafe_code =
//! "forbid"` cannot be lifted by an `allow`). So the test runs this one test again in a child
//! process of the same binary, with the variables set on the `Command`: the child starts up as
//! a Lambda function would and serves the events; the parent prepares the table and checks.

use crate::support::{HOST, event, json_body, token_request};
use crate::template::{EnvValue, environment, function_of, read};
use gatehouse_core::domain::{SigningAlg, Tenant, TenantId, unix_now};
use gatehouse_core::lambda::{handle_event, init_app};
use gatehouse_core::router::Function;
use gatehouse_core::store::dynamo::{DynamoStore, sdk_config};
use gatehouse_core::store::{ClientStore, Directory};
use lambda_http::RequestExt;
use serde_json::json;

/// Set only in the child: the logical id of the template function it starts up as.
const CHILD: &str = "GATEHOUSE_TEST_INIT_APP_AS";
const THIS_TEST: &str = "startup::init_app_on_dynamodb_serves_events_with_the_template_environment";
const FUNCTIONS: [&str; 3] = ["DiscoveryFunction", "RegisterFunction", "TokenFunction"];

#[tokio::test]
async fn init_app_on_dynamodb_serves_events_with_the_template_environment() {
    if let Ok(logical_id) = std::env::var(CHILD) {
        return start_up_and_serve(&logical_id).await;
    }
    // The same policy as the DynamoDB contract tests (tests/store_contract): no endpoint is a
    // failure, not a skip.
    let endpoint = std::env::var("GATEHOUSE_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "GATEHOUSE_TEST_DYNAMODB_ENDPOINT is not set: the Lambda start-up test needs a \
             DynamoDB API endpoint. Run ./tests/run, which starts moto's server and sets it."
        )
    });
    let table = format!("gatehouse-lambda-{}", gatehouse_core::crypto::new_id());
    let shared = sdk_config(Some(&endpoint)).await;
    let region = shared.region().expect("a region").to_string();
    let store = DynamoStore::new(test_client(&shared), table.clone());
    store.ensure_table().await.expect("create the test table");
    let demo = Tenant::new(TenantId::parse("demo").expect("tenant id"), "Demo");
    store.create_tenant(&demo).await.expect("create the tenant");
    // The stack's event bus (`!Ref EventBus`), on the same emulator.
    let bus = format!("gatehouse-lambda-{}", gatehouse_core::crypto::new_id());
    let conf = aws_sdk_eventbridge::config::Builder::from(&shared)
        .credentials_provider(credentials())
        .build();
    aws_sdk_eventbridge::Client::from_conf(conf)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("create the event bus");

    // The stack's signing-keys KMS key (`!Ref SigningKeysKey`), on the same emulator.
    let kms = aws_sdk_kms::config::Builder::from(&shared)
        .credentials_provider(credentials())
        .build();
    let key = aws_sdk_kms::Client::from_conf(kms)
        .create_key()
        .send()
        .await
        .expect("create the KMS key");
    let key = key.key_metadata().expect("key").key_id().to_owned();
    // Where the children send X-Ray subsegments (Lambda's daemon address variable).
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let daemon_addr = daemon.local_addr().expect("its address").to_string();
    for logical_id in FUNCTIONS {
        let mut env = child_env(logical_id, (&table, &bus, &key), &endpoint, &region);
        env.push(("AWS_XRAY_DAEMON_ADDRESS".into(), daemon_addr.clone()));
        let stdout = run_child(logical_id, &env);
        check_metrics(logical_id, &env, &stdout);
    }
    check_subsegments(&daemon);
    // The registration the register function answered is in the table the template named.
    let clients = store
        .list_clients(&demo.id, unix_now())
        .await
        .expect("list clients");
    let names: Vec<&str> = clients
        .iter()
        .map(|c| c.metadata.client_name.as_str())
        .collect();
    assert_eq!(names, ["Start-up agent"]);
}

/// The emulator's credentials (every AWS SDK takes the same type).
fn credentials() -> aws_sdk_dynamodb::config::Credentials {
    aws_sdk_dynamodb::config::Credentials::new(
        "testing",
        "testing",
        None,
        None,
        "lambda-start-up-test",
    )
}

fn test_client(shared: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(shared)
        .credentials_provider(credentials())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// The template's environment for the function (`!Ref Table`, `!Ref EventBus` and
/// `!Ref SigningKeysKey` being the test's table, bus and KMS key), the
/// endpoint override, and what the Lambda runtime adds: region and credentials.
fn child_env(
    logical_id: &str,
    (table, bus, key): (&str, &str, &str),
    endpoint: &str,
    region: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = environment(&read(), logical_id)
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                EnvValue::Literal(v) => v,
                EnvValue::Resource(r) if r == "Table" => table.to_owned(),
                EnvValue::Resource(r) if r == "EventBus" => bus.to_owned(),
                EnvValue::Resource(r) if r == "SigningKeysKey" => key.to_owned(),
                EnvValue::Resource(r) => panic!("{name}: no test value for !Ref {r}"),
            };
            (name, value)
        })
        .collect();
    assert!(
        env.iter()
            .any(|(name, value)| name == "GATEHOUSE_TABLE" && value == table),
        "{logical_id}: the template names no table: {env:?}"
    );
    env.push(("GATEHOUSE_DYNAMODB_ENDPOINT".into(), endpoint.into()));
    for (name, value) in [
        ("AWS_REGION", region),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        env.push((name.into(), value.into()));
    }
    env
}

/// The business metrics the child wrote to stdout in CloudWatch Embedded Metric Format
/// (`gatehouse_core::metrics`): the registration counted once as registered and pending, in
/// the `Gatehouse` namespace with the template's stage and the tenant as dimensions; the
/// discovery and token children (a metadata read, a refused token request) counted nothing.
fn check_metrics(logical_id: &str, env: &[(String, String)], stdout: &str) {
    let documents: Vec<serde_json::Value> = stdout
        .lines()
        // The test harness may have begun the line ("test … ... ") before the child wrote.
        .filter_map(|l| l.find("{\"_aws\"").map(|at| &l[at..]))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("EMF line {l}: {e}")))
        .collect();
    if logical_id != "RegisterFunction" {
        assert!(documents.is_empty(), "{logical_id} counted: {documents:?}");
        return;
    }
    let stage = env
        .iter()
        .find(|(name, _)| name == "GATEHOUSE_STAGE")
        .map(|(_, v)| v.as_str())
        .expect("the template gives every function GATEHOUSE_STAGE");
    let [doc] = documents.as_slice() else {
        panic!("one EMF document expected: {stdout}");
    };
    let now_ms = u64::try_from(unix_now()).expect("time") * 1000;
    let at = doc["_aws"]["Timestamp"].as_u64().expect("Timestamp");
    assert!(
        at.abs_diff(now_ms) < 120_000,
        "timestamp {at}, now {now_ms}"
    );
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Gatehouse");
    assert_eq!(directive["Dimensions"], json!([["Stage", "Tenant"]]));
    let mut names: Vec<(&str, &str)> = directive["Metrics"]
        .as_array()
        .expect("Metrics")
        .iter()
        .map(|m| {
            (
                m["Name"].as_str().unwrap_or(""),
                m["Unit"].as_str().unwrap_or(""),
            )
        })
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            ("ClientsRegistered", "Count"),
            ("PendingClientsCreated", "Count")
        ]
    );
    assert_eq!(doc["Stage"], stage);
    assert_eq!(doc["Tenant"], "demo");
    assert_eq!(doc["ClientsRegistered"], 1);
    assert_eq!(doc["PendingClientsCreated"], 1);
}

/// The X-Ray trace of the registration event (only that event is traced).
const TRACE_ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
const TRACE_PARENT: &str = "53995c3f42cd8ad8";

/// The subsegments the children sent to the X-Ray daemon address: the table calls of the one
/// traced (sampled) invocation, each under the invocation's segment; none from the untraced
/// ones.
fn check_subsegments(daemon: &std::net::UdpSocket) {
    daemon.set_nonblocking(true).expect("non-blocking");
    let mut buf = vec![0u8; 65_536];
    let mut docs: Vec<serde_json::Value> = Vec::new();
    while let Ok(n) = daemon.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (header, doc) = text
            .split_once('\n')
            .expect("header line, then the document");
        assert_eq!(header, r#"{"format":"json","version":1}"#);
        docs.push(serde_json::from_str(doc).expect("a JSON subsegment"));
    }
    assert!(!docs.is_empty(), "no subsegment reached the daemon address");
    let mut operations: Vec<&str> = Vec::new();
    for doc in &docs {
        assert_eq!(doc["trace_id"], TRACE_ROOT, "{doc}");
        assert_eq!(doc["parent_id"], TRACE_PARENT, "{doc}");
        assert_eq!(doc["type"], "subsegment");
        assert_eq!(doc["namespace"], "aws");
        assert!(
            matches!(doc["name"].as_str(), Some("DynamoDB" | "EventBridge")),
            "{doc}"
        );
        assert_eq!(doc["fault"], false, "{doc}");
        let (start, end) = (doc["start_time"].as_f64(), doc["end_time"].as_f64());
        assert!(
            matches!((start, end), (Some(s), Some(e)) if s > 1.7e9 && e >= s),
            "{doc}"
        );
        operations.push(doc["aws"]["operation"].as_str().unwrap_or_default());
    }
    // The registration's reads (pending counter, vendor trust), its transaction, its audit
    // event and its notification (EventBridge).
    for op in ["GetItem", "TransactWriteItems", "PutItem", "PutEvents"] {
        assert!(operations.contains(&op), "{op} not traced: {operations:?}");
    }
}

/// Runs this test again, as `logical_id`, with `env` and no other `GATEHOUSE_*` variable;
/// returns its standard output.
fn run_child(logical_id: &str, env: &[(String, String)]) -> String {
    let mut command = std::process::Command::new(std::env::current_exe().expect("test binary"));
    command.args([THIS_TEST, "--exact", "--nocapture", "--test-threads=1"]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GATEHOUSE_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(n, v)| (n, v)));
    command.env(CHILD, logical_id);
    let output = command.output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!(
        "{logical_id} with {env:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the start-up failed: {report}");
    // A filter that matched nothing would succeed too.
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {report}"
    );
    stdout.into_owned()
}

/// In the child: start up as the Lambda binary does, then serve an event of the function.
async fn start_up_and_serve(logical_id: &str) {
    let app = init_app().await.expect("init_app");
    // The template's PublicUrl defaults to "": the issuer comes from each request's host.
    assert_eq!(app.config.public_url, None);
    match function_of(logical_id) {
        Function::Discovery => {
            let path = "/.well-known/oauth-authorization-server/t/demo";
            let resp = handle_event(
                &app,
                Function::Discovery,
                event("GET", &format!("GET {path}"), path, None),
            )
            .await;
            assert_eq!(resp.status(), 200);
            let doc = json_body(&resp);
            assert_eq!(doc["issuer"], format!("https://{HOST}/t/demo"));
            assert_eq!(
                doc["registration_endpoint"],
                format!("https://{HOST}/t/demo/oauth/register")
            );
        }
        Function::Register => {
            let body = json!({
                "client_name": "Start-up agent",
                "redirect_uris": ["https://agent.example.com/callback"],
            });
            let route = "POST /t/{tenant}/oauth/register";
            let mut context = lambda_http::Context::default();
            context.xray_trace_id =
                Some(format!("Root={TRACE_ROOT};Parent={TRACE_PARENT};Sampled=1"));
            let ev = event("POST", route, "/t/demo/oauth/register", Some(&body))
                .with_lambda_context(context);
            let resp = handle_event(&app, Function::Register, ev).await;
            assert_eq!(resp.status(), 201);
            assert_eq!(json_body(&resp)["client_name"], "Start-up agent");
        }
        Function::Token => {
            // The token function's own template variables, parsed.
            let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}"));
            assert_eq!(
                app.config.access_token_ttl_secs.to_string(),
                var("GATEHOUSE_ACCESS_TOKEN_TTL")
            );
            assert_eq!(
                app.config.refresh_grace_secs.to_string(),
                var("GATEHOUSE_REFRESH_GRACE")
            );
            let form = format!(
                "grant_type=authorization_code&code=x&code_verifier={}&client_id=nobody&client_secret=s",
                "a".repeat(43)
            );
            let resp = token_request(&app, form).await;
            assert_eq!(resp.status(), 401);
            assert_eq!(json_body(&resp)["error"], "invalid_client");
            // The template names a KMS key: the function seals a tenant's first key with it
            // (GenerateDataKey) and opens it through it (Decrypt).
            assert_eq!(app.key_wrapper.kind(), "kms");
            let demo = TenantId::parse("demo").expect("tenant id");
            let key = app
                .keys
                .signing_key(app.signing_keys(), &demo, SigningAlg::ES256, unix_now())
                .await
                .expect("a signing key sealed and opened with KMS");
            let sealed = app
                .store
                .get_private_key(&demo, &key.kid)
                .await
                .expect("read the sealed key")
                .expect("stored");
            assert_eq!(sealed.wrapping, "kms");
        }
        other => panic!("no event for {other:?}"),
    }
}
