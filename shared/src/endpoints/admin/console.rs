//! The admin console, `{issuer}/admin…`: server-rendered pages over the same operations as the
//! admin API (`api.rs`, `manage.rs`). Same page rules as the consent pages (`html.rs`: CSP with
//! a nonce, `frame-ancestors 'none'`, escaped output), a CSRF field on every form, and the
//! session cookie as the only credential (a bearer token is not a browser credential).

use super::api::{self, filtered_page};
use super::filter::ClientFilter;
use super::manage::{self, ClientEdit, UserEdit};
use super::{Admin, AuthError, authenticate_session};
use crate::context::Ctx;
use crate::crypto;
use crate::domain::{AuthMethod, Client, ClientStatus, Tenant, UnixTime};
use crate::error::OAuthError;
use crate::hosted::cookie_value;
use crate::html;
use crate::http::{self, Request, Response};
use crate::params::Params;
use crate::signin::{self, BROWSER_COOKIE, SESSION_COOKIE, SignInError};
use ::http::header::{self, HeaderValue};
use ::http::{Method, StatusCode};
use askama::Template;
use serde_json::{Map, Value};

const PAGE_SIZE: usize = 50;

/// What every console page shows in its frame.
struct Frame<'a> {
    nonce: String,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "admin_signin.html")]
struct SignInPage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    signin_csrf: &'a str,
    email: &'a str,
}

struct ClientRow {
    id: String,
    /// `id` percent-encoded for a path segment (metadata-document ids are URLs).
    href_id: String,
    name: String,
    created_by: &'static str,
    consent: &'static str,
    scope: String,
    redirect_uris: Vec<String>,
    created: String,
    time_left: String,
}

#[derive(Template)]
#[template(path = "admin_clients.html")]
struct ClientsPage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    pending_view: bool,
    clients: Vec<ClientRow>,
    next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_client.html")]
struct ClientPage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    id: &'a str,
    href_id: String,
    name: &'a str,
    status: &'a str,
    pending: bool,
    /// Metadata-document clients: the document URL and cache times, and changes awaiting
    /// approval (name and redirect URIs).
    document: Option<DocumentView>,
    changes: Option<ChangesView>,
    /// [`Client::approval_digest`] of what this page shows, carried by its approval forms.
    shown: String,
    time_left: String,
    created_by: &'a str,
    consent: &'a str,
    scope: String,
    allowed_scopes: String,
    config_version: u32,
    auth_method: &'a str,
    redirect_uris: Vec<String>,
    client_uri: Option<&'a str>,
    created: String,
}

struct DocumentView {
    url: String,
    fetched: String,
    fresh_for: String,
}

/// What an approved client asked to change (RFC 7592 update, changed metadata document):
/// each field that differs from the approved configuration, as label and new value.
struct ChangesView {
    fields: Vec<(&'static str, &'static str, String)>,
}

fn changes_view(c: &Client) -> Option<ChangesView> {
    let p = c.pending_changes.as_ref()?;
    let m = &c.metadata;
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map_or_else(|| "(none)".to_owned(), crate::html::ascii_url)
    };
    let uris = |m: &crate::domain::ClientMetadata| {
        m.redirect_uris
            .iter()
            .map(|u| crate::html::ascii_url(u.as_str()))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut fields = Vec::new();
    let mut differs = |field: &'static str, label: &'static str, old: String, new: String| {
        if old != new {
            fields.push((field, label, new));
        }
    };
    differs(
        "client_name",
        "Name",
        m.client_name.clone(),
        p.client_name.clone(),
    );
    differs("redirect_uris", "Redirect URIs", uris(m), uris(p));
    differs("scope", "Scope", m.scope.to_string(), p.scope.to_string());
    differs(
        "grant_types",
        "Grant types",
        format!("{:?}", m.grant_types),
        format!("{:?}", p.grant_types),
    );
    differs(
        "client_uri",
        "Client URI",
        opt(&m.client_uri),
        opt(&p.client_uri),
    );
    differs("logo_uri", "Logo URI", opt(&m.logo_uri), opt(&p.logo_uri));
    differs(
        "tos_uri",
        "Terms of service",
        opt(&m.tos_uri),
        opt(&p.tos_uri),
    );
    differs(
        "policy_uri",
        "Privacy policy",
        opt(&m.policy_uri),
        opt(&p.policy_uri),
    );
    differs(
        "software_id",
        "Software ID",
        m.software_id.clone().unwrap_or_default(),
        p.software_id.clone().unwrap_or_default(),
    );
    differs(
        "application_type",
        "Application type",
        format!("{:?}", m.application_type),
        format!("{:?}", p.application_type),
    );
    Some(ChangesView { fields })
}

