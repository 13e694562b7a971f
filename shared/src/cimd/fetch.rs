//! The one outbound HTTP request Gatehouse makes on a client's say-so: `GET` of a Client ID
//! Metadata Document. Strict by construction:
//! - HTTPS only, certificates checked against the system roots (plus a development-only extra
//!   CA), HTTP/1.1, one request per connection, no redirects followed, no cookies, no proxy;
//! - the host is resolved first and **every** address it resolves to must be allowed
//!   ([`super::address`]); the connection then goes to one of those checked addresses, so a
//!   second DNS answer (rebinding) never reaches the socket;
//! - a connect timeout per address and one deadline for the whole exchange (resolution,
//!   connect, TLS, headers and body), so a slow server cannot hold a Lambda invocation;
//! - `200` with a JSON content type only, and a body cap enforced while reading.

use super::address::{self, Refusal};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use url::{Host, Position, Url};

/// Bounds of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect: Duration,
    pub total: Duration,
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(crate::defaults::CIMD_CONNECT_TIMEOUT_MS),
            total: Duration::from_millis(crate::defaults::CIMD_FETCH_TIMEOUT_MS),
            max_bytes: crate::defaults::CIMD_MAX_DOCUMENT_BYTES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the document host resolves to {} ({ip}), which is not allowed", why.describe())]
    Forbidden { ip: IpAddr, why: Refusal },
    #[error("the document host {0} could not be resolved")]
    Unresolvable(String),
    #[error("could not connect to the document host ({0})")]
    Connect(String),
    #[error("the TLS connection to the document host failed ({0})")]
    Tls(String),
    #[error("the document server did not answer in time")]
    Timeout,
    #[error(
        "the document server answered with a redirect (HTTP status {0}); redirects are not followed"
    )]
    Redirect(u16),
    #[error("the document server answered with HTTP status {0}, not 200")]
    Status(u16),
    #[error("the document has content type {0:?}; it must be application/json")]
    ContentType(String),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the HTTP exchange with the document server failed ({0})")]
    Http(String),
}

/// A fetched document: its body and what its caching headers ask for.
#[derive(Debug)]
pub struct Fetched {
    pub body: Bytes,
    /// Seconds the response may be reused: `Some(0)` for `no-store`/`no-cache`, `None` when the
    /// response says nothing.
    pub max_age: Option<u64>,
}

/// Name resolution, behind a trait so that tests can play a hostile DNS server (mixed or
/// changing answers). The fetcher asks it exactly once per fetch.
pub trait Resolve: Send + Sync {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;
}

/// The system resolver (`getaddrinfo` on tokio's blocking pool).
struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Fetches metadata documents. Built once per process; the TLS configuration (root store) is
/// built on first use, so start-up does not pay for reading the system's CA bundle.
pub struct Fetcher {
    limits: Limits,
    allow_loopback: bool,
    extra_roots: Vec<CertificateDer<'static>>,
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    resolver: Arc<dyn Resolve>,
}

