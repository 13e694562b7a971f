//! Each Lambda function driven with real API Gateway HTTP API (payload 2.0) events through
//! `lambda_http`'s own deserialisation, routed the way the SAM template routes them.

mod access;
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