/// A client id as one path segment.
fn href_id(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn document_view(now: UnixTime, c: &Client) -> Option<DocumentView> {
    let doc = c.document.as_ref()?;
    Some(DocumentView {
        url: c.client_id.to_string(),
        fetched: html::ago(now, doc.fetched_at),
        fresh_for: if doc.fresh_until > now {
            html::time_left(now, doc.fresh_until)
        } else {
            "stale: fetched again on next use".to_owned()
        },
    })
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
struct SettingsPage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    display_name: &'a str,
    dcr_enabled: bool,
    cimd_enabled: bool,
    methods: Vec<(&'static str, bool)>,
    require_client_uri: bool,
    allowed_scopes: String,
    pending_ttl: u64,
    pending_cap: u32,
    default_resource: &'a str,
}

struct UserRow {
    email: String,
    role: &'static str,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    users: Vec<UserRow>,
}

#[derive(Template)]
#[template(path = "admin_message.html")]
struct MessagePage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    title: &'a str,
    message: &'a str,
}

fn message(f: &Frame<'_>, status: StatusCode, title: &str, text: &str) -> Response {
    html::page(
        status,
        &f.nonce,
        &MessagePage {
            nonce: &f.nonce,
            tenant_name: f.tenant_name,
            issuer: f.issuer,
            csrf: f.csrf,
            error: None,
            title,
            message: text,
        },
    )
}

fn see_other(to: &str) -> Response {
    let mut resp = Response::new(bytes::Bytes::new());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn time_left(now: UnixTime, client: &Client) -> String {
    client
        .expires_at
        .map(|exp| html::time_left(now, exp))
        .unwrap_or_default()
}

fn consent_label(client: &Client) -> &'static str {
    match client.consent_method {
        crate::domain::ConsentMethod::Required => "Required",
        crate::domain::ConsentMethod::Trusted => "Trusted",
    }
}

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
        Ok(admin) => admin,
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
        (Method::POST, ["settings"], Some(form)) => settings_post(ctx, &f, &form).await,
        (Method::GET, ["users"], _) => users_page(ctx, &f, StatusCode::OK).await,
        (Method::POST, ["users"], Some(form)) => users_post(ctx, &f, &admin, &form).await,
        (Method::POST, ["signout"], Some(_)) => Ok(sign_out(ctx, req).await),
        (_, [""], _) => Err(OAuthError::method_not_allowed("GET")),
        (_, ["clients", _] | ["settings"] | ["users"], _) => {
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

// ------------------------------------------------------------------ sign-in

fn signin_csrf(browser: &str) -> String {
    crypto::hash_secret(&format!("gatehouse-signin:{browser}"))
}

fn signin_page(
    ctx: &Ctx<'_>,
    req: &Request,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (browser, fresh) = match cookie_value(req, BROWSER_COOKIE) {
        Some(b) => (b, false),
        None => (crypto::new_secret(), true),
    };
    let nonce = html::nonce();
    let mut resp = html::page(
        status,
        &nonce,
        &SignInPage {
            nonce: &nonce,
            tenant_name: &ctx.tenant.display_name,
            issuer: &ctx.issuer,
            csrf: "",
            error,
            signin_csrf: &signin_csrf(&browser),
            email,
        },
    );
    if fresh {
        resp.headers_mut().append(
            header::SET_COOKIE,
            ctx.cookie(BROWSER_COOKIE, browser, 365 * 24 * 3600),
        );
    }
    resp
}

async fn sign_in(ctx: &Ctx<'_>, req: &Request) -> Response {
    let params = match (http::is_form(req.headers()), Params::parse(req.body())) {
        (true, Ok(p)) => p,
        _ => {
            return signin_page(
                ctx,
                req,
                "",
                Some("The sign-in form was malformed. Try again."),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let email = params.single("email").ok().flatten().unwrap_or("");
    let password = params.single("password").ok().flatten().unwrap_or("");
    let csrf = params.single("csrf").ok().flatten().unwrap_or("");
    let browser = cookie_value(req, BROWSER_COOKIE).unwrap_or_default();
    if browser.is_empty() || !crypto::constant_time_eq(csrf, &signin_csrf(&browser)) {
        return signin_page(
            ctx,
            req,
            email,
            Some("The sign-in form expired. Try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let user = match signin::check_password(ctx.app, ctx.tenant, req, email, password).await {
        Ok(user) => user,
        Err(SignInError::Throttled) => {
            return signin_page(
                ctx,
                req,
                email,
                Some("Too many sign-in attempts. Wait a minute and try again."),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(SignInError::Invalid) => {
            return signin_page(
                ctx,
                req,
                email,
                Some("Incorrect email or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(SignInError::Store(e)) => return http::error_response(&e.into()),
    };
    let session_id = match signin::start_session(ctx.app, &user, ctx.now).await {
        Ok((_, id)) => id,
        Err(e) => return http::error_response(&e.into()),
    };
    let mut resp = see_other(&format!("{}/admin", ctx.issuer));
    resp.headers_mut().append(
        header::SET_COOKIE,
        ctx.cookie(
            SESSION_COOKIE,
            session_id,
            crate::defaults::SESSION_TTL_SECS,
        ),
    );
    resp
}

async fn sign_out(ctx: &Ctx<'_>, req: &Request) -> Response {
    if let Some(id) = cookie_value(req, SESSION_COOKIE)
        && let Err(e) = ctx
            .app
            .store
            .delete_session(&ctx.tenant.id, &crypto::hash_secret(&id))
            .await
    {
        return http::error_response(&e.into());
    }
    let mut resp = see_other(&format!("{}/admin/signin", ctx.issuer));
    resp.headers_mut().append(
        header::SET_COOKIE,
        ctx.cookie(SESSION_COOKIE, String::new(), 0),
    );
    resp
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
    let (clients, next) =
        filtered_page(ctx.app, ctx.tenant, &filter, after, PAGE_SIZE, ctx.now).await?;
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
    let c = api::load_client(ctx.app, ctx.tenant, id, ctx.now).await?;
    let status = error.map_or(StatusCode::OK, |(_, s)| s);
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
        },
    ))
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
            match api::edit_client(ctx.app, ctx.tenant, id, &edit, ctx.now).await {
                Ok(_) => Ok(see_other(&format!("{}/admin/clients/{id}", ctx.issuer))),
                Err(e) if e.status == StatusCode::BAD_REQUEST => {
                    client_page(ctx, f, id, Some((&e.description, StatusCode::BAD_REQUEST))).await
                }
                Err(e) => Err(e),
            }
        }
        Some("delete") => {
            api::delete_client(ctx.app, ctx.tenant, id, ctx.now).await?;
            Ok(see_other(&format!("{}/admin", ctx.issuer)))
        }
        Some("approve") => {
            let shown = field(form, "shown")?.unwrap_or("");
            match api::approve_client(ctx.app, ctx.tenant, admin, id, Some(shown), ctx.now).await {
                Ok(_) => Ok(see_other(&format!("{}/admin/clients/{id}", ctx.issuer))),
                // Changed since the page was shown: show it again, as it is now.
                Err(e) if e.status == StatusCode::CONFLICT => {
                    client_page(ctx, f, id, Some((&e.description, StatusCode::CONFLICT))).await
                }
                Err(e) => Err(e),
            }
        }
        Some("refresh") => match api::refresh_metadata(ctx.app, ctx.tenant, id, ctx.now).await {
            Ok(_) => Ok(see_other(&format!("{}/admin/clients/{id}", ctx.issuer))),
            Err(e) if e.status.is_client_error() || e.status == StatusCode::BAD_GATEWAY => {
                client_page(ctx, f, id, Some((&e.description, e.status))).await
            }
            Err(e) => Err(e),
        },
        _ => Err(OAuthError::invalid_request(
            "the form did not say whether to update, approve, refresh or delete",
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
            allowed_scopes: t.dcr.allowed_scopes.to_string(),
            pending_ttl: t.dcr.pending_client_ttl_secs,
            pending_cap: t.dcr.pending_client_cap,
            default_resource: t.default_resource.as_deref().unwrap_or(""),
        },
    )
}

async fn settings_post(
    ctx: &Ctx<'_>,
    f: &Frame<'_>,
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
        "default_resource",
    ] {
        patch.insert(key.into(), manage::settings_value(key, text(key)?)?);
    }
    match manage::apply_settings(ctx.tenant, &patch) {
        Ok(updated) => {
            api::save_settings(ctx.app, &updated).await?;
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
    let users = ctx.app.store.list_users(&ctx.tenant.id).await?;
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
            match manage::new_user(ctx.tenant, email, password, role, ctx.now) {
                Ok(user) => api::add_user(ctx.app, &user).await,
                Err(e) => Err(e),
            }
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
            api::edit_user(ctx.app, ctx.tenant, admin, email, &edit)
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
