//! `periscope redact`: mask secrets and personal data in text or JSON lines.
//!
//! One output line per input line, so it can sit in a pipe after `tail -f`;
//! lines are flushed one by one when the input or the output is not a regular
//! file. Files that cannot be read are reported (by name) and skipped; the
//! others are still processed and the exit code is 1.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use periscope_redact::{
    Entity, EntitySet, LineFormat, LineRedactor, LineStats, Masker, Operator, ScanConfig, Tier,
    TokenKey,
};

/// Arguments of `periscope redact`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
ENTITIES
  --entities email,card        detect exactly these (and lift every other shield)
  --entities +uuid,-ip         adjust the defaults (secrets and PII)
  Tier names select a whole tier: secret, pii, optional (e.g. --entities +optional).

EXAMPLES
  tail -f app.log | periscope redact
  periscope redact --format json --report events.jsonl > clean.jsonl
  periscope redact --operator card=partial --operator email=token --token-key-file key.hex")]
pub struct RedactArgs {
    /// Files to read, in order; stdin when none is given (`-` also means stdin).
    pub files: Vec<PathBuf>,

    /// How to read each line: plain text, or one JSON document per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Print a summary of what was masked to stderr: counts per entity, never values.
    #[arg(long)]
    pub report: bool,

    /// Which entities to detect: a list of names (exact set) or of +name/-name
    /// (changes to the defaults). See below.
    #[arg(long, value_name = "LIST", value_parser = parse_entities)]
    pub entities: Option<EntitySelection>,

    /// How to mask an entity: ENTITY=redact|partial|token|drop (repeatable;
    /// ENTITY may be `all` or a tier name).
    #[arg(long = "operator", value_name = "ENTITY=OP", value_parser = parse_operator)]
    pub operators: Vec<OperatorChoice>,

    /// File holding the token key (64 hex characters). Without it the `token`
    /// operator uses a random key for this run only.
    #[arg(long, value_name = "PATH")]
    pub token_key_file: Option<PathBuf>,
}

/// Input format of `periscope redact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Plain text lines (logs, CSV, key=value).
    Text,
    /// JSON Lines: keys classify their values and every string is scanned.
    Json,
}

/// The parsed `--entities` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntitySelection {
    /// Detect exactly these entities.
    Exactly(EntitySet),
    /// Start from the defaults, add and remove.
    Adjust {
        /// Entities to enable.
        add: EntitySet,
        /// Entities to lift.
        remove: EntitySet,
    },
}

/// One `--operator ENTITY=OP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorChoice {
    /// The entities it applies to.
    pub entities: EntitySet,
    /// The operator.
    pub operator: Operator,
}

/// An entity name, a tier name (`secret`, `pii`, `optional`) or `all`.
fn parse_entity_set(name: &str) -> Result<EntitySet, String> {
    match name {
        "all" => Ok(EntitySet::all()),
        "secret" => Ok(EntitySet::tier(Tier::Secret)),
        "pii" => Ok(EntitySet::tier(Tier::Pii)),
        "optional" => Ok(EntitySet::tier(Tier::Optional)),
        _ => name
            .parse::<Entity>()
            .map(|e| std::iter::once(e).collect())
            .map_err(|e| e.to_string()),
    }
}

fn parse_entities(value: &str) -> Result<EntitySelection, String> {
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err("expected a comma-separated list of entity names".to_string());
    }
    let signed = items
        .iter()
        .filter(|s| s.starts_with('+') || s.starts_with('-'))
        .count();
    if signed == 0 {
        let mut set = EntitySet::EMPTY;
        for item in items {
            set = set.union(parse_entity_set(item)?);
        }
        return Ok(EntitySelection::Exactly(set));
    }
    if signed != items.len() {
        return Err(
            "mix of plain and +/- names: use either `email,card` (exact set) or `+uuid,-ip` (changes to the defaults)"
                .to_string(),
        );
    }
    let mut add = EntitySet::EMPTY;
    let mut remove = EntitySet::EMPTY;
    for item in items {
        let (sign, name) = item.split_at(1);
        let set = parse_entity_set(name)?;
        if sign == "+" {
            add = add.union(set);
        } else {
            remove = remove.union(set);
        }
    }
    Ok(EntitySelection::Adjust { add, remove })
}

fn parse_operator(value: &str) -> Result<OperatorChoice, String> {
    let (entity, op) = value
        .split_once('=')
        .ok_or_else(|| format!("expected ENTITY=OPERATOR, e.g. card=partial, got `{value}`"))?;
    Ok(OperatorChoice {
        entities: parse_entity_set(entity.trim())?,
        operator: op.trim().parse::<Operator>().map_err(|e| e.to_string())?,
    })
}

