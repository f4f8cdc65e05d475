//! The S3-like upload target of presigned URLs.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::{Incoming, Reply, query_value, reply};
use crate::state::{Inner, Shared, UploadedObject};

/// `PUT {s3}/{import_id}/{upload_key}?…X-Amz-Signature=…`: stores the body when the URL is the
/// latest presigned one for that key, arrives before it expires (else S3's `403 AccessDenied`
/// "Request has expired") and the body matches `Content-Length`.
pub(super) fn upload(_: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    if let Some(framing) = &request.upload_framing {
        return framing.clone();
    }
    let (import_id, key) = (request.segment(1), request.segment(2));
    if request.authorization.is_some() {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"Code": "InvalidArgument", "Message": "Only one auth mechanism allowed"}),
        );
    }
    let signature = query_value(request.query, "X-Amz-Signature");
    let Some(presigned) = inner
        .presigned
        .get(&(import_id.clone(), key.clone()))
        .filter(|p| signature.as_deref() == Some(p.signature.as_str()))
    else {
        return reply(
            StatusCode::FORBIDDEN,
            json!({"Code": "SignatureDoesNotMatch", "Message": "bad or stale presigned URL"}),
        );
    };
    if request.arrived > presigned.expires {
        return reply(
            StatusCode::FORBIDDEN,
            json!({"Code": "AccessDenied", "Message": "Request has expired"}),
        );
    }
    let declared = request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared != Some(request.body.len()) {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"Code": "IncompleteBody", "Message": "body length differs from Content-Length"}),
        );
    }
    inner.record.uploads.push(UploadedObject {
        import_id,
        upload_key: key,
        body: request.body.clone(),
    });
    reply(StatusCode::OK, Value::Null)
}

/// S3's answers to bad framing: chunked -> 501, no length -> 411.
pub(super) fn upload_framing_error(headers: &HeaderMap) -> Option<Reply> {
    let chunked = headers.get_all(header::TRANSFER_ENCODING).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
    });
    if chunked {
        return Some(reply(
            StatusCode::NOT_IMPLEMENTED,
            json!({"Code": "NotImplemented", "Message": "A header you provided implies functionality that is not implemented (Transfer-Encoding)"}),
        ));
    }
    if !headers.contains_key(header::CONTENT_LENGTH) {
        return Some(reply(
            StatusCode::LENGTH_REQUIRED,
            json!({"Code": "MissingContentLength", "Message": "You must provide the Content-Length HTTP header."}),
        ));
    }
    None
}

/// Content type and body of an answer: empty on success, S3's XML error document otherwise
/// (from the reply's `Code` and `Message`).
pub(super) fn render(status: StatusCode, response: &Value) -> (&'static str, Body) {
    if status.is_success() {
        return ("application/xml", Body::empty());
    }
    let field = |key: &str| response[key].as_str().unwrap_or("").to_owned();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>FAKE</RequestId></Error>",
        field("Code"),
        field("Message")
    );
    ("application/xml", Body::from(xml))
}
