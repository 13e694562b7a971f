//! The storage contract: one suite, run against the embedded store and against DynamoDB
//! (moto's server, started by `tests/run`, via `GATEHOUSE_TEST_DYNAMODB_ENDPOINT`). Both
//! adapters must give the same answers, including expiry-on-read and exactly-once writes.
//!
//! Each case is an `async fn(Arc<dyn Store>)` in the module of its topic; [`contract!`] runs
//! every case once per adapter, as `embedded::<case>` and `dynamodb::<case>`.

mod admin;
mod approval;
mod audit;
mod clients;
mod flow;
mod kms;
mod quota;
mod support;
mod tokens;
mod trust;

use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse_core::store::ClientStore;
use gatehouse_core::store::StoreError;
use support::{NOW, dynamo_store, pending_client, quota};

macro_rules! contract {
    ($($topic:ident :: $case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$topic::$case(super::support::memory()).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$topic::$case(super::support::dynamodb().await).await;
                }
            )*
        }
    };
}

contract!(
    clients::tenants_are_created_once_and_replaced_by_put,
    clients::a_pending_client_round_trips_within_its_tenant_only,
    clients::an_expired_pending_client_reads_as_absent,
    clients::a_duplicate_client_id_is_refused_and_not_counted,
    clients::the_pending_cap_holds_across_the_current_and_previous_window,
    clients::a_zero_cap_means_no_cap,
    clients::concurrent_registrations_never_exceed_the_cap,
    approval::approval_happens_exactly_once_and_ends_expiry,
    approval::concurrent_approvals_have_one_winner,
    approval::approval_is_conditional_on_the_configuration_version,
    approval::approval_lives_in_its_own_record,
    admin::signin_attempts_are_counted_per_account_and_window,
    clients::clients_list_oldest_first_and_per_tenant,
    admin::users_are_created_once_and_replaced_by_put,
    flow::authorization_requests_expire_and_are_taken_exactly_once,
    flow::sessions_are_tenant_scoped_and_expire,
    flow::consents_and_codes_round_trip,
    tokens::codes_are_redeemed_exactly_once_with_their_grant,
    tokens::refresh_rotation_honours_the_grace_window_and_revocation,
    tokens::signing_keys_keep_private_halves_apart,
    tokens::each_tenant_has_its_own_signing_keys,
    flow::a_flow_step_reads_request_client_and_session_in_one_call,
    flow::finishing_an_authorization_is_one_atomic_step,
    admin::tenants_and_users_are_listed_per_tenant,
    admin::client_pages_walk_every_live_client_once,
    approval::edits_keep_status_and_never_resurrect,
    admin::deleting_a_client_revokes_its_grants,
    admin::api_tokens_and_sessions_end,
    admin::a_code_of_a_deleted_client_cannot_be_redeemed,
    clients::a_metadata_document_client_round_trips_and_comes_back_after_expiry,
    audit::audit_events_page_newest_first_per_tenant_and_expire,
    audit::access_requests_are_recorded_once_while_pending,
    audit::concurrent_requests_of_one_user_record_one,
    audit::a_rejection_deletes_only_a_pending_client,
    trust::trusts_are_kept_per_tenant_and_revoked_once,
    trust::a_trusted_client_is_created_only_while_its_trust_is_active,
    trust::trusted_registrations_count_against_the_quota,
    trust::a_client_its_trust_does_not_admit_is_refused,
    quota::one_source_uses_only_its_share_of_the_tenant_cap,
    quota::a_source_share_counts_only_the_current_window,
    quota::concurrent_registrations_of_one_source_never_exceed_its_share,
    quota::trusted_registrations_count_against_their_source,
);

/// DynamoDB only (the embedded store cannot hold an approved client without its record): a
/// client approved by a release that kept approval in the client record alone has no approval
/// record; it is refused until the operator records its approval
/// (`gatehouse clients record-approvals`), which leaves clients that have one alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_approvals_missing_after_an_upgrade_are_recorded_by_the_operator() {
    let store = dynamo_store().await;
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let approved = store
        .approve_client(&c.tenant, &c.client_id, c.config_version, "admin", NOW + 1)
        .await
        .expect("approve");
    // As an earlier release left it: no approval record.
    store
        .sdk()
        .delete_item()
        .table_name(store.table())
        .key(
            "pk",
            AttributeValue::S(format!("APPROVAL#acme#{}", c.client_id)),
        )
        .key("sk", AttributeValue::S("APPROVAL".into()))
        .send()
        .await
        .expect("delete the record");
    assert!(matches!(
        store.get_client(&c.tenant, &c.client_id, NOW + 2).await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(
        store
            .record_missing_approvals(&c.tenant, NOW + 3)
            .await
            .expect("record"),
        1
    );
    assert_eq!(
        store
            .get_client(&c.tenant, &c.client_id, NOW + 4)
            .await
            .expect("read"),
        Some(approved)
    );
    assert_eq!(
        store
            .record_missing_approvals(&c.tenant, NOW + 5)
            .await
            .expect("again"),
        0
    );
}
