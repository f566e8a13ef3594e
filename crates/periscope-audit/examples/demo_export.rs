//! Writes a synthetic, signed audit log as a JSONL export, and its public key, to try
//! the verifier on logs of any size without a gateway.
//!
//! `cargo run --release -p periscope-audit --example demo_export -- EVENTS OUT.jsonl KEY.pem`
//! (`-` as OUT.jsonl writes to standard output). A checkpoint is signed every 1 000
//! events and after the last one.

use std::io::Write;

use periscope_audit::{
    AuditEvent, AuditSigner, AuditTime, EventDraft, Head, JsonlWriter, actions, next_event,
};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [count, out, key] = args.as_slice() else {
        return Err("usage: demo_export EVENTS OUT.jsonl KEY.pem".into());
    };
    let count: u64 = count.parse()?;
    let signer = AuditSigner::generate()?;
    std::fs::write(key, signer.verifier_key().to_pem())?;

    let sink: Box<dyn Write> = if out == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(out)?)
    };
    let mut writer = JsonlWriter::new(sink);
    writer.write_header(&periscope_audit::JsonlHeader::new(Some(signer.key_id())))?;
    let mut head = Head::GENESIS;
    for i in 0..count {
        let time = AuditTime::from_unix_micros(1_795_928_400_000_000 + i as i64 * 1_000)?;
        let draft = EventDraft::new(time.clone(), "alice@example.com", actions::QUERY, "pg-prod")
            .with_details(json!({
                "session": format!("s-{}", i / 50),
                "sql": "SELECT id, email FROM customers WHERE id = $1",
                "rows": i % 100,
                "masked": {"email": i % 100},
                "duration_us": 1_250 + i % 700,
            }))
            .with_grant("g-7f3a");
        let event: AuditEvent = next_event(head, draft)?;
        head = event.head();
        writer.write_event(&event)?;
        if event.seq.is_multiple_of(1_000) || i + 1 == count {
            writer.write_checkpoint(&signer.sign_checkpoint(head, time))?;
        }
    }
    writer.into_inner()?.flush()?;
    Ok(())
}
