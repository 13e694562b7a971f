//! The admin console, `{issuer}/admin…`: server-rendered pages over the same operations as the
//! admin API ([`service`], checked by [`manage`]). Same page rules as the consent pages
//! (`html.rs`: CSP with a nonce, `frame-ancestors 'none'`, escaped output), a CSRF field on
//! every form, and the session cookie as the only credential (a bearer token is not a browser
//! credential). Pages are in `console_pages.rs`, sign-in and sign-out in `console_signin.rs`.

use super::console_pages::{
    ClientPage, ClientRow, ClientsPage, Frame, SettingsPage, UserRow, UsersPage, changes_view,
    consent_label, document_view, href_id, message, see_other, time_left,
};
use super::console_signin::{sign_in, sign_out, signin_page};
use super::filter::ClientFilter;
use super::manage::{self, ClientEdit, UserEdit};
use super::{Admin, AuthError, authenticate_session, service};
use crate::context::Ctx;
use crate::domain::{AuthMethod, ClientStatus, Tenant, VendorTrust};
use crate::error::OAuthError;
use crate::html;
use crate::http::{self, Request, Response};
use crate::params::Params;
use ::http::header::HeaderValue;
use ::http::{Method, StatusCode};
use serde_json::{Map, Value};

const PAGE_SIZE: usize = 50;

/// `{issuer}/admin` and everything under it (`rest` is what follows `/admin`, without the
/// leading slash; empty for the console's home).
pub async fn handle(ctx: &Ctx<'_>, rest: &str, req: &Request) -> Response {
    let (app, tenant) = (ctx.app, ctx.tenant);
    let segments: Vec<&str> = rest.split('/').collect();
    if matches!(segments.as_slice(), ["signin"]) {
        return match *req.method() {
            Method::GET => signin_page(ctx, req, "", None, StatusCode::OK),
            Method::POST => sign_in(ctx, req).await,
            _ => http::error_response(&OAuthError::method_not_allowed("GET, POST")),
        };
    }
    let nonce = html::nonce();
    let admin = match authenticate_session(app, tenant, req, ctx.now).await {
        Ok(admin) => super::Admin {
            door: "console",
            ..admin
        },
        Err(AuthError::NotAdmin) => {
            let f = frame(ctx, nonce, "", None);
            return message(
                &f,
                StatusCode::FORBIDDEN,
                "Administrators only",
                "You are signed in, but only an administrator of this organisation can use the console.",
            );
        }
        Err(AuthError::Store(e)) => return http::error_response(&e.into()),
        Err(_) => return see_other(&format!("{}/admin/signin", ctx.issuer)),
    };
    let csrf = match &admin.via {
        super::Via::Session { csrf } => csrf.clone(),
        super::Via::Token { .. } => String::new(),
    };
    let f = frame(ctx, nonce, &csrf, None);
    let post = *req.method() == Method::POST;
    let form = if post {
        match console_form(req, &admin) {
            Ok(form) => Some(form),
            Err(resp) => return resp(&f),
        }
    } else {
        None
    };
    let result = match (req.method().clone(), segments.as_slice(), form) {
        (Method::GET, [""], _) => clients_page(ctx, &f, req).await,
        (Method::GET, ["clients", id], _) => client_page(ctx, &f, id, None).await,
        (Method::POST, ["clients", id], Some(form)) => {
            client_post(ctx, &f, &admin, id, &form).await
        }
        (Method::GET, ["settings"], _) => Ok(settings_page(ctx, &f, ctx.tenant, StatusCode::OK)),
        (Method::POST, ["settings"], Some(form)) => settings_post(ctx, &f, &admin, &form).await,
        (Method::GET, ["users"], _) => users_page(ctx, &f, StatusCode::OK).await,
        (Method::GET, ["audit"], _) => super::console_audit::audit_page(ctx, &f, req).await,
        (Method::GET, ["trusts"], _) => super::console_trusts::trusts_page(ctx, &f).await,
        (Method::POST, ["trusts"], Some(form)) => {
            super::console_trusts::trusts_post(ctx, &admin, &form).await
        }
        (Method::POST, ["users"], Some(form)) => users_post(ctx, &f, &admin, &form).await,
        (Method::POST, ["signout"], Some(_)) => Ok(sign_out(ctx, req).await),
        (_, [""] | ["audit"], _) => Err(OAuthError::method_not_allowed("GET")),
        (_, ["clients", _] | ["settings"] | ["users"] | ["trusts"], _) => {
            Err(OAuthError::method_not_allowed("GET, POST"))
        }
        (_, ["signout"], _) => Err(OAuthError::method_not_allowed("POST")),
        _ => Err(OAuthError::not_found("no such console page")),
    };
    result.unwrap_or_else(|e| {
        let mut resp = message(&f, e.status, "Something is not right", &e.description);
        for (name, value) in &e.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp.headers_mut().append(name.clone(), v);
            }
        }
        resp
    })
}

