//! The local call-control API a softphone or CTI connector drives during `live`:
//! `POST /v1/call/start`, `/v1/call/end`, `/v1/hold/start`, `/v1/hold/end`. Anyone who can
//! reach it can end or hold the agent's call, so it listens on a loopback address unless a
//! token is configured, and then every request must carry `Authorization: Bearer TOKEN`.
//! Repeated starts and holds are idempotent (the pipeline ignores a start during a call and a
//! hold start during a hold). The routing and the checks are pure functions, tested without a
//! network.

use std::net::SocketAddr;

use crossbeam_channel::Sender;

use crate::live::Control;

/// Whether `addr` may serve the API: loopback always; any other address only with a token.
pub fn check_bind(addr: &SocketAddr, token: Option<&str>) -> anyhow::Result<()> {
    match token {
        _ if addr.ip().is_loopback() => Ok(()),
        Some(t) if t.len() >= 16 => Ok(()),
        Some(_) => anyhow::bail!("--api {addr}: the API token must be at least 16 characters"),
        None => anyhow::bail!(
            "--api {addr}: not a loopback address; anyone on the network could end or hold the agent's call. Use 127.0.0.1:PORT, or set a token with --api-token-file FILE (or CALLCOACH_API_TOKEN) that every request must send as `Authorization: Bearer TOKEN`"
        ),
    }
}

/// Whether a request's `Authorization` header carries the token (constant time over the
/// token's length). Without a configured token every request passes (loopback only).
pub fn authorized(token: Option<&str>, authorization: Option<&str>) -> bool {
    let Some(want) = token else {
        return true;
    };
    let Some(got) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (want.as_bytes(), got.trim().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request comes from a web page (a browser sends `Origin` on every cross-origin
/// POST, and `Sec-Fetch-Site`): any page the agent opens could otherwise end their call with a
/// simple `fetch` to 127.0.0.1. The API's clients (softphones, CTI connectors) send neither.
pub fn from_browser(origin: Option<&str>, sec_fetch_site: Option<&str>) -> bool {
    origin.is_some() || sec_fetch_site.is_some_and(|s| s != "none")
}

/// What a request asks for: (status, JSON body, control to apply).
pub fn route(method: &str, path: &str) -> (u16, String, Option<Control>) {
    let control = match path {
        "/v1/call/start" => Some(Control::CallStart),
        "/v1/call/end" => Some(Control::CallEnd),
        "/v1/hold/start" => Some(Control::HoldStart),
        "/v1/hold/end" => Some(Control::HoldEnd),
        "/v1/help" => Some(Control::HelpRequest),
        _ => return (404, r#"{"error":"unknown path; use /v1/call/start, /v1/call/end, /v1/hold/start, /v1/hold/end"}"#.into(), None),
    };
    if method != "POST" {
        return (405, r#"{"error":"use POST"}"#.into(), None);
    }
    match control {
        None => (404, r#"{"error":"unknown path"}"#.into(), None),
        Some(c) => (200, format!(r#"{{"ok":true,"applied":"{c:?}"}}"#), Some(c)),
    }
}

/// Serves the API on its own thread until the process ends; returns the bound address.
/// Refuses a non-loopback address without a token (see [`check_bind`]).
pub fn serve(
    addr: &str,
    token: Option<String>,
    control: Sender<Control>,
) -> anyhow::Result<SocketAddr> {
    let wanted: SocketAddr = addr
        .parse()
        .map_err(|e| anyhow::anyhow!("--api {addr}: not an IP:PORT address ({e})"))?;
    check_bind(&wanted, token.as_deref())?;
    let server = tiny_http::Server::http(wanted)
        .map_err(|e| anyhow::anyhow!("{addr}: cannot listen for the call-control API: {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow::anyhow!("{addr}: not an IP address"))?;
    std::thread::Builder::new()
        .name("callcoach-api".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let auth = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_string());
                let header = |name: &'static str| {
                    request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv(name))
                        .map(|h| h.value.as_str().to_string())
                };
                let browser = from_browser(
                    header("Origin").as_deref(),
                    header("Sec-Fetch-Site").as_deref(),
                );
                let (status, body, c) = if browser {
                    (
                        403,
                        r#"{"error":"requests from web pages are refused"}"#.into(),
                        None,
                    )
                } else if authorized(token.as_deref(), auth.as_deref()) {
                    route(request.method().as_str(), request.url())
                } else {
                    (
                        401,
                        r#"{"error":"missing or wrong token: send Authorization: Bearer TOKEN"}"#
                            .into(),
                        None,
                    )
                };
                if let Some(c) = c {
                    let _ = control.send(c);
                }
                let header =
                    tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
                        .ok();
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                if let Some(h) = header {
                    response = response.with_header(h);
                }
                let _ = request.respond(response);
            }
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_without_a_network() {
        assert_eq!(route("POST", "/v1/hold/start").2, Some(Control::HoldStart));
        assert_eq!(route("POST", "/v1/hold/end").2, Some(Control::HoldEnd));
        assert_eq!(route("POST", "/v1/call/end").2, Some(Control::CallEnd));
        assert_eq!(route("POST", "/v1/call/start").2, Some(Control::CallStart));
        assert_eq!(route("GET", "/v1/hold/start").0, 405);
        assert_eq!(route("POST", "/v1/coffee").0, 404);
    }

    #[test]
    fn only_loopback_without_a_token_and_every_request_checked_with_one() {
        let any: SocketAddr = "0.0.0.0:7788".parse().unwrap();
        let lan: SocketAddr = "192.168.1.20:7788".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:7788".parse().unwrap();
        let lo6: SocketAddr = "[::1]:7788".parse().unwrap();
        assert!(check_bind(&lo, None).is_ok() && check_bind(&lo6, None).is_ok());
        let e = check_bind(&any, None).unwrap_err().to_string();
        assert!(
            e.contains("not a loopback address") && e.contains("--api-token-file"),
            "{e}"
        );
        assert!(check_bind(&lan, None).is_err());
        assert!(
            check_bind(&lan, Some("short")).is_err(),
            "a guessable token is refused"
        );
        let token = "0123456789abcdef-long";
        assert!(check_bind(&any, Some(token)).is_ok());
        assert!(authorized(None, None), "loopback without a token");
        assert!(authorized(
            Some(token),
            Some("Bearer 0123456789abcdef-long")
        ));
        assert!(!authorized(Some(token), None));
        assert!(!authorized(
            Some(token),
            Some("Bearer 0123456789abcdef-lonG")
        ));
        assert!(!authorized(Some(token), Some("Bearer 0123456789abcdef")));
        assert!(!authorized(
            Some(token),
            Some("Basic 0123456789abcdef-long")
        ));
    }
}
