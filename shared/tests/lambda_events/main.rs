//! Each Lambda function driven with real API Gateway HTTP API (payload 2.0) events through
//! `lambda_http`'s own deserialisation, routed the way the SAM template routes them.

// The admin function's futures nest deeper than the default query depth allows when the
// whole request is awaited inside one `#[tokio::test]`.
#![recursion_limit = "256"]

mod admin;
mod authorize;
mod cimd;
mod discovery;
mod register;
mod routes;
mod startup;
mod support;
mod template;
mod token;
