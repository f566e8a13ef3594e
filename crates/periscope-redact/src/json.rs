//! Masking JSON documents: keys classify their values, every string is scanned.

use serde_json::{Map, Value};

use crate::{Counts, Entity, Masker};

impl Masker {
    /// Masks a JSON document in place and returns what was masked.
    ///
    /// * A key classified as an entity by [`crate::classify_name`] masks its whole
    ///   value with that entity's operator: strings and numbers become the
    ///   rendering of their text (`"ssn": 536221234` becomes `"ssn": "[ssn]"`);
    ///   arrays apply the same to each element. Secret-named keys
    ///   (`"password"`, `"api_token"`) also mask objects and arrays whole;
    ///   `null` and booleans carry nothing and are kept.
    /// * Every other string, keys included, is scanned like text.
    /// * `drop` on a whole value gives `null`.
    pub fn mask_json(&self, value: &mut Value) -> Counts {
        let mut counts = Counts::default();
        self.walk(value, None, &mut counts);
        counts
    }

    fn walk(&self, value: &mut Value, by_name: Option<Entity>, counts: &mut Counts) {
        if let Some(entity) = by_name
            && self.mask_whole(value, entity, counts)
        {
            return;
        }
        match value {
            Value::String(s) => {
                let masked = self.mask_str(s);
                if !masked.counts.is_empty() {
                    counts.merge(&masked.counts);
                    *s = masked.text.into_owned();
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, by_name, counts);
                }
            }
            Value::Object(map) => self.walk_object(map, counts),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn walk_object(&self, map: &mut Map<String, Value>, counts: &mut Counts) {
        let mut renamed: Vec<(String, String)> = Vec::new();
        for (key, child) in map.iter_mut() {
            let entity = self.scanner().classify_name(key);
            self.walk(child, entity, counts);
            let masked = self.mask_str(key);
            if !masked.counts.is_empty() {
                counts.merge(&masked.counts);
                renamed.push((key.clone(), masked.text.into_owned()));
            }
        }
        for (old, mut new) in renamed {
            if let Some(v) = map.remove(&old) {
                // Two keys may mask to the same text; keep both values.
                let base = new.clone();
                let mut n = 2;
                while map.contains_key(&new) {
                    new = format!("{base}~{n}");
                    n += 1;
                }
                map.insert(new, v);
            }
        }
    }

    /// Masks `value` as a whole if its type carries data; returns whether it did.
    fn mask_whole(&self, value: &mut Value, entity: Entity, counts: &mut Counts) -> bool {
        let text = match value {
            Value::String(s) => std::mem::take(s),
            Value::Number(n) => n.to_string(),
            // An object under `credentials` is secret as a whole; a boolean
            // such as `has_password` carries one bit and is kept.
            Value::Object(_) | Value::Array(_) if entity.is_secret() => value.to_string(),
            _ => return false,
        };
        counts.add(entity);
        let out = self.mask_value_as(entity, &text);
        *value = if out.is_empty() {
            Value::Null
        } else {
            Value::String(out)
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Entity, Masker, Operator, ScanConfig};

    #[test]
    fn keys_classify_and_strings_are_scanned() {
        let m = Masker::new(ScanConfig::new().build());
        let mut doc = json!({
            "customer_email": "not-an-email-at-all",
            "email_verified": true,
            "ssn": 536221234,
            "password": {"nested": "x"},
            "phones": ["+44 20 7946 0958", "n/a"],
            "note": "call 415-555-2671 or write bob@example.org",
            "order_id": 918273645,
            "dob": "1984-03-07",
            "alice@example.com": 3
        });
        let counts = m.mask_json(&mut doc);
        assert_eq!(doc["customer_email"], "[email]");
        assert_eq!(doc["email_verified"], true);
        assert_eq!(doc["ssn"], "[ssn]");
        assert_eq!(doc["password"], "[secret]");
        assert_eq!(doc["phones"], json!(["[phone]", "[phone]"]));
        assert_eq!(doc["note"], "call [phone] or write [email]");
        assert_eq!(doc["order_id"], 918273645);
        assert_eq!(
            doc["dob"], "[date_of_birth]",
            "classified by name though the detector is off"
        );
        assert_eq!(doc["[email]"], 3);
        assert_eq!(counts.get(Entity::Email), 3);
        assert_eq!(counts.get(Entity::Phone), 3);
    }

    #[test]
    fn lifted_entities_are_kept_even_by_name() {
        let m = Masker::new(ScanConfig::new().disable(Entity::Email).build());
        let mut doc =
            json!({"email": "alice@example.com", "password": "hunter2", "has_password": true});
        m.mask_json(&mut doc);
        assert_eq!(doc["email"], "alice@example.com");
        assert_eq!(doc["password"], "[secret]");
        assert_eq!(doc["has_password"], true);
    }

    #[test]
    fn drop_on_a_whole_value_gives_null() {
        let m =
            Masker::new(ScanConfig::new().build()).with_operator(Entity::Secret, Operator::Drop);
        let mut doc = json!({"api_token": "abc"});
        m.mask_json(&mut doc);
        assert_eq!(doc["api_token"], serde_json::Value::Null);
    }
}
