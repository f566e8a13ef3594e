//! Fuzzes what a client can send before and after startup: every input must
//! decode or fail with a ProtocolError, never panic, and never make the
//! decoder reserve memory for a length it has not validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_pg_wire::codec::{Frame, StartupPacket, startup_packet_len};
use periscope_pg_wire::frontend::{self, FrontendMessage, SaslInitialResponse};

/// Small limits, so the fuzzer also reaches the "too large" paths.
const MAX_STARTUP: usize = 10 * 1024;
const MAX_MESSAGE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        startup_phase(input);
    } else {
        messages(input);
    }
});

/// Startup-phase packets, one after another (SSLRequest then StartupMessage).
fn startup_phase(mut input: &[u8]) {
    loop {
        let len = match startup_packet_len(input, MAX_STARTUP) {
            Ok(Some(len)) => len,
            Ok(None) | Err(_) => return,
        };
        assert!((8..=MAX_STARTUP).contains(&len));
        let Some(packet) = input.get(..len) else {
            return;
        };
        if let Ok(StartupPacket::Startup(msg)) = StartupPacket::decode(packet) {
            assert_eq!(msg.major, 3);
            for (name, value) in msg.params() {
                assert!(!name.is_empty());
                let _ = value.len();
            }
            let _ = msg.param("user");
        }
        input = &input[len..];
    }
}

/// Regular messages, framed and decoded as the relay does.
fn messages(mut input: &[u8]) {
    loop {
        let frame = match Frame::parse(input, MAX_MESSAGE) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => return,
        };
        assert!(frame.len() >= 5 && frame.len() <= input.len());
        assert!(frame.len() <= MAX_MESSAGE + 1);
        if let Ok(msg) = FrontendMessage::decode(frame) {
            walk(msg);
        }
        input = &input[frame.len()..];
    }
}

/// Touches every view a hook could use.
fn walk(msg: FrontendMessage<'_>) {
    match msg {
        FrontendMessage::Bind(bind) => {
            assert_eq!(bind.params.iter().count(), bind.params.len());
            assert_eq!(bind.param_formats.iter().count(), bind.param_formats.len());
            assert_eq!(bind.result_formats.iter().count(), bind.result_formats.len());
        }
        FrontendMessage::FunctionCall(call) => {
            assert_eq!(call.args.iter().count(), call.args.len());
        }
        FrontendMessage::Parse { param_types, .. } => {
            assert_eq!(param_types.iter().count(), param_types.len());
        }
        FrontendMessage::AuthResponse(body) => {
            let _ = frontend::decode_password(body);
            let _ = SaslInitialResponse::decode(body);
        }
        _ => {}
    }
}
