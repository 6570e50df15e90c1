//! `docker search`: Docker Hub's search API, or for any other registry its
//! v1 search API where it has one and else its `/v2/_catalog` (every page,
//! matched by substring), which is all a plain registry can tell.

use super::RegistryError;
use super::auth::DockerConfig;
use super::client::{choose_protocol, http_client, root_cause};
use super::limits::{Limited, MAX_MANIFEST_BYTES, Timeouts, read_limited};
use super::login::challenge_params;
use super::tls::RegistryOptions;
use crate::reference::DEFAULT_DOMAIN;
use oci_client::secrets::RegistryAuth;

/// Docker Hub's search service.
const HUB_INDEX: &str = "index.docker.io";
/// Catalog pages read at most: a registry whose `Link`s never end stops
/// here rather than keep us forever.
const MAX_PAGES: usize = 1000;
const PAGE_SIZE: usize = 100;

/// One repository found, in Docker's field names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Found {
    #[serde(rename = "Name", alias = "name")]
    pub name: String,
    #[serde(rename = "Description", alias = "description", default)]
    pub description: String,
    #[serde(rename = "StarCount", alias = "star_count", default)]
    pub star_count: u64,
    #[serde(rename = "IsOfficial", alias = "is_official", default)]
    pub is_official: bool,
    #[serde(rename = "IsAutomated", alias = "is_automated", default)]
    pub is_automated: bool,
}

#[derive(serde::Deserialize)]
struct SearchReply {
    #[serde(default)]
    results: Vec<Found>,
}

#[derive(serde::Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Vec<String>,
}

/// What `img-search TERM` asks: a term, and the registry it names (a
/// `host[:port]/` prefix, Docker's rule) or Docker Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub registry: String,
    pub term: String,
}

impl Query {
    pub fn parse(typed: &str, registry: Option<&str>) -> Query {
        if let Some(registry) = registry {
            return Query {
                registry: registry.to_string(),
                term: typed.to_string(),
            };
        }
        match typed.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                Query {
                    registry: first.to_string(),
                    term: rest.to_string(),
                }
            }
            _ => Query {
                registry: DEFAULT_DOMAIN.to_string(),
                term: typed.to_string(),
            },
        }
    }
}

/// Up to `limit` repositories matching `query`.
pub fn search(
    query: &Query,
    limit: usize,
    options: &RegistryOptions,
) -> Result<Vec<Found>, RegistryError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Unreachable {
            registry: query.registry.clone(),
            reason: e.to_string(),
        })?;
    runtime.block_on(search_async(query, limit, options))
}

async fn search_async(
    query: &Query,
    limit: usize,
    options: &RegistryOptions,
) -> Result<Vec<Found>, RegistryError> {
    let hub = query.registry == DEFAULT_DOMAIN;
    let host = if hub {
        HUB_INDEX
    } else {
        query.registry.as_str()
    };
    let transport = options.transport(host)?;
    let timeouts = Timeouts::resolve(options.timeout)?;
    let http = http_client(host, &transport, timeouts)?;
    let protocol = choose_protocol(host, &transport, &http, timeouts).await?;
    let https = !matches!(protocol, oci_client::client::ClientProtocol::Http);
    let base = format!("{}://{host}", if https { "https" } else { "http" });
    let config = DockerConfig::load(options.docker_config.as_deref())?;
    let client = Client {
        http,
        host: host.to_string(),
        base,
        credentials: config.credentials(&query.registry)?,
    };
    // The v1 search API (Docker Hub's, and some registries'); a registry
    // without it answers 404 and its catalog is read instead.
    let search_url = format!("{}/v1/search", client.base);
    let n = limit.to_string();
    let response = client
        .get(&search_url, &[("q", &query.term), ("n", &n)], None)
        .await?;
    if response.status().is_success() {
        let body = client.body(response, "the search").await?;
        let reply: SearchReply = serde_json::from_slice(&body)
            .map_err(|e| failed(host, "the search", &e.to_string()))?;
        let mut found = reply.results;
        found.truncate(limit);
        return Ok(found);
    }
    if hub || response.status() != reqwest::StatusCode::NOT_FOUND {
        return Err(failed(
            host,
            "the search",
            &format!("answered {}", response.status()),
        ));
    }
    client.catalog(&query.term, limit).await
}

