//! Client authentication at the token, revocation and introspection endpoints (RFC 6749
//! §2.3.1): `client_secret_basic`, `client_secret_post`, or `none` (a public client names
//! itself with `client_id` and proves possession with PKCE instead).
//!
//! Every failure is `401 invalid_client` (RFC 6749 §5.2; MCP clients treat exactly that answer
//! as "register again", so a deleted or expired client must get it, never a 400), with
//! `WWW-Authenticate: Basic` when Basic was tried. A bare `client_id` in the body next to Basic
//! identifies, it does not authenticate: accepted when it matches the Basic user (some MCP
//! clients always send it; refusing the pair would break their token exchange). A secret sent
//! in both places is two methods at once (RFC 6749 §2.3): `invalid_request`.

use crate::app::App;
use crate::crypto;
use crate::domain::{Client, ClientId, ClientStatus, Tenant, UnixTime};
use crate::error::{ErrorCode, OAuthError};
use crate::http::Request;
use crate::params::Params;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use http::header::{self, WWW_AUTHENTICATE};

/// Credentials as presented.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    pub via_basic: bool,
}

fn invalid_client(via_basic: bool, issuer: &str, description: &str) -> OAuthError {
    let err = OAuthError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidClient,
        description,
    );
    if via_basic {
        err.with_header(WWW_AUTHENTICATE, format!("Basic realm=\"{issuer}\""))
    } else {
        err
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn form_decode(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

pub fn presented(req: &Request, form: &Params, issuer: &str) -> Result<Presented, OAuthError> {
    let body_id = form
        .single("client_id")
        .map_err(|e| OAuthError::invalid_request(e.describe()))?;
    let body_secret = form
        .single("client_secret")
        .map_err(|e| OAuthError::invalid_request(e.describe()))?;
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_owned())
        });
    if let Some(encoded) = basic {
        let bad = || invalid_client(true, issuer, "malformed HTTP Basic client credentials");
        let decoded = STANDARD.decode(encoded).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let (id, secret) = (
            form_decode(id).ok_or_else(bad)?,
            form_decode(secret).ok_or_else(bad)?,
        );
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "client credentials were sent both in the Authorization header and in the body; use one method",
            ));
        }
        if body_id.is_some_and(|b| b != id) {
            return Err(invalid_client(
                true,
                issuer,
                "client_id in the body does not match the Basic credentials",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(secret),
            via_basic: true,
        });
    }
    let client_id = body_id.ok_or_else(|| {
        invalid_client(
            false,
            issuer,
            "client authentication is required (client_id missing)",
        )
    })?;
    Ok(Presented {
        client_id: client_id.to_owned(),
        secret: body_secret.map(str::to_owned),
        via_basic: false,
    })
}

/// The authenticated, approved, live client of this tenant.
pub async fn authenticate(
    app: &App,
    tenant: &Tenant,
    issuer: &str,
    p: &Presented,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let fail = |d: &str| invalid_client(p.via_basic, issuer, d);
    let id = ClientId::parse(&p.client_id).ok_or_else(|| fail("unknown client"))?;
    if id.is_url() && !tenant.cimd_enabled {
        return Err(fail(
            "this tenant does not accept metadata-document client identifiers",
        ));
    }
    let mut client = app
        .store
        .get_client(&tenant.id, &id, now)
        .await?
        .ok_or_else(|| fail("unknown client, or its registration expired before approval"))?;
    // A metadata-document client whose cached document went stale: fetch it again. A document
    // that is gone, changed into something invalid or unreachable means the client cannot
    // authenticate (nothing is fetched for an unknown URL: no code can exist for it).
    if client.document.as_ref().is_some_and(|d| !d.is_fresh(now)) {
        client = match crate::cimd::refresh(app.documents(), tenant, client, now).await {
            Ok(client) => client,
            Err(crate::cimd::ResolveError::Store(crate::store::StoreError::NotFound)) => {
                return Err(fail("unknown client"));
            }
            Err(crate::cimd::ResolveError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(fail(&e.to_string())),
        };
    }
    if client.status != ClientStatus::Approved {
        return Err(fail(
            "this client has not been approved by an administrator of the tenant yet",
        ));
    }
    match (&client.secret_hash, &p.secret) {
        // Confidential: the secret must match (constant-time, against its SHA-256).
        (Some(hash), Some(secret)) if crypto::verify_secret(secret, hash) => Ok(client),
        (Some(_), Some(_)) => Err(fail("client authentication failed")),
        (Some(_), None) => Err(fail("this client must authenticate with its client secret")),
        // Public: identified by client_id, proven by PKCE at the grant.
        (None, None) => Ok(client),
        (None, Some(_)) => Err(fail("this is a public client; it has no secret")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request {
        let mut b = http::Request::builder();
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(bytes::Bytes::new()).unwrap()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let form = Params::parse(b"").unwrap();
        let p = presented(&req(Some(&basic("abc", "s%2Bp+q%3A"))), &form, "iss").unwrap();
        assert_eq!(p.client_id, "abc");
        assert_eq!(p.secret.as_deref(), Some("s+p q:"));
        assert!(p.via_basic);
    }

    #[test]
    fn bare_client_id_next_to_basic_identifies_when_it_matches() {
        let same = Params::parse(b"client_id=abc").unwrap();
        assert!(presented(&req(Some(&basic("abc", "s"))), &same, "iss").is_ok());
        let other = Params::parse(b"client_id=xyz").unwrap();
        let err = presented(&req(Some(&basic("abc", "s"))), &other, "iss").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient);
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_secret_in_both_places_is_invalid_request() {
        let form = Params::parse(b"client_id=abc&client_secret=s").unwrap();
        let err = presented(&req(Some(&basic("abc", "s"))), &form, "iss").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn malformed_basic_is_invalid_client_with_challenge() {
        let form = Params::parse(b"").unwrap();
        let err = presented(&req(Some("Basic !!!")), &form, "iss").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient);
        assert!(err.headers.iter().any(|(n, _)| n == WWW_AUTHENTICATE));
    }
}