fn frame<'a>(ctx: &'a Ctx<'_>, nonce: String, csrf: &'a str, error: Option<&'a str>) -> Frame<'a> {
    Frame {
        nonce,
        tenant_name: &ctx.tenant.display_name,
        issuer: &ctx.issuer,
        csrf,
        error,
    }
}

type Refusal = Box<dyn Fn(&Frame<'_>) -> Response>;

/// A console form: form-encoded, with the session's CSRF token.
fn console_form(req: &Request, admin: &Admin) -> Result<Params, Refusal> {
    if !http::is_form(req.headers()) {
        return Err(Box::new(|f| {
            message(
                f,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Invalid form",
                "Console forms are sent as application/x-www-form-urlencoded.",
            )
        }));
    }
    let params = Params::parse(req.body()).map_err(|e| -> Refusal {
        let text = e.describe();
        Box::new(move |f| message(f, StatusCode::BAD_REQUEST, "Invalid form", &text))
    })?;
    let presented = params.single("csrf").ok().flatten();
    if !admin.csrf_ok(presented) {
        return Err(Box::new(|f| {
            message(
                f,
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not come from your console session (missing or wrong CSRF token). Reload the page and try again.",
            )
        }));
    }
    Ok(params)
}

fn field<'p>(form: &'p Params, name: &'static str) -> Result<Option<&'p str>, OAuthError> {
    form.single(name)
        .map_err(|e| OAuthError::invalid_request(e.describe()))
}

// ------------------------------------------------------------------ clients

async fn clients_page(ctx: &Ctx<'_>, f: &Frame<'_>, req: &Request) -> Result<Response, OAuthError> {
    let q = Params::parse(req.uri().query().unwrap_or("").as_bytes())
        .map_err(|e| OAuthError::invalid_request(e.describe()))?;
    let pending_view = field(&q, "view")? == Some("pending");
    let filter_text = if pending_view {
        r#"status eq "pending""#
    } else {
        r#"status eq "approved""#
    };
    let filter =
        ClientFilter::parse(filter_text).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let after = field(&q, "after")?
        .filter(|a| a.len() <= 200)
        .map(str::to_owned);
    let (clients, next) = service::filtered_page(ctx, &filter, after, PAGE_SIZE).await?;
    let asked = if pending_view {
        service::requests_by_client(ctx, &clients).await?
    } else {
        Default::default()
    };
    let rows = clients
        .iter()
        .map(|c| ClientRow {
            id: c.client_id.to_string(),
            href_id: href_id(c.client_id.as_str()),
            name: c.metadata.client_name.clone(),
            created_by: c.created_by.as_str(),
            consent: consent_label(c),
            scope: c.metadata.scope.to_string(),
            redirect_uris: c
                .metadata
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            created: html::ago(ctx.now, c.created_at),
            time_left: time_left(ctx.now, c),
            requested_by: asked
                .get(&c.client_id)
                .map_or_else(String::new, |r| emails(r)),
            shown: c.approval_digest(),
            trustable: VendorTrust::eligibility(c).is_ok(),
        })
        .collect();
    let next_href = next.map(|n| {
        let view = if pending_view { "view=pending&" } else { "" };
        let after: String = url::form_urlencoded::byte_serialize(n.as_bytes()).collect();
        format!("{}/admin?{view}after={after}", ctx.issuer)
    });
    Ok(html::page(
        StatusCode::OK,
        &f.nonce,
        &ClientsPage {
            nonce: &f.nonce,
            tenant_name: f.tenant_name,
            issuer: f.issuer,
            csrf: f.csrf,
            error: f.error,
            pending_view,
            clients: rows,
            next_href,
        },
    ))
}

async fn client_page(
    ctx: &Ctx<'_>,
    f: &Frame<'_>,
    id: &str,
    error: Option<(&str, StatusCode)>,
) -> Result<Response, OAuthError> {
    let c = service::load_client(ctx, id).await?;
    let status = error.map_or(StatusCode::OK, |(_, s)| s);
    let requested_by = if c.status == ClientStatus::Pending {
        emails(&ctx.access_requests(&c).await)
    } else {
        String::new()
    };
    Ok(html::page(
        status,
        &f.nonce,
        &ClientPage {
            nonce: &f.nonce,
            tenant_name: f.tenant_name,
            issuer: f.issuer,
            csrf: f.csrf,
            error: error.map(|(e, _)| e),
            id: c.client_id.as_str(),
            href_id: href_id(c.client_id.as_str()),
            name: &c.metadata.client_name,
            status: c.status.as_str(),
            pending: c.status == ClientStatus::Pending,
            document: document_view(ctx.now, &c),
            changes: changes_view(&c),
            time_left: time_left(ctx.now, &c),
            created_by: c.created_by.as_str(),
            consent: c.consent_method.as_str(),
            scope: c.metadata.scope.to_string(),
            allowed_scopes: ctx.tenant.dcr.allowed_scopes.to_string(),
            config_version: c.config_version,
            shown: c.approval_digest(),
            auth_method: c.metadata.token_endpoint_auth_method.as_str(),
            redirect_uris: c
                .metadata
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            client_uri: c.metadata.client_uri.as_deref(),
            created: html::ago(ctx.now, c.created_at),
            requested_by,
            trustable: c.status == ClientStatus::Pending && VendorTrust::eligibility(&c).is_ok(),
            vendor_trust: c.vendor_trust.as_deref(),
        },
    ))
}

/// Who asked for a client, for a table cell.
fn emails(requests: &[crate::domain::AccessRequest]) -> String {
    requests
        .iter()
        .map(|r| r.requester.email.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn client_post(
    ctx: &Ctx<'_>,
    f: &Frame<'_>,
    admin: &Admin,
    id: &str,
    form: &Params,
) -> Result<Response, OAuthError> {
    match field(form, "action")? {
        Some("update") => {
            let edit = ClientEdit {
                client_name: field(form, "client_name")?.map(str::to_owned),
                scope: field(form, "scope")?.map(str::to_owned),
                consent_method: field(form, "consent_method")?.map(str::to_owned),
            };
            match service::edit_client(ctx, admin, id, &edit).await {
                Ok(_) => Ok(see_other(&format!("{}/admin/clients/{id}", ctx.issuer))),
                Err(e) if e.status == StatusCode::BAD_REQUEST => {
                    client_page(ctx, f, id, Some((&e.description, StatusCode::BAD_REQUEST))).await
                }
                Err(e) => Err(e),
            }
        }
        Some("delete") => {
            service::delete_client(ctx, admin, id).await?;
            Ok(see_other(&format!("{}/admin", ctx.issuer)))
        }
        Some("reject") => match service::reject_client(ctx, admin, id).await {
            Ok(()) => Ok(see_other(&format!("{}/admin?view=pending", ctx.issuer))),
            // Approved meanwhile: show the client as it is now.
            Err(e) if e.status == StatusCode::CONFLICT => {
                client_page(ctx, f, id, Some((&e.description, StatusCode::CONFLICT))).await
            }
            Err(e) => Err(e),
        },
        Some("approve") => {
            let shown = field(form, "shown")?.unwrap_or("");
            // The pending queue's Approve returns to the queue.
            let back = match field(form, "from")? {
                Some("queue") => format!("{}/admin?view=pending", ctx.issuer),
                _ => format!("{}/admin/clients/{id}", ctx.issuer),
            };
            let trust = field(form, "trust_vendor")? == Some("on");
            match service::approve_client(ctx, admin, id, Some(shown), trust).await {
                Ok(_) => Ok(see_other(&back)),
                // Changed since the page was shown: show it again, as it is now.
                Err(e) if e.status == StatusCode::CONFLICT => {
                    client_page(ctx, f, id, Some((&e.description, StatusCode::CONFLICT))).await
                }
                Err(e) => Err(e),
            }
        }
        Some("refresh") => match service::refresh_metadata(ctx, id).await {
            Ok(_) => Ok(see_other(&format!("{}/admin/clients/{id}", ctx.issuer))),
            Err(e) if e.status.is_client_error() || e.status == StatusCode::BAD_GATEWAY => {
                client_page(ctx, f, id, Some((&e.description, e.status))).await
            }
            Err(e) => Err(e),
        },
        _ => Err(OAuthError::invalid_request(
            "the form did not say whether to update, approve, reject, refresh or delete",
        )),
    }
}

// ------------------------------------------------------------------ settings

fn settings_page(ctx: &Ctx<'_>, f: &Frame<'_>, t: &Tenant, status: StatusCode) -> Response {
    let _ = ctx;
    html::page(
        status,
        &f.nonce,
        &SettingsPage {
            nonce: &f.nonce,
            tenant_name: f.tenant_name,
            issuer: f.issuer,
            csrf: f.csrf,
            error: f.error,
            display_name: &t.display_name,
            dcr_enabled: t.dcr.enabled,
            methods: AuthMethod::ALL
                .iter()
                .map(|m| (m.as_str(), t.dcr.allowed_auth_methods.contains(m)))
                .collect(),
            require_client_uri: t.dcr.require_client_uri,
            cimd_enabled: t.cimd_enabled,
            openid_enabled: t.openid_enabled,
            access_token_signing_alg: t.access_token_signing_alg.as_str(),
            allowed_scopes: t.dcr.allowed_scopes.to_string(),
            pending_ttl: t.dcr.pending_client_ttl_secs,
            pending_cap: t.dcr.pending_client_cap,
            source_share: t.dcr.pending_client_source_share_percent,
            audit_retention_days: t.audit_retention_days,
            default_resource: t.default_resource.as_deref().unwrap_or(""),
        },
    )
}

async fn settings_post(
    ctx: &Ctx<'_>,
    f: &Frame<'_>,
    admin: &Admin,
    form: &Params,
) -> Result<Response, OAuthError> {
    // Checkboxes are absent when unticked: the form always describes every setting.
    let mut patch = Map::new();
    let text = |name: &'static str| field(form, name).map(|v| v.unwrap_or(""));
    patch.insert(
        "display_name".into(),
        Value::String(text("display_name")?.to_owned()),
    );
    patch.insert(
        "dcr_enabled".into(),
        Value::Bool(field(form, "dcr_enabled")?.is_some()),
    );
    patch.insert(
        "require_client_uri".into(),
        Value::Bool(field(form, "require_client_uri")?.is_some()),
    );
    patch.insert(
        "cimd_enabled".into(),
        Value::Bool(field(form, "cimd_enabled")?.is_some()),
    );
    patch.insert(
        "openid_enabled".into(),
        Value::Bool(field(form, "openid_enabled")?.is_some()),
    );
    patch.insert(
        "access_token_signing_alg".into(),
        Value::String(text("access_token_signing_alg")?.to_owned()),
    );
    patch.insert(
        "allowed_auth_methods".into(),
        Value::Array(
            form.all("allowed_auth_methods")
                .into_iter()
                .map(|m| Value::String(m.to_owned()))
                .collect(),
        ),
    );
    for key in [
        "allowed_scopes",
        "pending_client_ttl_secs",
        "pending_client_cap",
        "pending_client_source_share_percent",
        "default_resource",
        "audit_retention_days",
    ] {
        patch.insert(key.into(), manage::settings_value(key, text(key)?)?);
    }
    match manage::apply_settings(ctx.tenant, &patch) {
        Ok(updated) => {
            service::save_settings(ctx, admin, &updated).await?;
            Ok(see_other(&format!("{}/admin/settings", ctx.issuer)))
        }
        Err(e) => {
            let f = Frame {
                nonce: f.nonce.clone(),
                error: Some(&e.description),
                ..*f
            };
            Ok(settings_page(ctx, &f, ctx.tenant, StatusCode::BAD_REQUEST))
        }
    }
}

// ------------------------------------------------------------------ users

async fn users_page(
    ctx: &Ctx<'_>,
    f: &Frame<'_>,
    status: StatusCode,
) -> Result<Response, OAuthError> {
    let users = service::list_users(ctx).await?;
    Ok(html::page(
        status,
        &f.nonce,
        &UsersPage {
            nonce: &f.nonce,
            tenant_name: f.tenant_name,
            issuer: f.issuer,
            csrf: f.csrf,
            error: f.error,
            users: users
                .iter()
                .map(|u| UserRow {
                    email: u.email.to_string(),
                    role: u.role.as_str(),
                    status: if u.disabled { "disabled" } else { "active" },
                })
                .collect(),
        },
    ))
}

async fn users_post(
    ctx: &Ctx<'_>,
    f: &Frame<'_>,
    admin: &Admin,
    form: &Params,
) -> Result<Response, OAuthError> {
    let email = field(form, "email")?.unwrap_or("");
    let result = match field(form, "action")?.unwrap_or("add") {
        "add" => {
            let password = field(form, "password")?.unwrap_or("");
            let role = field(form, "role")?.unwrap_or("user");
            service::add_user(ctx, admin, email, password, role, None)
                .await
                .map(|_| ())
        }
        action => {
            let edit = match action {
                "disable" => UserEdit {
                    disabled: Some(true),
                    ..UserEdit::default()
                },
                "enable" => UserEdit {
                    disabled: Some(false),
                    ..UserEdit::default()
                },
                "make_admin" => UserEdit {
                    role: Some("admin".into()),
                    ..UserEdit::default()
                },
                "make_user" => UserEdit {
                    role: Some("user".into()),
                    ..UserEdit::default()
                },
                "reset_password" => UserEdit {
                    password: Some(field(form, "password")?.unwrap_or("").to_owned()),
                    ..UserEdit::default()
                },
                _ => return Err(OAuthError::invalid_request("unknown user action")),
            };
            service::edit_user(ctx, admin, email, &edit)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(see_other(&format!("{}/admin/users", ctx.issuer))),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let f = Frame {
                nonce: f.nonce.clone(),
                error: Some(&e.description),
                ..*f
            };
            users_page(ctx, &f, e.status).await
        }
        Err(e) => Err(e),
    }
}
