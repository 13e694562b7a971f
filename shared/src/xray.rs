//! AWS X-Ray subsegments for the AWS calls a traced Lambda invocation makes (DynamoDB, KMS,
//! EventBridge). With `Tracing: Active` (`infra/template.yaml`) Lambda records the invocation's
//! own segments; each SDK call made while serving it is reported here as a subsegment of the
//! invocation (its `Parent`), sent as a UDP datagram to the X-Ray daemon Lambda runs beside the
//! function (`AWS_XRAY_DAEMON_ADDRESS`), so traces show which table calls a request made and how
//! long each took. Nothing is sent for an invocation that is not sampled, outside Lambda (no
//! daemon address), or outside a request.
//!
//! Document format: the X-Ray segment documents reference
//! (<https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html>), sent as
//! `{"format":"json","version":1}` and a newline before each document, as the daemon expects.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The sampled trace an invocation belongs to, from its `X-Amzn-Trace-Id` header value
/// (`Root=1-…;Parent=…;Sampled=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub root: String,
    pub parent: String,
}

impl Trace {
    /// The trace to report under, when the header names a root and a parent and the
    /// invocation is sampled.
    pub fn sampled(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, false);
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) if !v.is_empty() => root = Some(v.to_owned()),
                Some(("Parent", v)) if is_segment_id(v) => parent = Some(v.to_owned()),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        Some(Self {
            root: root?,
            parent: parent?,
        })
        .filter(|_| sampled)
    }
}

/// A segment id: 16 hexadecimal digits.
fn is_segment_id(v: &str) -> bool {
    v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

tokio::task_local! {
    /// The trace of the invocation being served.
    static TRACE: Option<Trace>;
}

/// Runs `f` (one invocation) with its trace, so that the AWS calls it makes are reported.
pub async fn traced<F: Future>(trace: Option<Trace>, f: F) -> F::Output {
    TRACE.scope(trace, f).await
}

fn current() -> Option<Trace> {
    TRACE.try_with(Clone::clone).ok().flatten()
}

/// The daemon's UDP address: `AWS_XRAY_DAEMON_ADDRESS` is `host:port`, or `tcp:… udp:…`.
fn daemon_address(value: &str) -> Option<SocketAddr> {
    value
        .split_whitespace()
        .find_map(|part| match part.split_once(':') {
            Some(("udp", addr)) => addr.parse().ok(),
            Some(("tcp", _)) => None,
            _ => part.parse().ok(),
        })
}

fn daemon() -> Option<&'static (UdpSocket, SocketAddr)> {
    static DAEMON: OnceLock<Option<(UdpSocket, SocketAddr)>> = OnceLock::new();
    DAEMON
        .get_or_init(|| {
            let addr = daemon_address(&std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?)?;
            let local: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = UdpSocket::bind(local).ok()?;
            socket.set_nonblocking(true).ok()?;
            Some((socket, addr))
        })
        .as_ref()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// When the call started (kept in the call's configuration bag between the two hooks).
#[derive(Debug, Clone, Copy)]
struct Started(f64);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// The X-Ray name of an SDK service, as AWS's own SDKs name their subsegments.
fn service_name(service: &str) -> String {
    match service.to_ascii_lowercase().as_str() {
        "dynamodb" => "DynamoDB".into(),
        "kms" => "KMS".into(),
        "eventbridge" => "EventBridge".into(),
        _ => service.to_owned(),
    }
}

/// One finished call's subsegment document.
fn subsegment(
    trace: &Trace,
    (service, operation): (&str, &str),
    (start, end): (f64, f64),
    status: Option<u16>,
) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "name": service_name(service),
        "id": crate::crypto::hex(&crate::crypto::random_bytes::<8>()),
        "trace_id": trace.root,
        "parent_id": trace.parent,
        "type": "subsegment",
        "namespace": "aws",
        "start_time": start,
        "end_time": end.max(start),
        "aws": { "operation": operation },
    });
    match status {
        Some(code) => {
            doc["http"] = serde_json::json!({ "response": { "status": code } });
            doc["error"] = (400..500).contains(&code).into();
            doc["fault"] = (code >= 500).into();
            doc["throttle"] = (code == 429).into();
        }
        // No response at all: a timeout or a connection failure.
        None => doc["fault"] = true.into(),
    }
    doc
}

/// Reports each SDK call of a traced invocation as an X-Ray subsegment (register it on every
/// AWS client: `store::dynamo::sdk_client`, the notifier, the KMS key wrapper).
#[derive(Debug)]
pub struct XRaySubsegments;

impl Intercept for XRaySubsegments {
    fn name(&self) -> &'static str {
        "gatehouse-xray-subsegments"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(now_secs()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(trace), Some((socket, addr))) = (current(), daemon()) else {
            return Ok(());
        };
        let start = cfg.load::<Started>().map_or_else(now_secs, |s| s.0);
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("aws", "unknown"), |m| (m.service(), m.name()));
        let status = context.response().map(|r| r.status().as_u16());
        let doc = subsegment(&trace, (service, operation), (start, now_secs()), status);
        let datagram = format!("{{\"format\":\"json\",\"version\":1}}\n{doc}");
        // Best effort, like every X-Ray SDK: a full buffer or an absent daemon loses the
        // subsegment, never the request.
        let _ = socket.send_to(datagram.as_bytes(), addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";

    #[test]
    fn only_sampled_traces_with_a_root_and_parent_are_reported() {
        let header = format!("Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:1");
        assert_eq!(
            Trace::sampled(&header),
            Some(Trace {
                root: ROOT.into(),
                parent: "53995c3f42cd8ad8".into()
            })
        );
        for header in [
            format!("Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0"),
            format!("Root={ROOT};Parent=53995c3f42cd8ad8"),
            format!("Root={ROOT};Sampled=1"),
            format!("Root={ROOT};Parent=xyz;Sampled=1"),
            "Parent=53995c3f42cd8ad8;Sampled=1".into(),
            String::new(),
        ] {
            assert_eq!(Trace::sampled(&header), None, "{header}");
        }
    }

    #[test]
    fn the_daemon_address_takes_both_forms() {
        assert_eq!(
            daemon_address("169.254.79.129:2000"),
            Some("169.254.79.129:2000".parse().unwrap())
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001"),
            Some("127.0.0.2:2001".parse().unwrap())
        );
        assert_eq!(daemon_address("nonsense"), None);
    }

    #[test]
    fn a_subsegment_names_the_service_operation_and_outcome() {
        let trace = Trace {
            root: ROOT.into(),
            parent: "53995c3f42cd8ad8".into(),
        };
        let ok = subsegment(&trace, ("dynamodb", "GetItem"), (1.0, 1.5), Some(200));
        assert_eq!(ok["name"], "DynamoDB");
        assert_eq!(ok["aws"]["operation"], "GetItem");
        assert_eq!(ok["trace_id"], ROOT);
        assert_eq!(ok["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(ok["fault"], false);
        assert!(is_segment_id(ok["id"].as_str().unwrap()));
        let failed = subsegment(&trace, ("kms", "Decrypt"), (2.0, 1.0), Some(500));
        assert_eq!(
            (failed["name"].as_str(), failed["fault"].as_bool()),
            (Some("KMS"), Some(true))
        );
        assert_eq!(failed["end_time"], 2.0);
        assert_eq!(
            subsegment(&trace, ("kms", "Decrypt"), (1.0, 2.0), None)["fault"],
            true
        );
    }
}
