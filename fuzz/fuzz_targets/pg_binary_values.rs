//! Fuzz target: PostgreSQL binary arrays and records (`periscope_pg::binary`),
//! the layouts the masking stage walks element by element.
//!
//! The first byte picks array or record and which elements "change"; the rest
//! is the value. A malformed value must be an error, never a panic. A value
//! that walks must be rebuilt only when an element changed, and the rebuilt
//! value must walk again to the same number of elements, the changed ones
//! carrying their replacement.
//!
//! ```sh
//! RUSTC_BOOTSTRAP=1 cargo fuzz run pg_binary_values fuzz/seeds/pg_binary_values -- -max_total_time=60
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_pg::binary::{map_array, map_record};

const REPLACEMENT: &[u8] = b"[masked]";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else {
        return;
    };
    let record = selector & 1 == 1;
    // Elements whose index has this bit set are replaced.
    let mask = selector >> 1;
    let walk = |value: &[u8], changes: &mut dyn FnMut(usize) -> bool| {
        let mut seen = Vec::new();
        let mut index = 0usize;
        let mut element = |_: u32, v: &[u8]| {
            seen.push(v.to_vec());
            let change = changes(index);
            index += 1;
            change.then(|| REPLACEMENT.to_vec())
        };
        let out = if record {
            map_record(value, &mut element)
        } else {
            map_array(value, &mut element)
        };
        (out, seen)
    };
    let (first, elements) = walk(value, &mut |i| mask != 0 && (i as u8) & mask != 0);
    let Ok(rebuilt) = first else {
        return;
    };
    let changed: Vec<bool> = (0..elements.len())
        .map(|i| mask != 0 && (i as u8) & mask != 0)
        .collect();
    match rebuilt {
        None => assert!(!changed.contains(&true), "an element changed but nothing was rebuilt"),
        Some(rebuilt) => {
            assert!(changed.contains(&true), "rebuilt without a change");
            let (again, seen) = walk(&rebuilt, &mut |_| false);
            assert_eq!(again, Ok(None), "a rebuilt value must walk cleanly");
            assert_eq!(seen.len(), elements.len());
            for ((after, before), was_changed) in seen.iter().zip(&elements).zip(&changed) {
                if *was_changed {
                    assert_eq!(after, REPLACEMENT);
                } else {
                    assert_eq!(after, before);
                }
            }
        }
    }
});
