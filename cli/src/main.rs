//! `gatehouse`: the local runner (`gatehouse serve`: every function's handler on one port, the
//! embedded store by default) and, as it grows, the operator CLI.

mod serve;

use std::process::ExitCode;

const USAGE: &str = "\
gatehouse — OAuth 2.1 authorization server for MCP servers

USAGE:
    gatehouse serve     Serve every endpoint on GATEHOUSE_ADDR (default 127.0.0.1:8787)
    gatehouse help      Show this message

ENVIRONMENT (serve):
    GATEHOUSE_ADDR                 listen address (default 127.0.0.1:8787)
    GATEHOUSE_PUBLIC_URL           external base URL (default http://GATEHOUSE_ADDR)
    GATEHOUSE_TABLE                DynamoDB table (with GATEHOUSE_DYNAMODB_ENDPOINT or AWS):
                                   switches from the embedded store to DynamoDB
    GATEHOUSE_DYNAMODB_ENDPOINT    DynamoDB API endpoint, e.g. http://127.0.0.1:5000
    GATEHOUSE_DEMO_ADMIN_PASSWORD  password for admin@demo.test (generated when unset)
    GATEHOUSE_DEMO_USER_PASSWORD   password for user@demo.test (generated when unset)
    GATEHOUSE_PENDING_CLIENT_TTL   demo tenant's pending-client lifetime, seconds
    GATEHOUSE_PENDING_CLIENT_CAP   demo tenant's pending-client cap; 0 = no cap, no rate limit
    GATEHOUSE_LOG, GATEHOUSE_LOG_FORMAT=json|pretty
";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => match serve::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gatehouse serve: {e}");
                ExitCode::FAILURE
            }
        },
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("gatehouse: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
