//! The dev IdP driven over real HTTP by `openidconnect`, the relying-party
//! library the gateway will use: one test binary, one module per area.

#[path = "areas/support.rs"]
mod support;

#[path = "areas/code_flow.rs"]
mod code_flow;
#[path = "areas/device_flow.rs"]
mod device_flow;
#[path = "areas/discovery.rs"]
mod discovery;
#[path = "areas/faults.rs"]
mod faults;
#[path = "areas/lifecycle.rs"]
mod lifecycle;
#[path = "areas/rotation.rs"]
mod rotation;
#[path = "areas/users.rs"]
mod users;
