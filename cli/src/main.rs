//! `gatehouse`: the local runner (`gatehouse serve`: every function's handler on one port, the
//! embedded store by default) and the operator CLI that bootstraps and administers a deployment
//! on its DynamoDB table.

mod admin;
mod keys;
mod serve;

use clap::{Args, Parser, Subcommand};
use gatehouse_core::domain::SigningAlg;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse — OAuth 2.1 authorization server for MCP servers",
    long_about = "Gatehouse — OAuth 2.1 authorization server for MCP servers.\n\n`gatehouse serve` runs every endpoint locally (embedded store, seeded demo tenant). The other commands administer a deployment's DynamoDB table: --table (or GATEHOUSE_TABLE), --endpoint (or GATEHOUSE_DYNAMODB_ENDPOINT / AWS_ENDPOINT_URL_DYNAMODB), --region (or AWS_REGION), credentials from the usual AWS_* variables and profiles. Passwords are never flags: GATEHOUSE_NEW_PASSWORD or one line on stdin."
)]
struct Cli {
    #[command(flatten)]
    table: TableArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the operator commands work.
#[derive(Args, Clone, Debug)]
pub struct TableArgs {
    /// DynamoDB table (default: GATEHOUSE_TABLE; the stack's TableName output)
    #[arg(long, global = true, value_name = "NAME")]
    pub table: Option<String>,
    /// DynamoDB API endpoint (default: GATEHOUSE_DYNAMODB_ENDPOINT, then AWS_ENDPOINT_URL_DYNAMODB, then AWS)
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// AWS region (default: AWS_REGION / AWS_DEFAULT_REGION)
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every endpoint on GATEHOUSE_ADDR (default 127.0.0.1:8787); see the README for the
    /// GATEHOUSE_* variables
    Serve,
    /// Create, list, show and configure tenants
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Add users (the first administrator of a tenant)
    #[command(subcommand)]
    User(UserCommand),
    /// List, approve and delete a tenant's clients
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Admin API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant (DCR on, default settings)
    Create {
        /// Tenant id: 1-63 lowercase letters, digits and inner hyphens
        id: String,
        /// Display name shown on the hosted pages (default: the id)
        #[arg(long)]
        name: Option<String>,
    },
    /// List every tenant
    List,
    /// Print a tenant's settings as JSON
    Show { id: String },
    /// Change settings: key=value pairs (keys as in the settings API: display_name, dcr_enabled,
    /// allowed_auth_methods (comma-separated), require_client_uri, allowed_scopes,
    /// pending_client_ttl_secs, pending_client_cap, pending_client_source_share_percent,
    /// default_resource (empty clears it),
    /// cimd_enabled, openid_enabled, access_token_signing_alg, audit_retention_days)
    Set {
        id: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password comes from GATEHOUSE_NEW_PASSWORD or one line on stdin
    Add {
        tenant: String,
        email: String,
        /// admin or user
        role: String,
    },
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// One line per client: id, status, createdByType, name (approved clients unless --pending)
    List {
        tenant: String,
        /// List the pending clients instead
        #[arg(long)]
        pending: bool,
    },
    /// Approve a pending client (normally done by an administrator's first connection)
    Approve { tenant: String, client_id: String },
    /// Delete a client and revoke its grants
    Delete { tenant: String, client_id: String },
    /// After an upgrade: record the approval of approved clients that have no approval record
    /// yet (releases before it kept approval in the client record alone)
    RecordApprovals { tenant: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an admin API token for an administrator; printed once
    Create {
        tenant: String,
        email: String,
        /// Lifetime in seconds (default 30 days, at most 90 days)
        #[arg(long, value_name = "SECS")]
        expires_in: Option<i64>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create the tenant's first signing key of each algorithm (ES256, RS256) that has none
    /// (the token endpoint also does on first use). Needs GATEHOUSE_KMS_KEY_ID.
    Generate { tenant: String },
    /// Add a new signing key to the tenant's set for each algorithm, or for one (it starts
    /// signing after every JWKS cache has it). Needs GATEHOUSE_KMS_KEY_ID.
    Rotate {
        tenant: String,
        /// Rotate only this algorithm's key: ES256 (access tokens, ID tokens on request) or
        /// RS256 (ID tokens by default)
        #[arg(long, value_name = "ALG", value_parser = parse_alg)]
        alg: Option<SigningAlg>,
    },
    /// List the tenant's published signing keys, newest first
    List { tenant: String },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let t = &cli.table;
    let outcome = match cli.command {
        Command::Serve => serve::run().await.map_err(admin::CliError::Failed),
        Command::Tenant(TenantCommand::Create { id, name }) => {
            admin::tenant_create(t, &id, name.as_deref()).await
        }
        Command::Tenant(TenantCommand::List) => admin::tenant_list(t).await,
        Command::Tenant(TenantCommand::Show { id }) => admin::tenant_show(t, &id).await,
        Command::Tenant(TenantCommand::Set { id, settings }) => {
            admin::tenant_set(t, &id, &settings).await
        }
        Command::User(UserCommand::Add {
            tenant,
            email,
            role,
        }) => admin::user_add(t, &tenant, &email, &role).await,
        Command::Clients(ClientsCommand::List { tenant, pending }) => {
            admin::clients_list(t, &tenant, pending).await
        }
        Command::Clients(ClientsCommand::Approve { tenant, client_id }) => {
            admin::clients_approve(t, &tenant, &client_id).await
        }
        Command::Clients(ClientsCommand::Delete { tenant, client_id }) => {
            admin::clients_delete(t, &tenant, &client_id).await
        }
        Command::Clients(ClientsCommand::RecordApprovals { tenant }) => {
            admin::clients_record_approvals(t, &tenant).await
        }
        Command::Token(TokenCommand::Create {
            tenant,
            email,
            expires_in,
        }) => admin::token_create(t, &tenant, &email, expires_in).await,
        Command::Keys(KeysCommand::Generate { tenant }) => keys::generate(t, &tenant).await,
        Command::Keys(KeysCommand::Rotate { tenant, alg }) => keys::rotate(t, &tenant, alg).await,
        Command::Keys(KeysCommand::List { tenant }) => keys::list(t, &tenant).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(admin::CliError::Usage(msg)) => {
            eprintln!("gatehouse: {msg}");
            ExitCode::from(2)
        }
        Err(admin::CliError::Failed(e)) => {
            eprintln!("gatehouse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_alg(raw: &str) -> Result<SigningAlg, String> {
    SigningAlg::parse(raw).ok_or_else(|| format!("{raw:?} is not ES256 or RS256"))
}
