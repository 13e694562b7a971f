//! One module per endpoint, each a pipeline of small named steps returning
//! `Result<_, OAuthError>`.

pub mod admin;
pub mod approval;
pub mod authorize;
pub mod client_config;
pub mod mcp;
pub mod metadata;
pub mod register;
pub mod token;
