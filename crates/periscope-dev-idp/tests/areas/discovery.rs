//! Discovery and the JWKS, as a relying party reads them.

use crate::support::{Rp, idp};

#[tokio::test]
async fn discovery_names_every_endpoint_and_offers_only_s256() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let m = &rp.metadata;
    let url = |path: &str| format!("{}{path}", idp.issuer_url());

    assert_eq!(m.issuer().as_str(), idp.issuer_url());
    assert_eq!(m.authorization_endpoint().as_str(), url("/authorize"));
    assert_eq!(
        m.token_endpoint().map(|u| u.to_string()),
        Some(url("/token"))
    );
    assert_eq!(
        m.userinfo_endpoint().map(|u| u.to_string()),
        Some(url("/userinfo"))
    );
    assert_eq!(m.jwks_uri().as_str(), url("/jwks"));
    assert_eq!(
        m.additional_metadata()
            .device_authorization_endpoint
            .as_str(),
        url("/device_authorization")
    );
    assert_eq!(
        m.additional_metadata().code_challenge_methods_supported,
        Some(vec!["S256".to_string()])
    );
    let scopes: Vec<String> = m
        .scopes_supported()
        .expect("scopes advertised")
        .iter()
        .map(|s| s.to_string())
        .collect();
    for scope in ["openid", "email", "profile", "groups"] {
        assert!(scopes.iter().any(|s| s == scope), "{scope} in {scopes:?}");
    }
    let claims: Vec<String> = m
        .claims_supported()
        .expect("claims advertised")
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(claims.iter().any(|c| c == "groups"));
    assert!(
        claims.iter().any(|c| c == "department"),
        "extra claims listed"
    );
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_under_its_kid() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let kids: Vec<String> = rp
        .metadata
        .jwks()
        .keys()
        .iter()
        .filter_map(|k| openidconnect::JsonWebKey::key_id(k).map(|id| id.to_string()))
        .collect();
    assert_eq!(kids, [idp.current_kid()]);
    assert_eq!(idp.published_kids(), kids);
}
