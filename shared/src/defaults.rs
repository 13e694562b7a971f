//! Every default in one place, with the reason for it. Tenant settings start from these values;
//! server configuration ([`crate::config`]) falls back to them when a variable is unset.

/// Scopes a DCR tenant allows unless its administrator changes them.
pub const TENANT_ALLOWED_SCOPES: &str = "user_default mcp:execute offline_access";

/// How long a DCR client may stay unapproved before it is deleted (60 minutes: time for an
/// administrator to approve a first connection; abandoned registrations do not pile up).
pub const PENDING_CLIENT_TTL_SECS: u64 = 3600;

/// Most pending clients a tenant may hold per pending-lifetime window (see `storage-schema.md`,
/// "pending counters"). Claude registers one client per connection, so the cap is
/// generous; its job is to stop a registration flood from filling the table, not to meter use.
pub const PENDING_CLIENT_CAP: u32 = 200;
/// The share of the tenant's pending cap one source may use per window, in percent (a tenant
/// setting, 1–100): half, so that one address flooding a tenant's public registration URL
/// leaves the other half to everyone else, while one AI platform's shared egress can still
/// register many clients.
pub const PENDING_CLIENT_SOURCE_SHARE_PERCENT: u32 = 50;
/// Days an audit event is kept (a tenant setting, 1–3650): a little over a year, so a yearly
/// review always finds the whole previous year.
pub const AUDIT_RETENTION_DAYS: u32 = 400;

/// Registrations accepted from one source IP per minute by one server process. Many users of
/// one AI platform share its egress IPs, so the per-tenant cap above is the real quota; this
/// only slows a single noisy source.
pub const REGISTRATIONS_PER_IP_PER_MINUTE: u32 = 30;

/// Largest request body any endpoint reads (registration documents are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a warm container trusts its cached copy of a tenant's settings.
pub const TENANT_CACHE_TTL_SECS: u64 = 10;

/// DynamoDB client bounds: a stalled database must turn into a 503 within seconds, not a hang.
pub const DYNAMODB_CONNECT_TIMEOUT_MS: u64 = 1000;
pub const DYNAMODB_ATTEMPT_TIMEOUT_MS: u64 = 1500;
pub const DYNAMODB_OPERATION_TIMEOUT_MS: u64 = 4000;
pub const DYNAMODB_MAX_ATTEMPTS: u32 = 3;

/// Local runner address (the local contract).
pub const LOCAL_ADDR: &str = "127.0.0.1:8787";

/// Limits on registration metadata, so that one client cannot store megabytes of text.
pub const MAX_CLIENT_NAME_CHARS: usize = 200;
pub const MAX_SHORT_STRING_CHARS: usize = 255;
pub const MAX_URI_CHARS: usize = 2000;
pub const MAX_REDIRECT_URIS: usize = 20;
pub const MAX_CONTACTS: usize = 10;

/// Sign-in attempts per source IP per minute, per process (slows one noisy source).
pub const SIGNINS_PER_IP_PER_MINUTE: u32 = 20;
/// Failed sign-ins per account per window, counted in the store so the limit holds across
/// every process (Lambda containers) and no flood of other accounts can reset it. Successes
/// are not counted: an administrator approving clients in a row signs in again and again.
pub const SIGNIN_FAILURES_PER_ACCOUNT: u32 = 10;
pub const SIGNIN_WINDOW_SECS: i64 = 60;

/// How long a parked authorization request waits for the user (sign-in and consent).
pub const AUTHORIZATION_REQUEST_TTL_SECS: i64 = 600;

/// Authorization code lifetime (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const AUTHORIZATION_CODE_TTL_SECS: i64 = 300;

/// Hosted-page session lifetime.
pub const SESSION_TTL_SECS: i64 = 8 * 3600;

/// Longest query string or form body the authorization endpoint reads, and longest value.
pub const MAX_AUTHORIZE_INPUT_BYTES: usize = 8 * 1024;
pub const MAX_PARAMETER_CHARS: usize = 2048;

/// Access token (JWT) lifetime; resource servers verify these offline, so keep it short.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 3600;

/// Absolute lifetime of a grant and of every refresh token in it.
pub const GRANT_TTL_SECS: i64 = 30 * 24 * 3600;

/// How long a rotated refresh token still works, so concurrent refreshes from one client do
/// not log the user out. Reuse after this revokes the whole grant.
pub const REFRESH_GRACE_SECS: i64 = 30;

/// How long a process trusts its cached signing keys before re-reading them (key rotation
/// reaches every warm container within this time).
pub const SIGNING_KEY_CACHE_SECS: u64 = 300;

/// A newly rotated-in signing key starts signing only after this long, so that every JWKS
/// cache (ours: `SIGNING_KEY_CACHE_SECS`, plus the JWKS response's `max-age` of 300 s at
/// resource servers) has published it first. The very first key signs at once.
pub const KEY_ACTIVATION_DELAY_SECS: u64 = 2 * SIGNING_KEY_CACHE_SECS + 300;

/// Admin API tokens: default and longest lifetime.
pub const ADMIN_TOKEN_DEFAULT_TTL_SECS: i64 = 30 * 24 * 3600;
pub const ADMIN_TOKEN_MAX_TTL_SECS: i64 = 90 * 24 * 3600;

/// Client ID Metadata Document fetches (`cimd::fetch`): connect timeout per address, one
/// deadline for the whole exchange, and the body cap (the draft recommends 5 KB; real
/// documents are a few hundred bytes, 8 KiB leaves room for long URI lists).
pub const CIMD_CONNECT_TIMEOUT_MS: u64 = 2000;
pub const CIMD_FETCH_TIMEOUT_MS: u64 = 5000;
pub const CIMD_MAX_DOCUMENT_BYTES: usize = 8 * 1024;

/// How long a fetched metadata document is used before it is fetched again: its
/// `Cache-Control` within these bounds, or the default when it says nothing.
pub const CIMD_CACHE_MIN_SECS: u64 = 300;
pub const CIMD_CACHE_MAX_SECS: u64 = 24 * 3600;
pub const CIMD_CACHE_DEFAULT_SECS: u64 = 3600;
