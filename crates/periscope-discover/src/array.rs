//! PostgreSQL array literals, as the server prints them (`{a,"b c",NULL}`).
//!
//! Array columns are sampled as their text output; their elements are pooled
//! into the column's evidence, so a `text[]` of tax numbers is judged like a
//! `text` column of them. Nested arrays (`{{1,2},{3,4}}`) are flattened and a
//! dimension prefix (`[0:1]={…}`) is skipped.

/// Calls `each` for every element (`None` for an unquoted `NULL`), or returns
/// `Err(())` when the text is not an array literal; elements already passed
/// on stay counted, which is harmless for evidence.
pub(crate) fn for_each_element(text: &str, mut each: impl FnMut(Option<&str>)) -> Result<(), ()> {
    let mut s = text.trim();
    if s.starts_with('[') {
        let eq = s.find('=').ok_or(())?;
        s = s[eq + 1..].trim_start();
    }
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return Err(());
    }
    let mut depth = 0usize;
    let mut i = 0;
    let mut quoted = String::new();
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth = depth.checked_sub(1).ok_or(())?;
                i += 1;
            }
            b',' | b' ' => i += 1,
            b'"' => {
                quoted.clear();
                i += 1;
                let mut start = i;
                loop {
                    match bytes.get(i).ok_or(())? {
                        b'\\' => {
                            quoted.push_str(&s[start..i]);
                            let next = i + 1;
                            // The escaped character may be multi-byte.
                            let c = s[next..].chars().next().ok_or(())?;
                            quoted.push(c);
                            i = next + c.len_utf8();
                            start = i;
                        }
                        b'"' => {
                            quoted.push_str(&s[start..i]);
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                each(Some(&quoted));
            }
            _ => {
                let start = i;
                while i < bytes.len() && !matches!(bytes[i], b',' | b'}') {
                    i += 1;
                }
                let element = s[start..i].trim_end();
                if element.eq_ignore_ascii_case("NULL") {
                    each(None);
                } else {
                    each(Some(element));
                }
            }
        }
        if depth == 0 && i < bytes.len() {
            return Err(());
        }
    }
    if depth == 0 { Ok(()) } else { Err(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(text: &str) -> Result<Vec<Option<String>>, ()> {
        let mut out = Vec::new();
        for_each_element(text, |e| out.push(e.map(str::to_string))).map(|()| out)
    }

    fn some(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn server_output_forms() {
        assert_eq!(elements("{}"), Ok(vec![]));
        assert_eq!(elements("{a,b}"), Ok(some(&["a", "b"])));
        assert_eq!(
            elements(r#"{"a b","c,d","e\"f","g\\h",plain}"#),
            Ok(some(&["a b", "c,d", "e\"f", "g\\h", "plain"]))
        );
        assert_eq!(
            elements("{1,NULL,null,\"NULL\"}"),
            Ok(vec![Some("1".into()), None, None, Some("NULL".into())])
        );
        assert_eq!(elements("{{1,2},{3,4}}"), Ok(some(&["1", "2", "3", "4"])));
        assert_eq!(elements("[0:1]={5,6}"), Ok(some(&["5", "6"])));
        assert_eq!(elements("{\"é\\ü\"}"), Ok(some(&["éü"])));
    }

    #[test]
    fn not_arrays() {
        for bad in [
            "",
            "a,b",
            "{a,b",
            "{a}}",
            "{\"open}",
            "{a}{b}",
            "[1:2]{1,2}",
        ] {
            assert!(elements(bad).is_err(), "{bad}");
        }
    }
}
