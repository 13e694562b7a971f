//! `gatehouse`: the local runner (`gatehouse serve`: every function's handler on one port, the
//! embedded store by default) and, as it grows, the operator CLI.

mod admin;
mod serve;

use std::process::ExitCode;

const USAGE: &str = "\
gatehouse — OAuth 2.1 authorization server for MCP servers

USAGE:
    gatehouse serve     Serve every endpoint on GATEHOUSE_ADDR (default 127.0.0.1:8787)
    gatehouse tenant create <id> [display name]
    gatehouse user add <tenant> <email> <admin|user>   (password: GATEHOUSE_NEW_PASSWORD or stdin)
    gatehouse keys rotate | keys list
    gatehouse help      Show this message

    The tenant, user and keys commands work on the DynamoDB table named by GATEHOUSE_TABLE.

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
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match words.as_slice() {
        ["serve"] => serve::run().await,
        ["tenant", "create", id] => admin::tenant_create(id, None).await,
        ["tenant", "create", id, name @ ..] => {
            admin::tenant_create(id, Some(&name.join(" "))).await
        }
        ["user", "add", tenant, email, role] => admin::user_add(tenant, email, role).await,
        ["keys", "rotate"] => admin::keys_rotate().await,
        ["keys", "list"] => admin::keys_list().await,
        _ => return usage(&words),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse {}: {e}", words.first().unwrap_or(&""));
            ExitCode::FAILURE
        }
    }
}

fn usage(words: &[&str]) -> ExitCode {
    match words.first() {
        Some(&("help" | "--help" | "-h")) | None => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(_) => {
            eprintln!(
                "gatehouse: unknown command {:?}\n\n{USAGE}",
                words.join(" ")
            );
            ExitCode::from(2)
        }
    }
}
