//! Column and key classification: deciding from a *name* alone that a value is
//! sensitive, before looking at the value.
//!
//! The proxies mask a whole column named `customer_email` even when one of its
//! values would not look like an email, and the JSON walk masks the value of a
//! `"password"` key whatever its type.
//!
//! # Rules
//!
//! A name is split into words at `_ - . $ @`, spaces and camelCase boundaries,
//! and lowercased; the words are also joined into one normalised string
//! (`Customer-E_mail` gives `customer e mail` and `customeremail`).
//!
//! 1. **Metadata words veto.** When the *last* word says the column describes a
//!    value instead of holding it (`email_verified`, `card_count`,
//!    `phone_country_code`, `token_expires_at`, `password_changed_at`,
//!    `card_last4`, `token_type`, `email_domain`), the name is not sensitive.
//! 2. **Secrets first.** Distinctive stems anywhere in the joined name
//!    (`password`, `passwd`, `passphrase`, `privatekey`, `apikey`, `credential`,
//!    `clientsecret`...), the words `secret`, `token`, `pwd`, `pass`, `auth`,
//!    `authorization`, `cookie`, or `key` after a qualifier (`api_key`,
//!    `signing_key`) classify as [`Entity::Secret`]. Plurals such as
//!    `max_tokens` or `prompt_tokens` are counts, not secrets.
//! 3. **Identity numbers and documents** (national identifiers, tax
//!    identifiers, passports, driver licences, more date-of-birth spellings)
//!    follow the rules in [`identity`]: their terms may end in `id`
//!    (`national_id`, `tax_id`), and their short abbreviations (`sin`, `tin`,
//!    `dl`) count only next to a number word or a party word.
//! 4. **Personal data by stem**, e.g. `email`, `phone`/`mobile`, `ssn`, `iban`,
//!    `card_no`/`cc_number`/`pan`, `ip`/`client_ip`, `dob`/`birth_date`,
//!    `first_name`, `routing_number`, `wallet_address`, `mac_address`.
//!
//! A bare `name` or `key` is not classified: it is as often a product name or a
//! cache key as a person's name or a credential; content scanning still applies.

use crate::Entity;

mod identity;

/// The longest name we classify; longer ones are never column or key names.
const MAX_NAME: usize = 96;
/// The most words we look at.
const MAX_WORDS: usize = 12;

/// Last words that mean "this describes the value, it is not the value".
const METADATA_WORDS: &[&str] = &[
    "algorithm",
    "at",
    "brand",
    "changed",
    "cnt",
    "code",
    "confirmed",
    "count",
    "country",
    "created",
    "disabled",
    "domain",
    "enabled",
    "exists",
    "expiration",
    "expired",
    "expires",
    "expiry",
    "fingerprint",
    "flag",
    "format",
    "hint",
    "id",
    "ids",
    "kind",
    "last4",
    "len",
    "length",
    "mask",
    "masked",
    "on",
    "optin",
    "optout",
    "policy",
    "prefix",
    "present",
    "provider",
    "required",
    "rule",
    "rules",
    "scope",
    "scopes",
    "set",
    "size",
    "state",
    "status",
    "strength",
    "template",
    "total",
    "ttl",
    "type",
    "updated",
    "url",
    "uri",
    "used",
    "valid",
    "validated",
    "verified",
    "version",
];

/// Stems that make a name a secret wherever they appear in the joined name.
const SECRET_STEMS: &[&str] = &[
    "accesskey",
    "apikey",
    "apisecret",
    "clientsecret",
    "credential",
    "passphrase",
    "passwd",
    "password",
    "privatekey",
    "secretkey",
    "sessiontoken",
];

/// Whole words that make a name a secret.
const SECRET_WORDS: &[&str] = &[
    "auth",
    "authorization",
    "cookie",
    "creds",
    "pass",
    "pwd",
    "secret",
    "secrets",
    "token",
];

/// Qualifiers that turn a trailing `key` into a credential (`api_key`, not `sort_key`).
const KEY_QUALIFIERS: &[&str] = &[
    "access",
    "account",
    "api",
    "app",
    "auth",
    "client",
    "encryption",
    "gpg",
    "hmac",
    "license",
    "master",
    "pgp",
    "private",
    "secret",
    "service",
    "signing",
    "ssh",
    "webhook",
];

/// First words that make a trailing `name` a person's name.
const PERSON_QUALIFIERS: &[&str] = &[
    "cardholder",
    "contact",
    "customer",
    "family",
    "first",
    "full",
    "given",
    "holder",
    "last",
    "legal",
    "maiden",
    "middle",
    "patient",
    "sur",
];

