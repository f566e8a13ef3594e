//! What a field's name says, for and against.
//!
//! * **For**: [`periscope_redact::classify_name`] on the leaf name (the
//!   column, or the last JSON key). When the leaf is a word that only means
//!   something with its owner (`number`, `no`, `sin`, `tin`, `dl`), the name
//!   one level up is put in front: `cards.number` reads as `card_number`,
//!   `$.customer.sin` as `customer_sin`, `passports.number` as
//!   `passport_number`; `orders.number` and `$.trig.sin` stay unclassified.
//!   The parent is used for these words only: `cards.bank` is not a card.
//! * **Against**: for weak checks only (SSN rules, suffix-less NINO shapes,
//!   dates of birth), a leaf name that says the values are something else
//!   (`zip`, `order`, `amount`, `created`, `start`...) vetoes the content
//!   evidence. Strong checksums are not vetoed: a column of valid CPFs named
//!   `order_ref` holds CPFs.

use periscope_redact::{Entity, classify_name};

use crate::path::FieldPath;

/// Leaf names that are only meaningful with their owner.
const CONTEXT_DEPENDENT: &[&str] = &[
    "dl", "nbr", "nin", "no", "nr", "num", "number", "pps", "sin", "tin",
];

/// Words saying that a weak check's matches are a coincidence.
const CONTRADICTING: &[&str] = &[
    "amount",
    "booking",
    "build",
    "cents",
    "checksum",
    "closed",
    "count",
    "created",
    "deleted",
    "delivered",
    "due",
    "end",
    "epoch",
    "expires",
    "expiry",
    "hash",
    "hire",
    "hired",
    "invoice",
    "joined",
    "lat",
    "lng",
    "lon",
    "modified",
    "next",
    "opened",
    "order",
    "ordered",
    "paid",
    "plz",
    "postal",
    "postcode",
    "posted",
    "price",
    "published",
    "qty",
    "quantity",
    "scheduled",
    "seq",
    "sequence",
    "shipped",
    "signup",
    "since",
    "sku",
    "start",
    "ticket",
    "total",
    "tracking",
    "ts",
    "until",
    "updated",
    "valid",
    "version",
    "zip",
    "zipcode",
];

/// The entity the field's name alone says it holds.
pub(crate) fn by_name(path: &FieldPath) -> Option<Entity> {
    let leaf = path.leaf_name()?;
    if let Some(e) = classify_name(leaf) {
        return Some(e);
    }
    let lower = leaf.to_ascii_lowercase();
    if !CONTEXT_DEPENDENT.contains(&lower.as_str()) {
        return None;
    }
    let parent = singular(path.parent_name()?);
    classify_name(&format!("{parent}_{lower}"))
}

/// `customers` → `customer`; good enough for table names before a
/// context-dependent word.
fn singular(name: &str) -> &str {
    match name.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem,
        _ => name,
    }
}

/// The first word of the leaf name that contradicts a weak check, if any.
pub(crate) fn contradicting_word(path: &FieldPath) -> Option<&'static str> {
    let leaf = path.leaf_name()?;
    words(leaf).find_map(|w| {
        CONTRADICTING
            .iter()
            .find(|c| c.eq_ignore_ascii_case(w))
            .copied()
    })
}

/// Words of a name: split at non-alphanumerics and lower-to-upper case
/// changes (`orderRef` → `order`, `Ref`).
fn words(name: &str) -> impl Iterator<Item = &str> {
    let b = name.as_bytes();
    let mut start = 0;
    let mut out = Vec::new();
    for i in 0..=b.len() {
        let cut = i == b.len()
            || !b[i].is_ascii_alphanumeric()
            || (i > 0 && b[i].is_ascii_uppercase() && b[i - 1].is_ascii_lowercase());
        if cut {
            if start < i {
                out.push(&name[start..i]);
            }
            start = if i < b.len() && b[i].is_ascii_alphanumeric() {
                i
            } else {
                i + 1
            };
        }
    }
    out.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::{ColumnPath, JsonStep};

    fn column(table: &str, column: &str) -> FieldPath {
        FieldPath::column(ColumnPath::new("public", table, column))
    }

    fn json(keys: &[&str]) -> FieldPath {
        FieldPath {
            column: ColumnPath::new("public", "t", "doc"),
            json: keys.iter().map(|k| JsonStep::Key(k.to_string())).collect(),
        }
    }

    #[test]
    fn context_for_words_that_need_an_owner() {
        assert_eq!(by_name(&column("cards", "number")), Some(Entity::Card));
        assert_eq!(
            by_name(&column("passports", "number")),
            Some(Entity::Passport)
        );
        assert_eq!(
            by_name(&column("employees", "sin")),
            Some(Entity::NationalId)
        );
        assert_eq!(by_name(&column("orders", "number")), None);
        assert_eq!(by_name(&column("cards", "bank")), None);
        assert_eq!(by_name(&column("geometry", "sin")), None);
        assert_eq!(
            by_name(&json(&["customer", "sin"])),
            Some(Entity::NationalId)
        );
        assert_eq!(by_name(&json(&["vendor", "tin"])), Some(Entity::TaxId));
        assert_eq!(by_name(&json(&["trig", "sin"])), None);
        assert_eq!(by_name(&json(&["customer", "tax_id"])), Some(Entity::TaxId));
        assert_eq!(by_name(&column("users", "email")), Some(Entity::Email));
    }

    #[test]
    fn contradicting_names() {
        assert_eq!(
            contradicting_word(&column("t", "zip4")),
            None,
            "zip4 is one word"
        );
        assert_eq!(contradicting_word(&column("t", "zip_plus4")), Some("zip"));
        assert_eq!(contradicting_word(&column("t", "orderRef")), Some("order"));
        assert_eq!(
            contradicting_word(&column("t", "created_on")),
            Some("created")
        );
        assert_eq!(contradicting_word(&column("t", "ref")), None);
        assert_eq!(contradicting_word(&column("t", "external_id")), None);
    }
}
