//! Fuzz target: what an upstream server (or a man in the middle) can send.
//!
//! Every frame must decode or fail with a ProtocolError, never panic, and
//! every view a hook uses must stay inside its frame. A DataRow rebuilt
//! field by field with `DataRowWriter` (what masking does) must be the very
//! bytes received.
//!
//! ```sh
//! RUSTC_BOOTSTRAP=1 cargo fuzz run pg_backend_decode fuzz/seeds/pg_backend_decode -- -max_total_time=60
//! ```

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use periscope_pg_wire::backend::{self, Authentication, BackendMessage, DataRowWriter};
use periscope_pg_wire::codec::Frame;

/// Small limit, so the fuzzer also reaches the "too large" path.
const MAX_MESSAGE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let mut out = BytesMut::new();
    loop {
        let frame = match Frame::parse(input, MAX_MESSAGE) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => return,
        };
        assert!(frame.len() >= 5 && frame.len() <= input.len());
        if let Ok(msg) = BackendMessage::decode(frame) {
            walk(msg, frame, &mut out);
        }
        input = &input[frame.len()..];
    }
});

fn walk(msg: BackendMessage<'_>, frame: Frame<'_>, out: &mut BytesMut) {
    match msg {
        BackendMessage::RowDescription(desc) => {
            assert_eq!(desc.fields().count(), desc.len());
        }
        BackendMessage::DataRow(row) => {
            assert_eq!(row.fields().count(), row.len());
            out.clear();
            let mut writer = DataRowWriter::new(out);
            for field in row.fields() {
                writer.push(field).expect("a received row fits");
            }
            let len = writer.finish().expect("a received row fits");
            assert_eq!(len, frame.len());
            assert_eq!(&out[..], frame.as_bytes(), "rebuilt DataRow differs");
        }
        BackendMessage::ErrorResponse(fields) | BackendMessage::NoticeResponse(fields) => {
            for (code, value) in fields.iter() {
                assert_ne!(code, 0);
                let _ = value.len();
            }
            let _ = (fields.code(), fields.message(), fields.severity());
        }
        BackendMessage::Authentication(Authentication::Sasl(mechanisms)) => {
            for m in mechanisms.iter() {
                assert!(!m.is_empty());
            }
        }
        BackendMessage::ParameterDescription { types } => {
            assert_eq!(backend::oids(types).count(), types.len() / 4);
        }
        BackendMessage::CopyInResponse(r)
        | BackendMessage::CopyOutResponse(r)
        | BackendMessage::CopyBothResponse(r) => {
            let _ = r.column_formats().count();
        }
        _ => {}
    }
}
