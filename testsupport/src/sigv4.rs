//! SigV4 signing of raw requests exactly as the AWS SDK signs them (aws-sigv4, the SDK's own signer), for
//! tests that send bytes the SDK would never send.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_smithy_runtime_api::client::identity::Identity;

/// Who signs, where: the static credentials and region of one emulator (or deliberately wrong ones), or
/// session credentials (with their token); for `ivschat` unless another service is named.
#[derive(Debug, Clone)]
pub struct Signer {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub service: String,
    pub session_token: Option<String>,
}

impl Signer {
    pub fn new(access_key_id: &str, secret_access_key: &str, region: &str) -> Signer {
        Signer {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            region: region.to_owned(),
            service: "ivschat".to_owned(),
            session_token: None,
        }
    }

    /// The same signer for another service's signing name (`sts`).
    pub fn for_service(mut self, service: &str) -> Signer {
        self.service = service.to_owned();
        self
    }

    /// The same signer with a session token (sent as `x-amz-security-token`, and signed).
    pub fn with_session_token(mut self, token: &str) -> Signer {
        self.session_token = Some(token.to_owned());
        self
    }

    /// The headers the SDK's signer adds for the service now (`x-amz-date`, `authorization`,
    /// `x-amz-content-sha256` as its settings say, `x-amz-security-token` with a session token), or why it
    /// cannot sign this request.
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, String> {
        let identity: Identity = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "ivschat-testsupport",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| format!("signing params: {err}"))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|err| format!("signable request: {err}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|err| format!("signing: {err}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }
}