/// A name split into lowercase words, without allocating.
struct Words {
    buf: [u8; MAX_NAME],
    len: usize,
    /// (start, end) of each word in `buf`.
    words: [(u8, u8); MAX_WORDS],
    count: usize,
}

impl Words {
    fn split(name: &str) -> Option<Words> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_NAME {
            return None;
        }
        let mut w = Words {
            buf: [0; MAX_NAME],
            len: 0,
            words: [(0, 0); MAX_WORDS],
            count: 0,
        };
        let mut word_start: Option<usize> = None;
        let mut prev: u8 = 0;
        for &b in bytes {
            let is_sep = matches!(b, b'_' | b'-' | b'.' | b'$' | b'@' | b' ' | b'/' | b':');
            if is_sep {
                if let Some(start) = word_start.take() {
                    w.push_word(start)?;
                }
                prev = b;
                continue;
            }
            if !b.is_ascii_alphanumeric() {
                return None;
            }
            // camelCase boundary: lower or digit followed by upper.
            if b.is_ascii_uppercase()
                && (prev.is_ascii_lowercase() || prev.is_ascii_digit())
                && let Some(start) = word_start.take()
            {
                w.push_word(start)?;
            }
            if word_start.is_none() {
                word_start = Some(w.len);
            }
            w.buf[w.len] = b.to_ascii_lowercase();
            w.len += 1;
            prev = b;
        }
        if let Some(start) = word_start {
            w.push_word(start)?;
        }
        (w.count > 0).then_some(w)
    }

    fn push_word(&mut self, start: usize) -> Option<()> {
        if self.count == MAX_WORDS {
            return None;
        }
        // Both fit in u8: MAX_NAME < 256.
        self.words[self.count] = (start as u8, self.len as u8);
        self.count += 1;
        Some(())
    }

    fn word(&self, i: usize) -> &[u8] {
        let (s, e) = self.words[i];
        &self.buf[usize::from(s)..usize::from(e)]
    }

    fn last(&self) -> &[u8] {
        self.word(self.count - 1)
    }

    fn joined(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn any_word(&self, set: &[&str]) -> bool {
        (0..self.count).any(|i| in_set(self.word(i), set))
    }
}

fn in_set(word: &[u8], set: &[&str]) -> bool {
    // Length and first byte first: most candidates differ there, and the
    // full comparison is a library call.
    set.iter().any(|s| {
        let s = s.as_bytes();
        s.len() == word.len() && s.first() == word.first() && s == word
    })
}

/// Substring test for short names: a plain window scan beats building a
/// `memmem` finder for every call.
fn contains(hay: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    let Some(&first) = needle.first() else {
        return true;
    };
    hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w[0] == first && w == needle)
}

/// Classifies a column or key name; `None` means "not sensitive by name".
///
/// See the module documentation for the rules. Examples:
///
/// ```
/// use periscope_redact::{classify_name, Entity};
/// assert_eq!(classify_name("customer_email"), Some(Entity::Email));
/// assert_eq!(classify_name("email_verified"), None);
/// assert_eq!(classify_name("api_token"), Some(Entity::Secret));
/// assert_eq!(classify_name("token_expires_at"), None);
/// assert_eq!(classify_name("dob"), Some(Entity::DateOfBirth));
/// assert_eq!(classify_name("tax_id"), Some(Entity::TaxId));
/// assert_eq!(classify_name("sin_no"), Some(Entity::NationalId));
/// assert_eq!(classify_name("sin"), None);
/// ```
pub fn classify_name(name: &str) -> Option<Entity> {
    let words = Words::split(name)?;
    let vetoed = in_set(words.last(), METADATA_WORDS);
    let joined = words.joined();
    if !vetoed && is_secret(&words, joined) {
        return Some(Entity::Secret);
    }
    // Before the veto: `national_id` and `tax_id` end in `id` but hold one.
    if let Some(entity) = identity::classify(&words) {
        return Some(entity);
    }
    if vetoed {
        return None;
    }
    pii_entity(&words, joined)
}

/// The same rules restricted to secrets; the text scanner calls this for every
/// `key=value` it meets, so it skips the PII tables.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let Some(words) = Words::split(name) else {
        return false;
    };
    !in_set(words.last(), METADATA_WORDS) && is_secret(&words, words.joined())
}

fn is_secret(words: &Words, joined: &[u8]) -> bool {
    if SECRET_STEMS.iter().any(|s| contains(joined, s)) {
        return true;
    }
    if words.any_word(SECRET_WORDS) {
        return true;
    }
    // `csrftoken`, `authtoken`, `accesstoken`: one word ending in token.
    if joined.ends_with(b"token") || joined.ends_with(b"secret") {
        return true;
    }
    let last = words.last();
    if last == b"key" && words.count >= 2 {
        return in_set(words.word(words.count - 2), KEY_QUALIFIERS);
    }
    false
}