impl Fetcher {
    /// `extra_roots`: development only (tests serve documents with a test CA).
    pub fn new(
        limits: Limits,
        allow_loopback: bool,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Self {
        Self {
            limits,
            allow_loopback,
            extra_roots,
            tls: OnceLock::new(),
            resolver: Arc::new(SystemResolver),
        }
    }

    /// The same fetcher with another resolver (tests).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, FetchError> {
        self.tls
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                let native = rustls_native_certs::load_native_certs();
                let (added, _ignored) = roots.add_parsable_certificates(native.certs);
                for cert in &self.extra_roots {
                    roots
                        .add(cert.clone())
                        .map_err(|e| format!("extra CA: {e}"))?;
                }
                if added == 0 && self.extra_roots.is_empty() {
                    return Err("no trusted CA certificates found on this system".to_owned());
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok(Arc::new(config))
            })
            .clone()
            .map_err(FetchError::Tls)
    }

    /// Whether an address may be connected to.
    fn check(&self, ip: IpAddr) -> Result<(), FetchError> {
        match address::refusal(ip) {
            None => Ok(()),
            Some(Refusal::Loopback) if self.allow_loopback => Ok(()),
            Some(why) => Err(FetchError::Forbidden { ip, why }),
        }
    }

    /// The addresses of the URL's host, every one of them allowed.
    async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, FetchError> {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => self
                .resolver
                .resolve(name, port)
                .await
                .map_err(|_| FetchError::Unresolvable(name.to_owned()))?,
            None => return Err(FetchError::Unresolvable(String::new())),
        };
        if addrs.is_empty() {
            return Err(FetchError::Unresolvable(
                url.host_str().unwrap_or_default().to_owned(),
            ));
        }
        // All or nothing: a name that resolves to one public and one internal address is
        // refused, rather than trusting which one the connection would pick.
        for addr in &addrs {
            self.check(addr.ip())?;
        }
        Ok(addrs)
    }

    async fn connect(&self, addrs: &[SocketAddr]) -> Result<TcpStream, FetchError> {
        let mut last = String::from("no address");
        for addr in addrs {
            match tokio::time::timeout(self.limits.connect, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    // Belt and braces: the socket's peer is one of the checked addresses.
                    let peer = stream
                        .peer_addr()
                        .map_err(|e| FetchError::Connect(e.to_string()))?;
                    self.check(peer.ip())?;
                    return Ok(stream);
                }
                Ok(Err(e)) => last = e.kind().to_string(),
                Err(_) => last = "connection timed out".to_owned(),
            }
        }
        Err(FetchError::Connect(last))
    }

    /// `GET url` under [`Limits`]. The caller has checked the URL's shape
    /// (`cimd::document_url`).
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(self.limits.total, self.exchange(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout),
        }
    }

    async fn exchange(&self, url: &Url) -> Result<Fetched, FetchError> {
        if url.scheme() != "https" {
            return Err(FetchError::Http("only https documents are fetched".into()));
        }
        let addrs = self.resolve(url).await?;
        let tcp = self.connect(&addrs).await?;
        let tls = self.tls()?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(server_name(url)?, tcp)
            .await
            .map_err(|e| FetchError::Tls(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        // The connection task ends with this function, whatever happens.
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let request = document_request(url)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(status.as_u16()));
        }
        if status != http::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let headers = response.headers();
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json_media_type(content_type) {
            return Err(FetchError::ContentType(
                content_type.chars().take(100).collect(),
            ));
        }
        let max = self.limits.max_bytes;
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            return Err(FetchError::TooLarge(max));
        }
        let max_age = max_age(headers);
        let body = Limited::new(response.into_body(), max)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    FetchError::TooLarge(max)
                } else {
                    FetchError::Http(e.to_string())
                }
            })?
            .to_bytes();
        drop(driver);
        Ok(Fetched { body, max_age })
    }
}

/// The name the server's certificate must carry: the URL's host, as written.
fn server_name(url: &Url) -> Result<ServerName<'static>, FetchError> {
    match url.host() {
        Some(Host::Ipv4(ip)) => Ok(ServerName::IpAddress(IpAddr::V4(ip).into())),
        Some(Host::Ipv6(ip)) => Ok(ServerName::IpAddress(IpAddr::V6(ip).into())),
        Some(Host::Domain(name)) => ServerName::try_from(name.to_owned())
            .map_err(|_| FetchError::Tls("invalid server name".into())),
        None => Err(FetchError::Tls("no server name".into())),
    }
}

/// `GET {path}?{query}` with `Host`, `Accept: application/json`, our user agent and
/// `Connection: close` (one request per connection).
fn document_request(url: &Url) -> Result<http::Request<Empty<Bytes>>, FetchError> {
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    http::Request::get(&url[Position::BeforePath..Position::AfterQuery])
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!(
                "Gatehouse/",
                env!("CARGO_PKG_VERSION"),
                " (client metadata)"
            ),
        )
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Http(e.to_string()))
}

