//! Structured logs. JSON on Lambda (one object per line, with the request span's fields:
//! request id, route, tenant); human-readable locally unless `GATEHOUSE_LOG_FORMAT=json`.
//! Filter with `GATEHOUSE_LOG` (e.g. `info`, `gatehouse_core=debug`). Nothing logs a secret:
//! request bodies, query strings and headers are never logged.

use std::cell::Cell;
use std::future::Future;
#[cfg(feature = "dynamodb-access-log")]
use std::io::Write;
#[cfg(feature = "dynamodb-access-log")]
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

tokio::task_local! {
    /// DynamoDB API calls made while serving the current request.
    static DB_CALLS: Cell<u32>;
    /// The Lambda function whose route is being served (`router::Function::name`).
    static FUNCTION: &'static str;
}

#[cfg(feature = "dynamodb-access-log")]
/// Where item accesses are recorded, when `GATEHOUSE_DYNAMODB_ACCESS_LOG` names a file: one
/// JSON object per DynamoDB item access, `{"function", "action", "prefix", "index"}`, so a test
/// can hold every function's IAM policy in `infra/template.yaml` to exactly what its code does
/// (`tests/blackbox/test_iam_policies.py`). Never set in the SAM template.
fn access_log() -> Option<&'static Mutex<std::fs::File>> {
    static LOG: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let path = std::env::var_os("GATEHOUSE_DYNAMODB_ACCESS_LOG")?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Mutex::new)
    })
    .as_ref()
}

#[cfg(feature = "dynamodb-access-log")]
/// Whether item accesses are being recorded (see [`record_db_access`]).
pub fn db_access_log_enabled() -> bool {
    access_log().is_some()
}

#[cfg(feature = "dynamodb-access-log")]
/// Records one item access: the IAM action it needs (`GetItem`, `PutItem`, …), the partition
/// key's item-type prefix (`CLIENT#`, `JWKS`, …) and the index, for the function serving the
/// current request (`none` outside a request: start-up, seeding, the CLI).
pub fn record_db_access(action: &str, prefix: &str, index: Option<&str>) {
    let Some(log) = access_log() else { return };
    let function = FUNCTION.try_with(|f| *f).unwrap_or("none");
    let line = serde_json::json!({
        "function": function,
        "action": action,
        "prefix": prefix,
        "index": index,
    });
    let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(file, "{line}");
}

/// Counts one DynamoDB API call against the request being served (called by the SDK
/// interceptor in `store::dynamo`; a no-op outside a request, e.g. in the CLI).
pub fn count_db_call() {
    let _ = DB_CALLS.try_with(|c| c.set(c.get().saturating_add(1)));
}

/// Runs `f` for a route of `function`, returning its output and the number of DynamoDB calls
/// it made.
pub async fn counting_db_calls<F: Future>(function: &'static str, f: F) -> (F::Output, u32) {
    FUNCTION
        .scope(
            function,
            DB_CALLS.scope(Cell::new(0), async {
                let out = f.await;
                let calls = DB_CALLS.try_with(Cell::get).unwrap_or(0);
                (out, calls)
            }),
        )
        .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

pub fn init(default: LogFormat) {
    let format = match std::env::var("GATEHOUSE_LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        Ok("pretty") => LogFormat::Pretty,
        _ => default,
    };
    // `target=level` directives (no regular expressions: `Targets` keeps the regex engine out
    // of the Lambda binaries). An unparsable GATEHOUSE_LOG falls back to the default.
    const DEFAULT: &str = "info,aws_smithy_runtime=warn,aws_config=warn";
    // Audit events stay logged whatever the level (unless named explicitly): the log line is
    // one of their sinks (`crate::events`).
    let filter: Targets = std::env::var("GATEHOUSE_LOG")
        .ok()
        .map(|v| {
            if v.contains("gatehouse::events") {
                v
            } else {
                format!("{v},gatehouse::events=info")
            }
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| DEFAULT.parse().unwrap_or_default());
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_ansi(false),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
    };
}
