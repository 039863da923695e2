//! `RemoteUrl`: where an upstream proxy fetches from.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("is not a valid URL ({0})")]
    Malformed(String),
    /// A scheme other than http or https.
    #[error("must use http or https, not {0:?}")]
    Scheme(String),
    /// No host.
    #[error("must name a host")]
    NoHost,
    /// User name or password inside the URL, where they would be stored in the clear.
    #[error("must not contain credentials; give them as the proxy's username and password")]
    Credentials,
    /// A `#fragment`, which no server sees.
    #[error("must not contain a fragment ('#...')")]
    Fragment,
}

/// An absolute http or https URL with a host and no credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RemoteUrl(String);

impl RemoteUrl {
    /// Checks and normalises `value`.
    pub fn parse(value: &str) -> Result<Self, UrlError> {
        let url = url::Url::parse(value.trim()).map_err(|e| UrlError::Malformed(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::Scheme(url.scheme().to_owned()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        Ok(Self(url.to_string()))
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RemoteUrl {
    type Error = UrlError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RemoteUrl> for String {
    fn from(url: RemoteUrl) -> Self {
        url.0
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_https_urls_with_a_host_are_accepted() {
        assert_eq!(
            RemoteUrl::parse("https://registry.example.com")
                .unwrap()
                .as_str(),
            "https://registry.example.com/"
        );
        assert!(RemoteUrl::parse("http://127.0.0.1:5000/charts").is_ok());
    }

    #[test]
    fn other_urls_are_refused_with_the_reason() {
        assert!(matches!(
            RemoteUrl::parse("registry.example.com"),
            Err(UrlError::Malformed(_))
        ));
        assert_eq!(
            RemoteUrl::parse("ftp://example.com"),
            Err(UrlError::Scheme("ftp".into()))
        );
        assert!(RemoteUrl::parse("file:///etc/passwd").is_err());
        assert_eq!(
            RemoteUrl::parse("https://u:p@example.com"),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            RemoteUrl::parse("https://example.com/#x"),
            Err(UrlError::Fragment)
        );
    }
}