fn scan_config(selection: Option<&EntitySelection>) -> ScanConfig {
    let mut config = ScanConfig::new();
    match selection {
        None => {}
        Some(EntitySelection::Exactly(set)) => config = config.only(*set),
        Some(EntitySelection::Adjust { add, remove }) => {
            for e in add.iter() {
                config = config.enable(e);
            }
            for e in remove.iter() {
                config = config.disable(e);
            }
        }
    }
    config
}

fn read_token_key(path: &Path) -> anyhow::Result<TokenKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read token key file {}", path.display()))?;
    TokenKey::from_hex(&text).with_context(|| format!("token key file {}", path.display()))
}

fn random_token_key() -> anyhow::Result<TokenKey> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a token key; pass --token-key-file")?;
    Ok(TokenKey::from_bytes(bytes))
}

/// Whether the file behind a standard stream is a regular file. Pipes,
/// terminals and sockets are not: their reader wants each line as it comes.
fn is_regular_file(fd_path: &str) -> bool {
    std::fs::metadata(fd_path).is_ok_and(|m| m.is_file())
}

/// Runs `periscope redact`.
pub fn run(args: RedactArgs) -> anyhow::Result<ExitCode> {
    let mut masker = Masker::new(scan_config(args.entities.as_ref()).build());
    for choice in &args.operators {
        for e in choice.entities.iter() {
            masker = masker.with_operator(e, choice.operator);
        }
    }
    let uses_token = Entity::ALL
        .iter()
        .any(|&e| masker.operator(e) == Operator::Token);
    if let Some(path) = &args.token_key_file {
        masker = masker.with_token_key(&read_token_key(path)?);
    } else if uses_token {
        eprintln!(
            "periscope redact: no --token-key-file: tokens use a random key for this run only and will not match other runs"
        );
        masker = masker.with_token_key(&random_token_key()?);
    }
    let masker = masker.check()?;

    let format = match args.format {
        Format::Text => LineFormat::Text,
        Format::Json => LineFormat::Json,
    };
    let reads_stdin = args.files.is_empty() || args.files.iter().any(|f| f.as_os_str() == "-");
    let flush_each_line =
        (reads_stdin && !is_regular_file("/dev/stdin")) || !is_regular_file("/dev/stdout");

    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut total = LineStats::default();
    let mut failed = false;
    let inputs: Vec<Option<&Path>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|f| (f.as_os_str() != "-").then_some(f.as_path()))
            .collect()
    };
    for input in inputs {
        let mut redactor = LineRedactor::new(&masker, format).flush_each_line(flush_each_line);
        let result = match input {
            None => redactor.process(io::stdin().lock(), &mut out),
            Some(path) => match File::open(path) {
                Ok(file) => redactor.process(BufReader::with_capacity(64 * 1024, file), &mut out),
                Err(err) => Err(err),
            },
        };
        let stats = redactor.stats();
        total.lines += stats.lines;
        total.invalid_json += stats.invalid_json;
        total.counts.merge(&stats.counts);
        match result {
            Ok(()) => {}
            // The reader of our output went away (`| head`): stop quietly.
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(err) => {
                let name = input.map_or("stdin".to_string(), |p| p.display().to_string());
                eprintln!("periscope: error: cannot read {name}: {err}");
                failed = true;
            }
        }
    }
    if let Err(err) = out.flush()
        && err.kind() != io::ErrorKind::BrokenPipe
    {
        bail!("cannot write to stdout: {err}");
    }
    if args.report {
        print_report(&total);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(stats: &LineStats) {
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "periscope redact: {} lines, {} values masked",
        stats.lines,
        stats.counts.total()
    );
    for (entity, count) in stats.counts.iter() {
        let _ = writeln!(
            err,
            "  {:<16} {:>8}  ({})",
            entity.name(),
            count,
            entity.tier()
        );
    }
    if stats.invalid_json > 0 {
        let _ = writeln!(
            err,
            "  warning: {} lines were not valid JSON and were masked as text",
            stats.invalid_json
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_lists() {
        assert_eq!(
            parse_entities("email, card").unwrap(),
            EntitySelection::Exactly([Entity::Email, Entity::Card].into_iter().collect())
        );
        let EntitySelection::Adjust { add, remove } = parse_entities("+uuid,-ip").unwrap() else {
            panic!("expected an adjustment");
        };
        assert!(add.contains(Entity::Uuid) && remove.contains(Entity::Ip));
        assert!(parse_entities("email,-ip").unwrap_err().contains("mix"));
        assert!(parse_entities("e-mail").unwrap_err().contains("known"));
        assert!(parse_entities("+optional").is_ok());
    }

    #[test]
    fn operator_choices() {
        let c = parse_operator("card=partial").unwrap();
        assert!(c.entities.contains(Entity::Card));
        assert_eq!(c.operator, Operator::Partial);
        assert!(
            parse_operator("card")
                .unwrap_err()
                .contains("ENTITY=OPERATOR")
        );
        assert!(
            parse_operator("card=blur")
                .unwrap_err()
                .contains("unknown operator")
        );
    }
}
