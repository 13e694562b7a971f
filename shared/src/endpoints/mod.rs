//! One module per endpoint, each a pipeline of small named steps returning
//! `Result<_, OAuthError>`.

pub mod approval;
pub mod authorize;
pub mod mcp;
pub mod metadata;
pub mod register;
pub mod token;
