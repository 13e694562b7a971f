//! Gatehouse's common crate: domain types, validation, protocol endpoints, the storage port and
//! its adapters, crypto and HTTP plumbing. Lambda binaries and the local runner are thin
//! wrappers around [`app::App`].

pub mod app;
pub mod cimd;
pub mod client_auth;
pub mod client_metadata;
pub mod clock;
pub mod config;
pub mod context;
pub mod crypto;
pub mod defaults;
pub mod documents;
pub mod domain;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod hosted;
pub mod html;
pub mod http;
pub mod jwt_crypto;
pub mod keycache;
pub mod keygen;
pub mod keywrap;
pub mod lambda;
pub mod metrics;
pub mod params;
pub mod policy;
pub mod ratelimit;
pub mod router;
pub mod seed;
pub mod server;
pub mod signin;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod trust;
pub mod xray;
