//! The closed set of things the engine knows how to find, with their stable names.
//!
//! Names are part of the public contract: they appear in configuration
//! (`operators = { email = "partial" }`), in shields (`unmask:email`), in
//! placeholders (`[email]`) and in audit counts. Never rename one.

use std::fmt;
use std::str::FromStr;

/// How sensitive an entity is, which decides its default treatment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Credentials and keys: masked always; only a break-glass grant lifts them.
    Secret,
    /// Personal and financial data: masked by default; a grant may lift it.
    Pii,
    /// Detectors with more false positives: off unless enabled in config.
    Optional,
}

impl Tier {
    /// The lowercase name used in config and reports.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Secret => "secret",
            Tier::Pii => "pii",
            Tier::Optional => "optional",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! entities {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $tier:ident; )*) => {
        /// A class of sensitive value that the engine detects and masks.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Entity {
            $( $(#[$doc])* $variant, )*
        }

        impl Entity {
            /// Every entity, in a stable order (secrets, then PII, then optional).
            pub const ALL: &'static [Entity] = &[ $( Entity::$variant, )* ];

            /// The stable lowercase name (`email`, `github_token`, ...).
            pub fn name(self) -> &'static str {
                match self { $( Entity::$variant => $name, )* }
            }

            /// The tier that decides the entity's default treatment.
            pub fn tier(self) -> Tier {
                match self { $( Entity::$variant => Tier::$tier, )* }
            }
        }

        impl FromStr for Entity {
            type Err = UnknownEntity;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $name => Ok(Entity::$variant), )*
                    _ => Err(UnknownEntity(s.to_string())),
                }
            }
        }
    };
}

entities! {
    /// PEM private key blocks (`-----BEGIN ... PRIVATE KEY-----`).
    PrivateKey => "private_key", Secret;
    /// AWS access key ids (`AKIA...`, `ASIA...`).
    AwsAccessKey => "aws_access_key", Secret;
    /// GitHub tokens (`ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_`, `github_pat_`).
    GithubToken => "github_token", Secret;
    /// GitLab personal access tokens (`glpat-`).
    GitlabToken => "gitlab_token", Secret;
    /// Slack tokens (`xoxb-`, `xoxp-`, ...).
    SlackToken => "slack_token", Secret;
    /// Slack incoming webhook URLs.
    SlackWebhook => "slack_webhook", Secret;
    /// Stripe live secret and restricted keys (`sk_live_`, `rk_live_`).
    StripeKey => "stripe_key", Secret;
    /// Google API keys (`AIza...`).
    GoogleApiKey => "google_api_key", Secret;
    /// OpenAI API keys (`sk-...`, `sk-proj-...`).
    OpenaiKey => "openai_key", Secret;
    /// Anthropic API keys (`sk-ant-...`).
    AnthropicKey => "anthropic_key", Secret;
    /// npm access tokens (`npm_...`).
    NpmToken => "npm_token", Secret;
    /// PyPI upload tokens (`pypi-...`).
    PypiToken => "pypi_token", Secret;
    /// SendGrid API keys (`SG.xxx.yyy`).
    SendgridKey => "sendgrid_key", Secret;
    /// HashiCorp Vault service tokens (`hvs.`).
    VaultToken => "vault_token", Secret;
    /// JSON Web Tokens (three base64url segments, header starting `eyJ`).
    Jwt => "jwt", Secret;
    /// Credentials in `Authorization: Bearer|Basic ...` headers.
    AuthHeader => "auth_header", Secret;
    /// The `user:password` part of `scheme://user:password@host`.
    UrlCredentials => "url_credentials", Secret;
    /// The value of a key named like a secret (`password=...`, `"api_key": ...`).
    Secret => "secret", Secret;
    /// Payment card numbers (IIN prefix, length, Luhn).
    Card => "card", Pii;
    /// International bank account numbers (country length, mod-97).
    Iban => "iban", Pii;
    /// US social security numbers.
    Ssn => "ssn", Pii;
    /// Email addresses.
    Email => "email", Pii;
    /// Phone numbers (international and national formats).
    Phone => "phone", Pii;
    /// IPv4 and IPv6 addresses.
    Ip => "ip", Pii;
    /// Crypto wallet addresses (Base58Check, Bech32).
    CryptoWallet => "crypto_wallet", Pii;
    /// US ABA routing numbers (3-7-1 checksum).
    AbaRouting => "aba_routing", Pii;
    /// National identity and insurance numbers other than the US SSN: Canadian
    /// SIN, UK NINO, Indian Aadhaar, and columns named `national_id`. Found by
    /// name and by column-level discovery (a checksum per value proves little,
    /// a column of valid ones does); the text scanner has no detector for it.
    NationalId => "national_id", Pii;
    /// Personal tax identifiers: Australian TFN, Brazilian CPF, US TIN, and
    /// columns named `tax_id`. Found by name and by column-level discovery.
    TaxId => "tax_id", Pii;
    /// Passport numbers. Found by name only: their formats differ by country
    /// and carry no checksum that would tell them from other codes.
    Passport => "passport", Pii;
    /// Driver licence numbers. Found by name only, like passports.
    DriverLicense => "driver_license", Pii;
    /// Person names from a dictionary.
    PersonName => "person_name", Optional;
    /// Dates of birth.
    DateOfBirth => "date_of_birth", Optional;
    /// UUIDs.
    Uuid => "uuid", Optional;
    /// MAC addresses.
    MacAddress => "mac_address", Optional;
}

impl Entity {
    /// How many entities exist; sizes the per-entity arrays ([`crate::Counts`]).
    pub const COUNT: usize = Entity::ALL.len();

    /// A dense index in `0..Entity::COUNT`, so per-entity tables can be plain
    /// arrays instead of maps on the hot path.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this entity is a credential that only a break-glass grant may reveal.
    pub fn is_secret(self) -> bool {
        self.tier() == Tier::Secret
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Entity::ALL`]; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity `{0}` (known: {known})", known = known_names())]
pub struct UnknownEntity(pub String);

fn known_names() -> String {
    Entity::ALL
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &entity in Entity::ALL {
            assert!(seen.insert(entity.name()), "duplicate name {entity}");
            assert_eq!(entity.name().parse::<Entity>(), Ok(entity));
        }
    }

    #[test]
    fn index_is_the_position_in_all() {
        for (i, &entity) in Entity::ALL.iter().enumerate() {
            assert_eq!(entity.index(), i);
        }
        assert_eq!(Entity::COUNT, Entity::ALL.len());
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = "e-mail".parse::<Entity>().unwrap_err();
        assert!(err.to_string().contains("email"), "{err}");
    }
}