fn pii_entity(words: &Words, joined: &[u8]) -> Option<Entity> {
    let last = words.last();
    let has = |s: &str| contains(joined, s);
    if has("email") || words.any_word(&["mail"]) {
        return Some(Entity::Email);
    }
    if has("iban") {
        return Some(Entity::Iban);
    }
    if has("socialsecurity") || words.any_word(&["ssn"]) || joined.ends_with(b"ssn") {
        return Some(Entity::Ssn);
    }
    if has("creditcard")
        || has("cardnumber")
        || has("cardno")
        || has("cardnum")
        || has("ccnum")
        || has("ccno")
        || words.any_word(&["pan", "card", "cc"])
    {
        return Some(Entity::Card);
    }
    if has("phone") || has("mobile") || has("msisdn") || words.any_word(&["tel", "cell", "fax"]) {
        return Some(Entity::Phone);
    }
    if has("ipaddr")
        || has("clientip")
        || has("remoteip")
        || has("remoteaddr")
        || has("sourceip")
        || has("forwardedfor")
        || words.any_word(&["ip", "ipv4", "ipv6", "srcip", "dstip"])
    {
        return Some(Entity::Ip);
    }
    if has("routingnumber") || words.any_word(&["aba", "rtn", "routing"]) {
        return Some(Entity::AbaRouting);
    }
    if has("walletaddress")
        || has("btcaddress")
        || has("bitcoinaddress")
        || words.any_word(&["wallet"])
    {
        return Some(Entity::CryptoWallet);
    }
    if has("dateofbirth") || has("birthdate") || has("birthday") || words.any_word(&["dob"]) {
        return Some(Entity::DateOfBirth);
    }
    if has("macaddr") || words.any_word(&["mac"]) {
        return Some(Entity::MacAddress);
    }
    let person = has("firstname")
        || has("lastname")
        || has("fullname")
        || has("surname")
        || has("givenname")
        || has("familyname")
        || (last == b"name"
            && words.count >= 2
            && in_set(words.word(words.count - 2), PERSON_QUALIFIERS));
    person.then_some(Entity::PersonName)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_names() {
        let cases: &[(&str, Entity)] = &[
            ("customer_email", Entity::Email),
            ("email", Entity::Email),
            ("E-Mail", Entity::Email),
            ("billingEmail", Entity::Email),
            ("card_no", Entity::Card),
            ("cc_number", Entity::Card),
            ("pan", Entity::Card),
            ("credit_card", Entity::Card),
            ("cardNumber", Entity::Card),
            ("ssn", Entity::Ssn),
            ("customer_ssn", Entity::Ssn),
            ("iban", Entity::Iban),
            ("payout_iban", Entity::Iban),
            ("phone", Entity::Phone),
            ("mobile", Entity::Phone),
            ("phone_number", Entity::Phone),
            ("ip_address", Entity::Ip),
            ("client_ip", Entity::Ip),
            ("X-Forwarded-For", Entity::Ip),
            ("password_hash", Entity::Secret),
            ("api_token", Entity::Secret),
            ("secret", Entity::Secret),
            ("private_key", Entity::Secret),
            ("apiKey", Entity::Secret),
            ("DB_PASSWORD", Entity::Secret),
            ("client-secret", Entity::Secret),
            ("csrftoken", Entity::Secret),
            ("Authorization", Entity::Secret),
            ("dob", Entity::DateOfBirth),
            ("birth_date", Entity::DateOfBirth),
            ("date_of_birth", Entity::DateOfBirth),
            ("routing_number", Entity::AbaRouting),
            ("wallet_address", Entity::CryptoWallet),
            ("first_name", Entity::PersonName),
            ("cardholder_name", Entity::PersonName),
            ("mac_address", Entity::MacAddress),
        ];
        for &(name, want) in cases {
            assert_eq!(classify_name(name), Some(want), "{name}");
        }
    }

    #[test]
    fn descriptive_names_are_not_sensitive() {
        for name in [
            "email_verified",
            "emailVerified",
            "card_count",
            "phone_country_code",
            "token_expires_at",
            "password_changed_at",
            "token_type",
            "card_last4",
            "email_domain",
            "max_tokens",
            "prompt_tokens",
            "sort_key",
            "public_key_fingerprint",
            "primary_key",
            "name",
            "product_name",
            "key",
            "secretary",
            "shipping",
            "order_id",
            "email_id",
            "",
            "has spaces but ünïcode",
        ] {
            assert_eq!(classify_name(name), None, "{name}");
        }
    }

    #[test]
    fn overlong_names_are_not_classified() {
        let long = "email_".repeat(40);
        assert_eq!(classify_name(&long), None);
    }
}
