//! The HTTP/1.x request line of the health listener (RFC 9112 §3), parsed
//! once by a pure function into a `Route`. Nothing else of a request is
//! parsed: headers and bodies are discarded unread by `ops::health`.

/// What a request line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health { head: bool },
    Live { head: bool },
    Metrics { head: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Parses an HTTP/1.x request line (RFC 9112 §3: method SP target SP
/// version), without its line end. Only GET and HEAD of three exact paths
/// are served; a query string is ignored (some checkers add one).
pub fn parse_request_line(line: &[u8]) -> Route {
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Route::BadRequest;
    }
    if !target.starts_with('/') {
        return Route::BadRequest;
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            return Route::MethodNotAllowed
        }
        _ => return Route::BadRequest,
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    match path {
        "/healthz" => Route::Health { head },
        "/livez" => Route::Live { head },
        "/metrics" => Route::Metrics { head },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_healthz() {
        assert_eq!(
            parse_request_line(b"GET /healthz HTTP/1.1"),
            Route::Health { head: false }
        );
    }

    #[test]
    fn head_healthz() {
        assert_eq!(
            parse_request_line(b"HEAD /healthz HTTP/1.0"),
            Route::Health { head: true }
        );
    }

    #[test]
    fn get_metrics() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1"),
            Route::Metrics { head: false }
        );
    }

    #[test]
    fn query_string_ignored() {
        assert_eq!(
            parse_request_line(b"GET /healthz?from=nlb HTTP/1.1"),
            Route::Health { head: false }
        );
    }

    #[test]
    fn unknown_path() {
        assert_eq!(parse_request_line(b"GET / HTTP/1.1"), Route::NotFound);
    }

    #[test]
    fn path_prefix_is_not_the_path() {
        assert_eq!(
            parse_request_line(b"GET /healthz/x HTTP/1.1"),
            Route::NotFound
        );
    }

    #[test]
    fn post_not_allowed() {
        assert_eq!(
            parse_request_line(b"POST /healthz HTTP/1.1"),
            Route::MethodNotAllowed
        );
    }

    #[test]
    fn lowercase_method_is_bad() {
        assert_eq!(
            parse_request_line(b"get /healthz HTTP/1.1"),
            Route::BadRequest
        );
    }

    #[test]
    fn http_0_9_is_bad() {
        assert_eq!(parse_request_line(b"GET /healthz"), Route::BadRequest);
    }

    #[test]
    fn http_2_preface_is_bad() {
        assert_eq!(parse_request_line(b"PRI * HTTP/2.0"), Route::BadRequest);
    }

    #[test]
    fn absolute_form_target_is_bad() {
        assert_eq!(
            parse_request_line(b"GET http://x/healthz HTTP/1.1"),
            Route::BadRequest
        );
    }

    #[test]
    fn double_space_is_bad() {
        assert_eq!(
            parse_request_line(b"GET  /healthz HTTP/1.1"),
            Route::BadRequest
        );
    }

    #[test]
    fn trailing_field_is_bad() {
        assert_eq!(
            parse_request_line(b"GET /healthz HTTP/1.1 x"),
            Route::BadRequest
        );
    }

    #[test]
    fn non_utf8_is_bad() {
        assert_eq!(parse_request_line(b"GET /\xff HTTP/1.1"), Route::BadRequest);
    }

    #[test]
    fn empty_line_is_bad() {
        assert_eq!(parse_request_line(b""), Route::BadRequest);
    }
}
