//! Audit events and administrators' notifications (`docs/events.md`). Every event goes to
//! three places: a structured log line (target `gatehouse::events`), the tenant's audit trail
//! in the store, and — for the life of a pending client ([`EventType::notifies`]) — Amazon
//! EventBridge when a bus is configured, from where the SAM template's rule mails the tenant's
//! administrators.
//!
//! Events are recorded after the action they describe succeeded, so the trail never shows
//! something that did not happen. Recording never fails the request: a store or EventBridge
//! failure is logged at error level with the whole event, and the log line written first holds
//! it in any case.

use crate::domain::{
    AccessRequest, Actor, AuditEvent, Client, ClientSummary, EventType, Requester, Session, User,
};
use crate::store::Store;

/// Where notification events are published.
#[derive(Default)]
pub struct Notifier {
    bus: Option<Bus>,
}

struct Bus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

/// What EventBridge calls the events' producer (`source` in rules).
pub const EVENT_SOURCE: &str = "gatehouse";

impl Notifier {
    /// Log lines only (no bus configured).
    pub fn log_only() -> Self {
        Self::default()
    }

    /// EventBridge on `bus` (a name or ARN), with the process's SDK configuration; `endpoint`
    /// overrides the service endpoint (tests point it at a local emulator).
    pub fn event_bridge(sdk: &aws_config::SdkConfig, bus: String, endpoint: Option<&str>) -> Self {
        let mut conf = aws_sdk_eventbridge::config::Builder::from(sdk)
            .interceptor(crate::xray::XRaySubsegments);
        if let Some(endpoint) = endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        Self {
            bus: Some(Bus {
                client: aws_sdk_eventbridge::Client::from_conf(conf.build()),
                name: bus,
            }),
        }
    }

    async fn publish(&self, event: &AuditEvent, json: &str) {
        #[cfg(feature = "dynamodb-access-log")]
        crate::telemetry::record_db_access("events:PutEvents", "EVENTBUS", None);
        let Some(bus) = &self.bus else { return };
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&bus.name)
            .source(EVENT_SOURCE)
            .detail_type(event.kind.as_str())
            .detail(json)
            .build();
        let result = bus.client.put_events().entries(entry).send().await;
        let failed = match result {
            Ok(out) => (out.failed_entry_count() > 0).then(|| {
                out.entries()
                    .iter()
                    .filter_map(|e| e.error_message())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            Err(e) => Some(aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string()),
        };
        if let Some(reason) = failed {
            tracing::error!(
                target: "gatehouse::events",
                event_type = event.kind.as_str(),
                event_id = %event.id,
                %reason,
                event = %json,
                "event not delivered to EventBridge"
            );
        }
    }
}

/// Records an event in every sink. Never fails: see the module comment.
pub async fn record(store: &dyn Store, notifier: &Notifier, event: &AuditEvent) {
    let json = serde_json::to_string(event).unwrap_or_default();
    tracing::info!(
        target: "gatehouse::events",
        event_type = event.kind.as_str(),
        event = %json,
        "gatehouse event"
    );
    for metric in crate::metrics::of_event(event) {
        crate::metrics::count(*metric, &event.tenant);
    }
    // Boxed: the SDK's request future is large, and every endpoint that records an event
    // would otherwise carry it in its own state.
    let publish = Box::pin(async {
        if event.kind.notifies() {
            notifier.publish(event, &json).await;
        }
    });
    let (stored, ()) = tokio::join!(store.put_audit_event(event), publish);
    if let Err(e) = stored {
        tracing::error!(
            target: "gatehouse::events",
            event_type = event.kind.as_str(),
            error = %e,
            event = %json,
            "audit event not stored"
        );
    }
}

/// 128 bits, hex: the system clock's microseconds (56 bits) then 72 random bits, so that
/// events of one second list in the order they happened (the sort key is the time in seconds,
/// then this id) and two ids never collide.
fn event_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let random = crate::crypto::hex(&crate::crypto::random_bytes::<9>());
    format!("{:014x}{random}", micros & 0x00ff_ffff_ffff_ffff)
}

impl AuditEvent {
    /// A new event of `kind` by `actor` in `tenant` at `now`, kept for the tenant's retention.
    pub fn new(
        tenant: &crate::domain::Tenant,
        kind: EventType,
        actor: Actor,
        now: crate::domain::UnixTime,
    ) -> Self {
        Self {
            id: event_id(),
            kind,
            occurred_at: now,
            tenant: tenant.id.clone(),
            actor,
            via: None,
            client_id: None,
            source_ip: None,
            client: None,
            console_url: None,
            access_requests: Vec::new(),
            detail: serde_json::Map::new(),
            expires_at: tenant.audit_expiry(now),
        }
    }

    /// Through which door the action came (`console`, `api`, `cli`, `consent_page`, ...).
    pub fn via(mut self, via: &'static str) -> Self {
        self.via = Some(via.to_owned());
        self
    }

    /// The client the event concerns, summarised, with its page in the admin console.
    pub fn about(mut self, client: &Client, issuer: &str) -> Self {
        self.client_id = Some(client.client_id.to_string());
        self.console_url = Some(console_url(issuer, client));
        self.client = Some(ClientSummary::of(client));
        self
    }

    /// The users who asked an administrator to approve the client.
    pub fn asked_by(mut self, requests: &[AccessRequest]) -> Self {
        self.access_requests = requests.iter().map(|r| r.requester.clone()).collect();
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// The admin console's page of a client.
pub fn console_url(issuer: &str, client: &Client) -> String {
    let id = percent_encoding::utf8_percent_encode(
        client.client_id.as_str(),
        percent_encoding::NON_ALPHANUMERIC,
    );
    format!("{issuer}/admin/clients/{id}")
}

impl Actor {
    pub fn user(user: &User) -> Self {
        Self::User {
            id: user.id.clone(),
            email: user.email.as_str().to_owned(),
        }
    }

    /// The user signed in with `session`.
    pub fn session(session: &Session) -> Self {
        Self::User {
            id: session.user_id.clone(),
            email: session.email.as_str().to_owned(),
        }
    }
}

impl Requester {
    /// The user signed in with `session`, asking at `now`.
    pub fn of(session: &Session, now: crate::domain::UnixTime) -> Self {
        Self {
            user_id: session.user_id.clone(),
            email: session.email.as_str().to_owned(),
            requested_at: now,
        }
    }
}
