//! A loopback HTTP proxy in front of a real registry that passes every
//! request through unchanged and writes down each one (method, path, the
//! `digest` of an upload's closing PUT) and the TCP connection it came on:
//! what a push costs in round trips and connections, as the registry sees it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use harness_testkit::pass_through::{ProxyBody, bad_gateway, send_on, serve};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One request as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Which accepted TCP connection it came on (0, 1, ...).
    pub connection: usize,
    /// `METHOD /path`, an upload's id as `<upload>`, and `?digest=...`
    /// when the query has one (the closing PUT of an upload).
    pub line: String,
}

/// A running recorder; stopped when dropped.
pub struct RequestRecorder {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

struct Shared {
    upstream: String,
    own: String,
    client: reqwest::Client,
    log: Mutex<Vec<Recorded>>,
    connections: Arc<AtomicUsize>,
}

impl RequestRecorder {
    /// Listen on a free loopback port and pass everything to `upstream`
    /// (`host:port`, plain HTTP).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            own: address.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(std::io::Error::other)?,
            log: Mutex::new(Vec::new()),
            connections: accepted.clone(),
        });
        let stop = CancellationToken::new();
        let answering = shared.clone();
        serve(
            listener,
            stop.clone(),
            accepted.clone(),
            move |connection, request| {
                let shared = answering.clone();
                async move { shared.answer(connection, request).await }
            },
        );
        Ok(RequestRecorder {
            address,
            shared,
            stop,
        })
    }

    /// `127.0.0.1:<port>`, to use as a registry address (plain HTTP).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The request lines so far, with `names` (digest, name) put in for
    /// the digests, and forgets them: the next call gives what came after.
    pub fn take_lines(&self, names: &[(&str, &str)]) -> Vec<String> {
        let taken = std::mem::take(&mut *self.shared.log.lock().unwrap());
        taken
            .into_iter()
            .map(|r| {
                names
                    .iter()
                    .fold(r.line, |line, (digest, name)| line.replace(digest, name))
            })
            .collect()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RequestRecorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `METHOD /path` with an upload's id as `<upload>` and the query's digest.
fn line_of(method: &hyper::Method, path: &str, query: Option<&str>) -> String {
    let path = match path.split_once("/blobs/uploads/") {
        Some((before, id)) if !id.is_empty() => format!("{before}/blobs/uploads/<upload>"),
        _ => path.to_string(),
    };
    let digest = query.and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("digest="))
            .map(|d| d.replace("%3A", ":").replace("%3a", ":"))
    });
    match digest {
        Some(digest) => format!("{method} {path}?digest={digest}"),
        None => format!("{method} {path}"),
    }
}

impl Shared {
    async fn answer(&self, connection: usize, request: Request<Incoming>) -> Response<ProxyBody> {
        let line = line_of(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        self.log.lock().unwrap().push(Recorded { connection, line });
        match send_on(&self.client, &self.upstream, &self.own, request)
            .await
            .and_then(|answer| answer.into_response())
        {
            Ok(response) => response,
            Err(problem) => bad_gateway("request recorder", &problem),
        }
    }
}
