//! The commands data plane of the Periscope gateway, over the
//! protocol-neutral shield pipeline (`periscope-shield`): nothing here knows
//! PostgreSQL, SQL or HTTP.
//!
//! - [`command`]: which command lines an `exec` connection runs. A line
//!   matching a sensitive pattern is refused unless a grant lifts its
//!   `command:<pattern>` shield; otherwise a line on the allow-list runs; any
//!   other line is refused (deny by default).
//! - [`process`]: the process itself: argv only (no shell), an explicit
//!   environment (nothing inherited), a working directory, its own process
//!   group so that it is killed whole.
//! - [`stream`]: the masker of an output stream: line-aware, with a bounded
//!   carry-over so that a value split across reads is still found.
//! - [`run`]: one command from start to end: output masked and handed on,
//!   time and output limits, the session cut (a grant's end) and a client
//!   that went away all kill the group; the outcome counts bytes and masked
//!   values, never values.
//! - [`pty`], [`terminal`], [`shell`]: the interactive shell of a `shell`
//!   connection: a program on a pseudo-terminal leading its own session
//!   (killed whole), the terminal masker (escape sequences pass, the text
//!   between them is scanned, across reads and across escapes), and one
//!   shell from start to end (input, resizes, signals, quiet flush of a
//!   prompt, limits, cut).
//! - [`logs`]: the sources of a `logs` connection (files followed across
//!   rotation and truncation, the journal, a command), masked by the same
//!   stream masker, then filtered (`--since`, `--grep`) on the masked text.

pub mod command;
pub mod logs;
pub mod process;
pub mod pty;
pub mod run;
pub mod shell;
pub mod stream;
pub mod terminal;
