//! Structured logs. JSON on Lambda (one object per line, with the request span's fields:
//! request id, route, tenant); human-readable locally unless `GATEHOUSE_LOG_FORMAT=json`.
//! Filter with `GATEHOUSE_LOG` (e.g. `info`, `gatehouse_core=debug`). Nothing logs a secret:
//! request bodies, query strings and headers are never logged.

use tracing_subscriber::EnvFilter;

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
    let filter = EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,aws_smithy_runtime=warn,aws_config=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