struct Client {
    http: reqwest::Client,
    host: String,
    base: String,
    credentials: RegistryAuth,
}

impl Client {
    /// A GET with our credentials: basic ones as they are, and for a token
    /// challenge a token for `scope` from its realm.
    async fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        scope: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut request = self.http.get(url).query(query);
        if let RegistryAuth::Basic(user, password) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(&self.host, &e))?;
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (Some(challenge), Some(scope)) = (challenge, scope) else {
            return Ok(response);
        };
        let Some(params) = challenge
            .strip_prefix("Bearer ")
            .or_else(|| challenge.strip_prefix("bearer "))
            .map(challenge_params)
        else {
            return Ok(response);
        };
        let Some(realm) = params.get("realm") else {
            return Ok(response);
        };
        let mut token_query = vec![("scope", scope.to_string())];
        if let Some(service) = params.get("service") {
            token_query.push(("service", service.clone()));
        }
        let mut token_request = self.http.get(realm).query(&token_query);
        if let RegistryAuth::Basic(user, password) = &self.credentials {
            token_request = token_request.basic_auth(user, Some(password));
        }
        let token: serde_json::Value = token_request
            .send()
            .await
            .map_err(|e| unreachable(&self.host, &e))?
            .json()
            .await
            .map_err(|e| unreachable(&self.host, &e))?;
        let token = token["token"]
            .as_str()
            .or(token["access_token"].as_str())
            .unwrap_or_default()
            .to_string();
        self.http
            .get(url)
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| unreachable(&self.host, &e))
    }

    async fn body(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> Result<bytes::Bytes, RegistryError> {
        match read_limited(response, MAX_MANIFEST_BYTES).await {
            Ok(Limited::Within(body)) => Ok(body),
            Ok(Limited::TooLarge) => Err(failed(&self.host, what, "the answer is too large")),
            Err(e) => Err(unreachable(&self.host, &e)),
        }
    }

    /// Every page of `/v2/_catalog`, following `Link: <…>; rel="next"`,
    /// keeping names that contain `term`.
    async fn catalog(&self, term: &str, limit: usize) -> Result<Vec<Found>, RegistryError> {
        let mut found = Vec::new();
        let page_size = PAGE_SIZE.to_string();
        let mut next = Some(format!("{}/v2/_catalog?n={page_size}", self.base));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(failed(&self.host, "its catalog", "more than 1000 pages"));
            }
            let response = self.get(&url, &[], Some("registry:catalog:*")).await?;
            let status = response.status();
            if !status.is_success() {
                let why = match status {
                    reqwest::StatusCode::NOT_FOUND => "it has no catalog (404)".to_string(),
                    reqwest::StatusCode::UNAUTHORIZED => {
                        "401 Unauthorized: log in with img-login".to_string()
                    }
                    other => format!("answered {other}"),
                };
                return Err(failed(&self.host, "its catalog", &why));
            }
            next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|link| match link.starts_with("http") {
                    true => link,
                    false => format!("{}{link}", self.base),
                });
            let body = self.body(response, "its catalog").await?;
            let page: CatalogPage = serde_json::from_slice(&body)
                .map_err(|e| failed(&self.host, "its catalog", &e.to_string()))?;
            for name in page.repositories {
                if name.contains(term) && found.len() < limit {
                    found.push(Found {
                        name: format!("{}/{name}", self.host),
                        description: String::new(),
                        star_count: 0,
                        is_official: false,
                        is_automated: false,
                    });
                }
            }
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }
}

/// The target of `rel="next"` in a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

fn unreachable(host: &str, error: &reqwest::Error) -> RegistryError {
    RegistryError::Unreachable {
        registry: host.to_string(),
        reason: root_cause(error),
    }
}

fn failed(host: &str, what: &str, reason: &str) -> RegistryError {
    RegistryError::Failed {
        registry: host.to_string(),
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_prefix_names_where_to_search() {
        assert_eq!(
            Query::parse("127.0.0.1:5000/ub", None),
            Query {
                registry: "127.0.0.1:5000".into(),
                term: "ub".into()
            }
        );
        assert_eq!(Query::parse("library/ub", None).registry, "docker.io");
        assert_eq!(Query::parse("ubuntu", None).term, "ubuntu");
        assert_eq!(Query::parse("ub", Some("h:1")).registry, "h:1");
    }

    #[test]
    fn the_next_page_is_found_in_a_link_header() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
