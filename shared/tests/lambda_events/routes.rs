//! The SAM template's routes against the router: API Gateway must hand each path to the
//! function whose dispatcher answers it, with a method that function's route table takes.

use crate::template::{HttpEvent, function_of, http_events, read};
use gatehouse_core::router::{MethodCheck, Route, route};

/// Sample values for a template path's parameters; `{proxy+}` gets one and several segments.
fn samples(template_path: &str) -> Vec<String> {
    let path = template_path
        .replace("{tenant}", "acme")
        .replace("{client_id}", "client-1");
    if path.contains("{proxy+}") {
        ["page", "x/y"]
            .iter()
            .map(|proxy| path.replace("{proxy+}", proxy))
            .collect()
    } else {
        assert!(!path.contains('{'), "a parameter without a sample: {path}");
        vec![path]
    }
}

/// Whether a template path (`{name}` one segment, a final `{proxy+}` one or more) matches.
fn matches(template_path: &str, path: &str) -> bool {
    let pattern: Vec<&str> = template_path.split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    if pattern.last() == Some(&"{proxy+}") {
        let fixed = pattern.len() - 1;
        segments.len() > fixed
            && segments[fixed..].iter().all(|s| !s.is_empty())
            && segment_match(&pattern[..fixed], &segments[..fixed])
    } else {
        pattern.len() == segments.len() && segment_match(&pattern, &segments)
    }
}

fn segment_match(pattern: &[&str], segments: &[&str]) -> bool {
    pattern.iter().zip(segments).all(|(p, s)| {
        let parameter = p.starts_with('{') && p.ends_with('}');
        if parameter { !s.is_empty() } else { p == s }
    })
}

/// Whether the route's method table takes the template event's method.
fn method_fits(event: &HttpEvent, route: &Route<'_>) -> bool {
    let methods = route.methods();
    let listed =
        |list: Option<&str>| list.is_some_and(|l| l.split(", ").any(|m| m == event.method));
    match event.method.as_str() {
        // A preflight is answered by the dispatcher for routes browsers call cross-origin.
        "OPTIONS" => methods.preflight.is_some(),
        "ANY" => {
            methods.check == MethodCheck::BySubPath
                || methods
                    .allow
                    .split(", ")
                    .filter(|m| !matches!(*m, "OPTIONS" | "HEAD"))
                    .count()
                    > 1
        }
        // BySubPath: the endpoint routes methods itself. A method only in the preflight list
        // reaches the endpoint on purpose (`Route::Mcp`'s GET gets its 401 or 405 there).
        _ => {
            methods.check == MethodCheck::BySubPath
                || methods.allows(&event.method)
                || listed(methods.preflight)
        }
    }
}

#[test]
fn every_template_route_reaches_the_function_the_router_gives_it() {
    let events = http_events(&read());
    assert!(events.len() >= 20, "too few events read: {events:#?}");
    for function in [
        "RegisterFunction",
        "DiscoveryFunction",
        "AuthorizeFunction",
        "AdminFunction",
        "TokenFunction",
    ] {
        assert!(
            events.iter().any(|e| e.function == function),
            "no HttpApi event read for {function}"
        );
    }
    for event in &events {
        for path in samples(&event.path) {
            let routed = route(&path).unwrap_or_else(|| {
                panic!(
                    "{} {} ({path}): the router has no route",
                    event.function, event.name
                )
            });
            assert_eq!(
                routed.function(),
                function_of(&event.function),
                "{} {} ({path}) is routed to {}",
                event.function,
                event.name,
                routed.name()
            );
            assert!(
                method_fits(event, &routed),
                "{} {}: {} {path} is not in the method table of {} ({:?})",
                event.function,
                event.name,
                event.method,
                routed.name(),
                routed.methods()
            );
        }
    }
}

/// Sample paths of every [`Route`]. The match has no wildcard, so a new variant does not
/// compile until it has its samples here (and in [`ALL`]).
fn route_samples(route: &Route<'_>) -> &'static [&'static str] {
    match route {
        Route::Register { .. } => &["/t/acme/oauth/register"],
        Route::AuthorizationServerMetadata { .. } => &[
            "/.well-known/oauth-authorization-server/t/acme",
            "/t/acme/.well-known/oauth-authorization-server",
        ],
        Route::OpenIdConfiguration { .. } => &[
            "/.well-known/openid-configuration/t/acme",
            "/t/acme/.well-known/openid-configuration",
        ],
        Route::UserInfo { .. } => &["/t/acme/oauth/userinfo"],
        Route::Authorize { .. } => &["/t/acme/oauth/authorize"],
        Route::Approve { .. } => &["/t/acme/admin/approve"],
        Route::ClientConfiguration { .. } => &["/t/acme/oauth/register/client-1"],
        Route::AdminApi { .. } => &[
            "/t/acme/api/v1/oauth-clients",
            "/t/acme/api/v1/oauth-clients/client-1",
        ],
        Route::Console { .. } => &[
            "/t/acme/admin",
            "/t/acme/admin/signin",
            "/t/acme/admin/clients/x1",
        ],
        Route::Token { .. } => &["/t/acme/oauth/token"],
        Route::Revoke { .. } => &["/t/acme/oauth/revoke"],
        Route::Introspect { .. } => &["/t/acme/oauth/introspect"],
        Route::Jwks { .. } => &["/t/acme/jwks.json"],
        Route::ProtectedResourceMetadata { .. } => &[
            "/.well-known/oauth-protected-resource/t/acme/mcp",
            "/t/acme/mcp/.well-known/oauth-protected-resource",
        ],
        Route::Mcp { .. } => &["/t/acme/mcp"],
    }
}

const ALL: [Route<'static>; 15] = [
    Route::Register { tenant: "acme" },
    Route::AuthorizationServerMetadata { tenant: "acme" },
    Route::OpenIdConfiguration { tenant: "acme" },
    Route::UserInfo { tenant: "acme" },
    Route::Authorize { tenant: "acme" },
    Route::Approve { tenant: "acme" },
    Route::ClientConfiguration {
        tenant: "acme",
        client_id: "client-1",
    },
    Route::AdminApi {
        tenant: "acme",
        rest: "",
    },
    Route::Console {
        tenant: "acme",
        rest: "",
    },
    Route::Token { tenant: "acme" },
    Route::Revoke { tenant: "acme" },
    Route::Introspect { tenant: "acme" },
    Route::Jwks { tenant: "acme" },
    Route::ProtectedResourceMetadata { tenant: "acme" },
    Route::Mcp { tenant: "acme" },
];

#[test]
fn every_router_route_is_routed_by_the_template() {
    let events = http_events(&read());
    for variant in &ALL {
        for path in route_samples(variant) {
            let routed = route(path).unwrap_or_else(|| panic!("{path}: no route"));
            assert_eq!(
                routed.name(),
                variant.name(),
                "{path} is a sample of another route"
            );
            assert!(
                events.iter().any(
                    |e| matches(&e.path, path) && function_of(&e.function) == routed.function()
                ),
                "{path} ({}): no template event sends it to the {} function",
                variant.name(),
                routed.function().name()
            );
        }
    }
}