/// The certificates of a PEM file (the development-only extra CA).
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read PEM certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `application/json` or a `+json` structured syntax type, parameters ignored.
fn is_json_media_type(raw: &str) -> bool {
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// What `Cache-Control` allows: `no-store`/`no-cache` → 0, else `max-age`; `None` when silent.
fn max_age(headers: &http::HeaderMap) -> Option<u64> {
    let mut age = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" || directive == "no-cache" {
                return Some(0);
            }
            if let Some(v) = directive.strip_prefix("max-age=") {
                age = v.trim_matches('"').parse::<u64>().ok().or(Some(0));
            }
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_str(v).expect("header"),
            );
        }
        h
    }

    #[test]
    fn caching_headers() {
        assert_eq!(max_age(&headers(&[])), None);
        assert_eq!(max_age(&headers(&["public, max-age=600"])), Some(600));
        assert_eq!(max_age(&headers(&["max-age=600", "no-cache"])), Some(0));
        assert_eq!(max_age(&headers(&["no-store"])), Some(0));
        assert_eq!(max_age(&headers(&["max-age=abc"])), Some(0));
        assert_eq!(max_age(&headers(&["Max-Age=\"90\""])), Some(90));
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/client-metadata+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in ["", "text/html", "text/json", "application/jsonx", "json"] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    fn fetcher(allow_loopback: bool) -> Fetcher {
        Fetcher::new(Limits::default(), allow_loopback, Vec::new())
    }

    #[tokio::test]
    async fn internal_addresses_are_refused_before_any_connection() {
        let f = fetcher(false);
        for raw in [
            "https://127.0.0.1:1/c.json",
            "https://[::1]:1/c.json",
            "https://10.0.0.1/c.json",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/latest",
            "https://0x7f000001/c.json",
            "https://localhost:1/c.json",
        ] {
            let url = Url::parse(raw).expect("url");
            match f.fetch(&url).await {
                Err(FetchError::Forbidden { .. }) => {}
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    /// A DNS server under an attacker's control: each lookup gives the next answer.
    struct Hostile {
        answers: std::sync::Mutex<Vec<Vec<SocketAddr>>>,
        lookups: std::sync::atomic::AtomicUsize,
    }

    impl Hostile {
        fn new(answers: Vec<Vec<&str>>) -> Arc<Self> {
            Arc::new(Self {
                answers: std::sync::Mutex::new(
                    answers
                        .into_iter()
                        .rev()
                        .map(|a| a.iter().map(|s| s.parse().expect("addr")).collect())
                        .collect(),
                ),
                lookups: std::sync::atomic::AtomicUsize::new(0),
            })
        }
    }

    impl Resolve for Hostile {
        fn resolve<'a>(
            &'a self,
            _host: &'a str,
            _port: u16,
        ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
            self.lookups
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next = self
                .answers
                .lock()
                .map(|mut a| a.pop().unwrap_or_default())
                .unwrap_or_default();
            Box::pin(async move { Ok(next) })
        }
    }

    #[tokio::test]
    async fn a_name_with_any_internal_address_is_refused_whatever_else_it_resolves_to() {
        let dns = Hostile::new(vec![vec!["93.184.216.34:443", "10.0.0.7:443"]]);
        let f = fetcher(false).with_resolver(dns.clone());
        let url = Url::parse("https://rebind.example/c.json").expect("url");
        match f.fetch(&url).await {
            Err(FetchError::Forbidden { ip, why }) => {
                assert_eq!(ip, "10.0.0.7".parse::<IpAddr>().expect("ip"));
                assert_eq!(why, Refusal::Private);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_connection_goes_to_the_checked_address_after_a_single_lookup() {
        // First answer: a (development-allowed) loopback listener; any later answer would be
        // the cloud metadata service. The fetch must never ask twice.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let checked = listener.local_addr().expect("addr").to_string();
        let accepted = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
        let dns = Hostile::new(vec![vec![&checked], vec!["169.254.169.254:443"]]);
        let f = fetcher(true).with_resolver(dns.clone());
        let url = Url::parse("https://rebind.example/c.json").expect("url");
        // The listener speaks no TLS: the fetch fails after connecting, which is all we need.
        assert!(f.fetch(&url).await.is_err());
        let peer = tokio::time::timeout(Duration::from_secs(5), accepted)
            .await
            .expect("a connection arrived")
            .expect("join");
        assert!(peer.is_ok(), "connected to the checked address");
        assert_eq!(dns.lookups.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn loopback_can_be_allowed_for_development_but_nothing_else() {
        let f = fetcher(true);
        // Allowed to connect: nothing listens on port 1, so the failure is the connection's.
        let url = Url::parse("https://127.0.0.1:1/c.json").expect("url");
        assert!(matches!(f.fetch(&url).await, Err(FetchError::Connect(_))));
        let url = Url::parse("https://10.0.0.1/c.json").expect("url");
        assert!(matches!(
            f.fetch(&url).await,
            Err(FetchError::Forbidden { .. })
        ));
    }
}
