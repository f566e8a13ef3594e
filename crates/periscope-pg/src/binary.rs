//! PostgreSQL's binary layouts of arrays and records, walked element by
//! element so that each element can be masked on its own, and rebuilt only
//! when one changed.
//!
//! The input comes from the upstream and is trusted no further than its
//! bytes: every length and count is checked against what remains, a
//! negative length other than NULL's `-1` or a count that overflows is an
//! error, and so are trailing bytes. The caller fails closed on an error
//! (the whole value is masked). Fuzzed (`fuzz/`, `pg_binary_values`).

use bytes::BufMut;

/// The value does not have the layout its type promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed binary {0} value")]
pub struct Malformed(&'static str);

/// What is done to each non-NULL element: given its type OID and bytes, its
/// masked bytes, or `None` when it is unchanged.
pub type ElementMap<'f> = dyn FnMut(u32, &[u8]) -> Option<Vec<u8>> + 'f;

/// Most dimensions PostgreSQL allows in an array.
const MAX_DIMENSIONS: i32 = 6;

/// A bounds-checked reader of binary values.
struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.rest.len() < n {
            return Err(Malformed(self.what));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, Malformed> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn count(&mut self) -> Result<usize, Malformed> {
        usize::try_from(self.i32()?).map_err(|_| Malformed(self.what))
    }

    /// A length-prefixed value; `None` is NULL (length -1).
    fn value(&mut self) -> Result<Option<&'a [u8]>, Malformed> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| Malformed(self.what))?;
        self.take(len).map(Some)
    }
}

/// Copies `value` up to `at` into a new buffer the first time an element
/// changes, then appends each element: the changed ones re-encoded, the
/// others as received.
struct Rebuilt<'v> {
    value: &'v [u8],
    out: Option<Vec<u8>>,
}

impl<'v> Rebuilt<'v> {
    fn element(
        &mut self,
        at: usize,
        end: usize,
        header: &[u8],
        masked: Option<Vec<u8>>,
    ) -> Result<(), Malformed> {
        match masked {
            Some(m) => {
                let value = self.value;
                let out = self.out.get_or_insert_with(|| value[..at].to_vec());
                out.extend_from_slice(header);
                out.put_i32(i32::try_from(m.len()).map_err(|_| Malformed("element"))?);
                out.extend_from_slice(&m);
            }
            None => {
                if let Some(out) = self.out.as_mut() {
                    out.extend_from_slice(&self.value[at..end]);
                }
            }
        }
        Ok(())
    }
}

/// Walks a binary array, handing each non-NULL element with the array's
/// element type to `element`, which returns its masked bytes or `None`
/// when unchanged. Returns the rebuilt array, or `None` when nothing
/// changed.
pub fn map_array(value: &[u8], element: &mut ElementMap<'_>) -> Result<Option<Vec<u8>>, Malformed> {
    let mut r = Reader {
        rest: value,
        what: "array",
    };
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let elem_type = r.u32()?;
    if !(0..=MAX_DIMENSIONS).contains(&ndim) {
        return Err(Malformed("array"));
    }
    let mut total: usize = if ndim == 0 { 0 } else { 1 };
    for _ in 0..ndim {
        let len = r.count()?;
        let _lower_bound = r.i32()?;
        total = total.checked_mul(len).ok_or(Malformed("array"))?;
    }
    let mut rebuilt = Rebuilt { value, out: None };
    for _ in 0..total {
        let at = value.len() - r.rest.len();
        let item = r.value()?;
        let end = value.len() - r.rest.len();
        let masked = item.and_then(|v| element(elem_type, v));
        rebuilt.element(at, end, &[], masked)?;
    }
    if !r.rest.is_empty() {
        return Err(Malformed("array"));
    }
    Ok(rebuilt.out)
}

/// Walks a binary record (an anonymous row), handing each non-NULL field
/// with its type to `element`; as [`map_array`].
pub fn map_record(
    value: &[u8],
    element: &mut ElementMap<'_>,
) -> Result<Option<Vec<u8>>, Malformed> {
    let mut r = Reader {
        rest: value,
        what: "record",
    };
    let fields = r.count()?;
    let mut rebuilt = Rebuilt { value, out: None };
    for _ in 0..fields {
        let at = value.len() - r.rest.len();
        let type_oid = r.u32()?;
        let item = r.value()?;
        let end = value.len() - r.rest.len();
        let masked = item.and_then(|v| element(type_oid, v));
        rebuilt.element(at, end, &type_oid.to_be_bytes(), masked)?;
    }
    if !r.rest.is_empty() {
        return Err(Malformed("record"));
    }
    Ok(rebuilt.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(elem_type: u32, items: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_i32(1);
        out.put_i32(i32::from(items.iter().any(Option::is_none)));
        out.put_u32(elem_type);
        out.put_i32(items.len() as i32);
        out.put_i32(1);
        for item in items {
            match item {
                None => out.put_i32(-1),
                Some(v) => {
                    out.put_i32(v.len() as i32);
                    out.extend_from_slice(v);
                }
            }
        }
        out
    }

    fn upper_if_secret(_: u32, v: &[u8]) -> Option<Vec<u8>> {
        (v == b"secret").then(|| b"[masked]".to_vec())
    }

    #[test]
    fn arrays_are_rebuilt_only_when_an_element_changes() {
        let plain = array(25, &[Some(b"a"), None, Some(b"b")]);
        assert_eq!(map_array(&plain, &mut upper_if_secret), Ok(None));
        let with_secret = array(25, &[Some(b"a"), None, Some(b"secret"), Some(b"c")]);
        let rebuilt = map_array(&with_secret, &mut upper_if_secret)
            .unwrap()
            .unwrap();
        assert_eq!(
            rebuilt,
            array(25, &[Some(b"a"), None, Some(b"[masked]"), Some(b"c")])
        );
    }

    #[test]
    fn records_keep_each_fields_type() {
        let mut rec = Vec::new();
        rec.put_i32(2);
        rec.put_u32(23);
        rec.put_i32(4);
        rec.put_i32(7);
        rec.put_u32(25);
        rec.put_i32(6);
        rec.extend_from_slice(b"secret");
        let mut seen = Vec::new();
        let rebuilt = map_record(&rec, &mut |t, v| {
            seen.push(t);
            upper_if_secret(t, v)
        })
        .unwrap()
        .unwrap();
        assert_eq!(seen, [23, 25]);
        let mut want = rec[..16].to_vec();
        want.put_u32(25);
        want.put_i32(8);
        want.extend_from_slice(b"[masked]");
        assert_eq!(rebuilt, want);
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let mut huge = Vec::new();
        huge.put_i32(2);
        huge.put_i32(0);
        huge.put_u32(25);
        huge.put_i32(i32::MAX);
        huge.put_i32(1);
        huge.put_i32(i32::MAX);
        huge.put_i32(1);
        for bad in [
            &b""[..],
            &[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 25][..],
            &huge[..],
            &array(25, &[Some(b"ab")])[..25],
        ] {
            assert!(map_array(bad, &mut upper_if_secret).is_err(), "{bad:?}");
        }
        let mut trailing = array(25, &[Some(b"a")]);
        trailing.push(0);
        assert_eq!(
            map_array(&trailing, &mut upper_if_secret),
            Err(Malformed("array"))
        );
        assert!(map_record(&[0, 0, 0, 1, 0, 0], &mut upper_if_secret).is_err());
        assert!(map_record(&[255, 255, 255, 255], &mut upper_if_secret).is_err());
    }
}
