//! Properties of the codec over generated input: hostile bytes never panic a
//! decoder, and what the encoders write decodes back to the same values.

use bytes::BytesMut;
use periscope_pg_wire::backend::{BackendMessage, DataRowWriter};
use periscope_pg_wire::codec::{Frame, StartupPacket, startup_packet_len};
use periscope_pg_wire::frontend::{FrontendMessage, encode};
use proptest::prelude::*;

/// A frame with a chosen tag and a body of arbitrary bytes, with a correct
/// length word, so decoders get past framing and into the fields.
fn framed() -> impl Strategy<Value = Vec<u8>> {
    (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(tag, body)| {
        let tags = b"QPBDECSHXdcfFpRSKZTDCIEN123ntsGHWdcVv";
        let mut out = vec![tags[tag as usize % tags.len()]];
        out.extend(((body.len() + 4) as i32).to_be_bytes());
        out.extend(body);
        out
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(Some(frame)) = Frame::parse(&bytes, 1 << 16) {
            prop_assert!(frame.len() >= 5 && frame.len() <= bytes.len());
            let _ = FrontendMessage::decode(frame);
            let _ = BackendMessage::decode(frame);
        }
        if let Ok(Some(len)) = startup_packet_len(&bytes, 10_240)
            && let Some(packet) = bytes.get(..len)
        {
            let _ = StartupPacket::decode(packet);
        }
    }

    #[test]
    fn well_framed_garbage_never_panics_and_views_agree(bytes in framed()) {
        let frame = Frame::parse(&bytes, 1 << 16).unwrap().unwrap();
        if let Ok(FrontendMessage::Bind(bind)) = FrontendMessage::decode(frame) {
            prop_assert_eq!(bind.params.iter().count(), bind.params.len());
        }
        if let Ok(BackendMessage::DataRow(row)) = BackendMessage::decode(frame) {
            prop_assert_eq!(row.fields().count(), row.len());
        }
        if let Ok(BackendMessage::RowDescription(desc)) = BackendMessage::decode(frame) {
            prop_assert_eq!(desc.fields().count(), desc.len());
        }
    }

    #[test]
    fn data_rows_round_trip(fields in proptest::collection::vec(
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), 0..20)
    ) {
        let mut out = BytesMut::new();
        let mut writer = DataRowWriter::new(&mut out);
        for f in &fields {
            writer.push(f.as_deref()).unwrap();
        }
        writer.finish().unwrap();
        let frame = Frame::parse(&out, 1 << 20).unwrap().unwrap();
        prop_assert_eq!(frame.len(), out.len());
        let BackendMessage::DataRow(row) = BackendMessage::decode(frame).unwrap() else {
            panic!("not a DataRow");
        };
        let decoded: Vec<Option<Vec<u8>>> = row.fields().map(|f| f.map(<[u8]>::to_vec)).collect();
        prop_assert_eq!(decoded, fields);
    }

    #[test]
    fn startup_parameters_round_trip(params in proptest::collection::vec(
        ("[a-zA-Z_]{1,12}", "[^\u{0}]{0,20}"), 0..8)
    ) {
        let mut out = BytesMut::new();
        encode::startup_message(&mut out, params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        prop_assert_eq!(startup_packet_len(&out, 1 << 20).unwrap(), Some(out.len()));
        let StartupPacket::Startup(msg) = StartupPacket::decode(&out).unwrap() else {
            panic!("not a StartupMessage");
        };
        let decoded: Vec<(String, String)> =
            msg.params().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        prop_assert_eq!(decoded, params);
    }
}
