//! Business metrics in CloudWatch Embedded Metric Format (EMF): on Lambda, each invocation's
//! counts are written to stdout as one JSON document per tenant after the response is built,
//! and CloudWatch Logs turns them into metrics in the `Gatehouse` namespace with the
//! dimensions `Stage` (`GATEHOUSE_STAGE`, the template's `Stage`) and `Tenant`
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//! `infra/template.yaml`'s dashboard and alarms read them. Tenants are created by operators,
//! so the tenant dimension stays small; nothing else (client ids, users, addresses) becomes a
//! dimension.
//!
//! Counting goes through the `metrics` facade, so outside Lambda (`gatehouse serve`, the CLI,
//! tests) no recorder is installed and a count costs one atomic load.

use crate::domain::{AuditEvent, ClientStatus, EventType, TenantId};
use metrics_cloudwatch_embedded::Collector;
use std::sync::OnceLock;

/// The CloudWatch namespace of every metric Gatehouse emits.
pub const NAMESPACE: &str = "Gatehouse";

/// One business metric (unit `Count`, summed per minute by CloudWatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Every successful registration (RFC 7591), pending or approved by a vendor trust.
    ClientsRegistered,
    /// Registrations and client ID metadata documents that created a pending client.
    PendingClientsCreated,
    ClientsApproved,
    ClientsRejected,
    /// Pending clients found past their expiry by a form or an approval (the table's TTL
    /// deletes the others without a trace).
    PendingClientsExpired,
    /// Users asking an administrator to approve a pending client.
    AccessRequested,
    /// Token responses (authorization code and refresh token grants).
    TokensIssued,
    /// A rotated refresh token presented again after the grace period: the grant is revoked.
    RefreshTokenReuseDetected,
    /// Failed password checks on the hosted sign-in and the console.
    SignInFailures,
    /// Registrations refused with 429 (per-source limit or the tenant's pending cap).
    RegistrationsThrottled,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::ClientsRegistered,
        Metric::PendingClientsCreated,
        Metric::ClientsApproved,
        Metric::ClientsRejected,
        Metric::PendingClientsExpired,
        Metric::AccessRequested,
        Metric::TokensIssued,
        Metric::RefreshTokenReuseDetected,
        Metric::SignInFailures,
        Metric::RegistrationsThrottled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::ClientsRegistered => "ClientsRegistered",
            Metric::PendingClientsCreated => "PendingClientsCreated",
            Metric::ClientsApproved => "ClientsApproved",
            Metric::ClientsRejected => "ClientsRejected",
            Metric::PendingClientsExpired => "PendingClientsExpired",
            Metric::AccessRequested => "AccessRequested",
            Metric::TokensIssued => "TokensIssued",
            Metric::RefreshTokenReuseDetected => "RefreshTokenReuseDetected",
            Metric::SignInFailures => "SignInFailures",
            Metric::RegistrationsThrottled => "RegistrationsThrottled",
        }
    }
}

/// Counts one occurrence of `metric` in `tenant`.
pub fn count(metric: Metric, tenant: &TenantId) {
    metrics::counter!(metric.name(), "Tenant" => tenant.as_str().to_owned()).increment(1);
}

/// The metrics an audit event stands for (events are recorded once, after the action
/// succeeded: `crate::events::record`).
pub fn of_event(event: &AuditEvent) -> &'static [Metric] {
    let pending = event
        .client
        .as_ref()
        .is_some_and(|c| c.status == ClientStatus::Pending);
    match event.kind {
        EventType::ClientRegistered if pending => {
            &[Metric::ClientsRegistered, Metric::PendingClientsCreated]
        }
        EventType::ClientRegistered => &[Metric::ClientsRegistered],
        EventType::ClientApproved => &[Metric::ClientsApproved],
        EventType::ClientRejected => &[Metric::ClientsRejected],
        EventType::ClientExpired => &[Metric::PendingClientsExpired],
        EventType::AccessRequested => &[Metric::AccessRequested],
        EventType::SignInFailed => &[Metric::SignInFailures],
        _ => &[],
    }
}

static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();

/// Installs the EMF recorder for this process (a Lambda function's init phase), with the
/// `Stage` dimension. Once per process; later calls keep the first recorder.
pub fn install(stage: &str) {
    COLLECTOR.get_or_init(|| {
        let built = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .with_dimension("Stage", stage.to_owned())
            .init();
        match built {
            Ok(collector) => {
                for metric in Metric::ALL {
                    metrics::describe_counter!(metric.name(), metrics::Unit::Count, metric.name());
                }
                Some(collector)
            }
            Err(e) => {
                tracing::error!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
}

/// Writes the counts since the last flush to stdout as EMF documents (none when nothing was
/// counted). Lambda sends stdout to CloudWatch Logs, which extracts the metrics.
pub fn flush() {
    if let Some(Some(collector)) = COLLECTOR.get() {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if let Err(e) = collector.flush(&mut out) {
            tracing::warn!(error = %e, "metrics not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_count_as_their_metrics() {
        use crate::domain::{Actor, ClientSummary, CreatedByType, Tenant};
        let tenant = Tenant::new(TenantId::parse("acme").expect("id"), "Acme");
        let event = |kind, status: Option<ClientStatus>| {
            let mut e = AuditEvent::new(&tenant, kind, Actor::Operator, 1_800_000_000);
            e.client = status.map(|status| ClientSummary {
                client_id: "c1".into(),
                client_name: "Agent".into(),
                redirect_uris: vec!["https://agent.example/cb".into()],
                software_id: None,
                created_by: CreatedByType::Dcr,
                status,
                expires_at: None,
            });
            e
        };
        let pending = Some(ClientStatus::Pending);
        let approved = Some(ClientStatus::Approved);
        assert_eq!(
            of_event(&event(EventType::ClientRegistered, pending)),
            [Metric::ClientsRegistered, Metric::PendingClientsCreated]
        );
        assert_eq!(
            of_event(&event(EventType::ClientRegistered, approved)),
            [Metric::ClientsRegistered]
        );
        assert_eq!(
            of_event(&event(EventType::ClientApproved, approved)),
            [Metric::ClientsApproved]
        );
        assert_eq!(
            of_event(&event(EventType::SignInFailed, None)),
            [Metric::SignInFailures]
        );
        assert_eq!(
            of_event(&event(EventType::ClientExpired, pending)),
            [Metric::PendingClientsExpired]
        );
        assert!(of_event(&event(EventType::SettingsChanged, None)).is_empty());
    }

    #[test]
    fn names_are_distinct_identifiers() {
        let names: std::collections::BTreeSet<&str> =
            Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        for name in names {
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
        }
    }
}
