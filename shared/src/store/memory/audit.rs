//! [`AuditStore`] on the embedded store: audit events and access requests.

use super::*;
use crate::domain::{AccessRequest, AuditEvent, ClientId, ClientStatus, TenantId, UnixTime};
use crate::store::{AuditStore, StoreError};
use async_trait::async_trait;
use std::ops::Bound;

/// Most audit events the embedded store keeps per tenant: the oldest go first beyond it, so a
/// sign-in flood against a local server cannot grow the process without bound. DynamoDB keeps
/// every event for the tenant's retention.
const MAX_EVENTS_PER_TENANT: usize = 100_000;

#[async_trait]
impl AuditStore for MemoryStore {
    async fn put_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let events = inner.audit.entry(event.tenant.clone()).or_default();
        events.insert(event.sort_key(), event.clone());
        while events.len() > MAX_EVENTS_PER_TENANT {
            events.pop_first();
        }
        Ok(())
    }

    async fn list_audit_events(
        &self,
        tenant: &TenantId,
        before: Option<&str>,
        limit: usize,
        now: UnixTime,
    ) -> Result<(Vec<AuditEvent>, Option<String>), StoreError> {
        let inner = self.lock();
        let Some(events) = inner.audit.get(tenant) else {
            return Ok((Vec::new(), None));
        };
        let upper = before.map_or(Bound::Unbounded, |b| Bound::Excluded(b.to_owned()));
        let mut live = events
            .range((Bound::Unbounded, upper))
            .rev()
            .map(|(_, e)| e)
            .filter(|e| e.expires_at > now);
        let page: Vec<AuditEvent> = live.by_ref().take(limit.max(1)).cloned().collect();
        let next = match live.next() {
            Some(_) => page.last().map(AuditEvent::sort_key),
            None => None,
        };
        Ok((page, next))
    }

    async fn request_access(
        &self,
        request: &AccessRequest,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let key = ClientKey::new(&request.tenant, &request.client_id);
        let pending = inner
            .clients
            .get(&key)
            .is_some_and(|c| c.is_live(now) && c.status == ClientStatus::Pending);
        if !pending {
            return Err(StoreError::NotFound);
        }
        // Requests go with their pending client: reclaim the expired ones as new ones arrive.
        inner.access_requests.retain(|_, requests| {
            requests.retain(|_, r| r.expires_at > now);
            !requests.is_empty()
        });
        let requests = inner
            .access_requests
            .entry((request.tenant.clone(), request.client_id.clone()))
            .or_default();
        let user = &request.requester.user_id;
        if requests.get(user).is_some_and(|r| r.expires_at > now) {
            return Ok(false);
        }
        requests.insert(user.clone(), request.clone());
        Ok(true)
    }

    async fn list_access_requests(
        &self,
        tenant: &TenantId,
        client: Option<&ClientId>,
        now: UnixTime,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<AccessRequest> = inner
            .access_requests
            .iter()
            .filter(|((t, c), _)| t == tenant && client.is_none_or(|wanted| wanted == c))
            .flat_map(|(_, requests)| requests.values())
            .filter(|r| r.expires_at > now)
            .cloned()
            .collect();
        crate::store::sort_requests(&mut out);
        Ok(out)
    }
}
