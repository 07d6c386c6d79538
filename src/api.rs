//! The local call-control API a softphone or CTI connector drives during `live`:
//! `POST /v1/call/start`, `/v1/call/end`, `/v1/hold/start`, `/v1/hold/end`. Listens on the
//! address given (keep it on 127.0.0.1). The routing is a pure function, tested without a
//! network.

use std::net::SocketAddr;

use crossbeam_channel::Sender;

use crate::live::Control;

/// What a request asks for: (status, JSON body, control to apply).
pub fn route(method: &str, path: &str) -> (u16, String, Option<Control>) {
    let control = match path {
        "/v1/call/start" => Some(Control::CallStart),
        "/v1/call/end" => Some(Control::CallEnd),
        "/v1/hold/start" => Some(Control::HoldStart),
        "/v1/hold/end" => Some(Control::HoldEnd),
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
pub fn serve(addr: &str, control: Sender<Control>) -> anyhow::Result<SocketAddr> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("{addr}: cannot listen for the call-control API: {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow::anyhow!("{addr}: not an IP address"))?;
    std::thread::Builder::new()
        .name("callcoach-api".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let (status, body, c) = route(request.method().as_str(), request.url());
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
}
